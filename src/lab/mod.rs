//! Namespaces, veths, bridges, addresses, routes and processes for `plexnet up`/`down`.
