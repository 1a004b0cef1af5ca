//! strongSwan in a client namespace (`ipsec = "strongswan"`): charon with
//! its userspace data plane (kernel-libipsec), configured from
//! `netns/strongswan/*.in` and the IKE settings of the owners' Policy
//! Agent policy (its KeyExchangeOffers and IpDataOffers; docs/ARCHITECTURE.md, "Clients").
//!
//! Where things are, for client `C` of topology `T` in namespace `NS`:
//! - `/run/plexnet/T/C.strongswan/`: charon's state directory, bind-mounted
//!   over `/run` in charon's own mount namespace (it writes
//!   `/var/run/charon.pid`, so each charon needs a private `/run`):
//!   `charon.pid`, `charon.vici`, `charon.log`;
//! - `/etc/netns/NS/strongswan.conf` and `/etc/netns/NS/swanctl/swanctl.conf`:
//!   `ip netns exec` and `plexnet exec` mount them over `/etc`, so
//!   `plexnet exec C -- swanctl --initiate --child dva1` needs no option.
//!
//! `down` needs nothing special: it stops every process of the namespace
//! and removes `/etc/netns/NS` and the run directory.

use anyhow::{bail, Context, Result};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::netns;
use crate::topology::{Client, IkeSettings, Topology};

/// charon with kernel-libipsec (package strongswan-charon,
/// libcharon-extra-plugins).
pub const CHARON: &str = "/usr/lib/ipsec/charon";
/// charon's configuration template (its `load =` line names every plugin).
pub const STRONGSWAN_CONF_IN: &str = include_str!("../../netns/strongswan/strongswan.conf.in");
const SWANCTL_CONF_IN: &str = include_str!("../../netns/strongswan/swanctl.conf.in");
/// How long charon may take to answer `swanctl --stats`.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The state directory of `client`'s charon.
pub fn state_dir(run_dir: &Path, client: &str) -> PathBuf {
    run_dir.join(format!("{}.strongswan", client.to_lowercase()))
}

/// charon's log (written by charon as `/run/charon.log`).
pub fn log_path(run_dir: &Path, client: &str) -> PathBuf {
    state_dir(run_dir, client).join("charon.log")
}

/// The swanctl connection (and child) name of a DVIPA: its `[hosts]` name
/// in lower case (`dva1`), else the address with dashes.
pub fn conn_name(topo: &Topology, dvipa: Ipv4Addr) -> String {
    match topo.host_name(dvipa) {
        Some(n) => n.to_lowercase(),
        None => dvipa.to_string().replace('.', "-"),
    }
}

/// `strongswan.conf` for charon running with `state` over `/run`.
pub fn strongswan_conf(state: &Path) -> String {
    STRONGSWAN_CONF_IN
        .replace("@SWANCTL_DIR@", &state.display().to_string())
        .replace("@DIR@", "/run")
}

/// One swanctl connection from `local` to `dvipa`: connection and child
/// named `name`, identities equal to the addresses.
pub fn swanctl_conn(
    name: &str,
    local: Ipv4Addr,
    dvipa: Ipv4Addr,
    ike_proposals: &str,
    esp_proposals: &str,
    psk: &str,
) -> String {
    SWANCTL_CONF_IN
        .replace("@CHILD@", name)
        .replace("@NAME@", name)
        .replace("@LOCAL_ADDR@", &local.to_string())
        .replace("@REMOTE_ADDR@", &dvipa.to_string())
        .replace("@IKE_PROPOSALS@", ike_proposals)
        .replace("@ESP_PROPOSALS@", esp_proposals)
        .replace("@LOCAL_ID@", &local.to_string())
        .replace("@REMOTE_ID@", &dvipa.to_string())
        .replace("@PSK@", psk)
}

/// `swanctl.conf` of a client: one connection per DVIPA in its `ike`.
pub fn swanctl_conf(topo: &Topology, client: &Client, ike: &IkeSettings) -> String {
    let mut s = format!(
        "# written by plexnet up for client {} of topology {}\n",
        client.name, topo.name
    );
    for d in &client.ike {
        s.push_str(&swanctl_conn(
            &conn_name(topo, *d),
            client.addr,
            *d,
            &ike.proposals,
            &ike.esp_proposals,
            &ike.psk,
        ));
    }
    s
}

/// Runs `swanctl args` inside `ns` (with its `/etc`).
pub fn swanctl(ns: &str, args: &[&str]) -> Result<std::process::Output> {
    super::process::in_namespace(ns, &["swanctl"])?
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running swanctl {args:?} in {ns}"))
}

