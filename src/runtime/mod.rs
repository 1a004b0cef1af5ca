//! The real I/O shell: image and CF processes, TUN, control socket.