/// Writes the configuration, starts charon in `ns`, waits until it answers
/// and loads the connections. Returns charon's pid.
pub fn start(run_dir: &Path, topo: &Topology, client: &Client, ns: &str) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    if !Path::new(CHARON).exists() {
        bail!("{CHARON} is missing: client {} has ipsec = \"strongswan\"; install strongswan-charon and libcharon-extra-plugins (scripts/deps.sh)", client.name);
    }
    let ike = topo.ike.as_ref().context(
        "ipsec = \"strongswan\" needs a KeyExchangeRule in the DVIPA owner's ipsec_policy",
    )?;
    let state = state_dir(run_dir, &client.name);
    std::fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;
    let etc = Path::new(netns::NETNS_ETC_DIR).join(ns);
    std::fs::create_dir_all(etc.join("swanctl"))
        .with_context(|| format!("creating {}/swanctl", etc.display()))?;
    std::fs::write(etc.join("strongswan.conf"), strongswan_conf(&state))
        .with_context(|| format!("writing {}/strongswan.conf", etc.display()))?;
    std::fs::write(
        etc.join("swanctl/swanctl.conf"),
        swanctl_conf(topo, client, ike),
    )
    .with_context(|| format!("writing {}/swanctl/swanctl.conf", etc.display()))?;
    let out = std::fs::File::create(state.join("charon.out"))
        .with_context(|| format!("creating {}/charon.out", state.display()))?;
    let child = super::process::in_namespace(ns, &["sh", "-c"])?
        .arg(format!(
            "mount --bind '{}' /run && exec {CHARON}",
            state.display()
        ))
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()
        .with_context(|| format!("starting charon in {ns}"))?;
    let pid = child.id();
    let start = Instant::now();
    let stats = loop {
        if let Some(o) = swanctl(ns, &["--stats"])
            .ok()
            .filter(|o| o.status.success())
        {
            break String::from_utf8_lossy(&o.stdout).into_owned();
        }
        if !super::process::alive(pid) || start.elapsed() > READY_TIMEOUT {
            bail!(
                "charon in {ns} did not answer swanctl --stats within {} s; {}:\n{}",
                READY_TIMEOUT.as_secs(),
                log_path(run_dir, &client.name).display(),
                super::up::log_tail(&log_path(run_dir, &client.name), 10)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Err(e) = all_plugins_loaded(&stats) {
        bail!(
            "charon in {ns} (client {}) is not ready: {e}; {} has charon's own words",
            client.name,
            log_path(run_dir, &client.name).display()
        );
    }
    let load = swanctl(ns, &["--load-all", "--noprompt"])?;
    if !load.status.success() {
        bail!(
            "swanctl --load-all in {ns} failed: {}{}",
            String::from_utf8_lossy(&load.stdout),
            String::from_utf8_lossy(&load.stderr)
        );
    }
    Ok(pid)
}

/// Checks `swanctl --stats`' `loaded plugins:` line against the plugins
/// `strongswan.conf` loads: charon skips a plugin it cannot load with no
/// more than a log line (docs/ARCHITECTURE.md, "Clients"), and then
/// proposes algorithms it cannot install. The error names each plugin and
/// the package of `scripts/host-needs.list` that ships it.
pub fn all_plugins_loaded(stats: &str) -> Result<()> {
    let loaded: Vec<&str> = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("loaded plugins:"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    let needs =
        super::doctor::parse_needs(super::doctor::HOST_NEEDS).map_err(anyhow::Error::msg)?;
    let absent: Vec<String> = super::doctor::charon_load_list()
        .into_iter()
        .filter(|p| !loaded.contains(&p.as_str()))
        .map(|p| {
            let package = needs
                .iter()
                .find(|n| n.kind == super::doctor::Kind::Plugin && n.name == p)
                .and_then(|n| n.package.clone())
                .unwrap_or_else(|| "not in scripts/host-needs.list".into());
            format!("plugin '{p}' (package {package})")
        })
        .collect();
    if absent.is_empty() {
        return Ok(());
    }
    bail!(
        "it did not load {} that strongswan.conf names; install with `sudo make deps`, check with `plexnet doctor`",
        absent.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_charon_did_not_load_is_named_with_its_package() {
        let all = super::super::doctor::charon_load_list().join(" ");
        let stats = format!("worker threads: 16\nloaded plugins: charon {all}\n");
        all_plugins_loaded(&stats).expect("all loaded");
        let without = stats.replace(" gcm ", " ").replace(" openssl ", " ");
        let e = all_plugins_loaded(&without).unwrap_err().to_string();
        assert!(
            e.contains("plugin 'gcm' (package libstrongswan-standard-plugins)"),
            "{e}"
        );
        assert!(e.contains("plugin 'openssl'"), "{e}");
        assert!(
            all_plugins_loaded("uptime: 1s\n").is_err(),
            "no plugin line: nothing loaded"
        );
    }

    #[test]
    fn configs_for_figure4_client1() {
        let topo = crate::topology::load(Path::new("topologies/figure4.toml")).expect("loads");
        let c = topo.client("client1").expect("client1");
        let ike = topo.ike.as_ref().expect("IKE settings from the policy");
        let conf = swanctl_conf(&topo, c, ike);
        assert!(conf.contains("  dva1 {"), "{conf}");
        assert!(conf.contains("      dva1 {"), "{conf}");
        assert!(conf.contains("remote_addrs = 198.18.0.100"), "{conf}");
        assert!(conf.contains("id = 198.18.1.2"), "{conf}");
        assert!(conf.contains("secret = \"plexnet-figure4\""), "{conf}");
        assert!(!conf.contains('@'), "{conf}");
        let s = strongswan_conf(Path::new("/run/plexnet/figure4/client1.strongswan"));
        assert!(s.contains("socket = unix:///run/charon.vici"), "{s}");
        assert!(s.contains("socket = unix:///run/plexnet/figure4/client1.strongswan/charon.vici"));
        assert!(s.contains("path = /run/charon.log"));
        assert!(!s.contains('@'), "{s}");
    }
}
