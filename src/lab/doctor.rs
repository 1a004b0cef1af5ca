//! `plexnet doctor [FILE] [--json]`: does this host have what a topology
//! needs? It checks every line of `scripts/host-needs.list` (the list
//! `scripts/deps.sh` installs from, embedded here so the two cannot drift):
//! commands on the PATH, files, charon plugins and kernel features (probed
//! as root in a network namespace of its own that dies with the probe). For
//! the topology's strongSwan clients it checks that every plugin their
//! `strongswan.conf` loads is in the list and that every algorithm they may
//! negotiate with the routing stack's IKE has a loadable plugin
//! (docs/ARCHITECTURE.md, "Fresh-machine facts": without `gcm` strongSwan still
//! proposes AES-GCM for ESP, and the child SA fails to install).
//!
//! Each missing thing is printed with the command that fixes it; the
//! report's [`Report::missing`] decides the exit code.

use serde::Serialize;
use std::path::Path;

use super::strongswan;
use crate::ike::dh::DhGroup;
use crate::ike::keys::{Encr, Integ};
use crate::ike::prf::Prf;
use crate::ike::proposal::{parse_proposals, ProposalConfig, Protocol};
use crate::topology::{ClientIpsec, Topology};

mod kernel;

/// The one list of what the host needs (see the file's own header).
pub const HOST_NEEDS: &str = include_str!("../../scripts/host-needs.list");
/// Where charon looks for its plugins on Debian.
pub const PLUGIN_DIR: &str = "/usr/lib/ipsec/plugins";

/// What a line of the list names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A command that must be on the PATH.
    Command,
    /// A file that must exist.
    File,
    /// A charon plugin (`PLUGIN_DIR/libstrongswan-NAME.so`).
    Plugin,
    /// A kernel feature, probed.
    Kernel,
}

/// One line of `scripts/host-needs.list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub kind: Kind,
    pub name: String,
    /// The Debian package that provides it; `None` for the kernel.
    pub package: Option<String>,
    /// What it is for.
    pub why: String,
}

/// Parses the list: `kind name package why...`, `#` comments.
pub fn parse_needs(text: &str) -> Result<Vec<Need>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cols = line.split_whitespace();
        let (Some(kind), Some(name), Some(package)) = (cols.next(), cols.next(), cols.next())
        else {
            return Err(format!(
                "scripts/host-needs.list:{}: expected `kind name package what-for`",
                i + 1
            ));
        };
        let kind = match kind {
            "command" => Kind::Command,
            "file" => Kind::File,
            "plugin" => Kind::Plugin,
            "kernel" => Kind::Kernel,
            other => {
                return Err(format!(
                    "scripts/host-needs.list:{}: unknown kind {other:?}; allowed: command, file, plugin, kernel",
                    i + 1
                ))
            }
        };
        out.push(Need {
            kind,
            name: name.to_string(),
            package: (package != "-").then(|| package.to_string()),
            why: cols.collect::<Vec<_>>().join(" "),
        });
    }
    Ok(out)
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Missing,
    /// Could not be checked here (kernel features without root).
    Unchecked,
    /// Missing, but only one command needs it (`kernel netem`: `plexnet
    /// netem`'s delay and jitter); not counted by [`Report::missing`].
    Optional,
}

/// One checked thing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What was checked, e.g. `plugin gcm` or `client1 esp proposal aes128gcm16`.
    pub what: String,
    pub status: Status,
    /// What it is for, or what was found.
    pub detail: String,
    /// The command that fixes it, when missing.
    pub fix: Option<String>,
}

/// Everything `doctor` checked.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The topology file checked, if any.
    pub topology: Option<String>,
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many checks failed.
    pub fn missing(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.status == Status::Missing)
            .count()
    }

    /// The text `plexnet doctor` prints: missing things first, with fixes,
    /// then a one-line count of what is there.
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.topology {
            s.push_str(&format!("plexnet doctor: this host, for {t}\n"));
        }
        for f in self.findings.iter().filter(|f| f.status == Status::Missing) {
            s.push_str(&format!("  MISSING  {}: {}\n", f.what, f.detail));
            if let Some(fix) = &f.fix {
                s.push_str(&format!("           fix: {fix}\n"));
            }
        }
        for f in self
            .findings
            .iter()
            .filter(|f| f.status == Status::Unchecked)
        {
            s.push_str(&format!("  UNCHECKED {}: {}\n", f.what, f.detail));
        }
        for f in self
            .findings
            .iter()
            .filter(|f| f.status == Status::Optional)
        {
            s.push_str(&format!("  OPTIONAL {}: {}\n", f.what, f.detail));
            if let Some(fix) = &f.fix {
                s.push_str(&format!("           fix: {fix}\n"));
            }
        }
        let ok = self
            .findings
            .iter()
            .filter(|f| f.status == Status::Ok)
            .count();
        if self.missing() == 0 {
            s.push_str(&format!("  all {ok} checks passed\n"));
        } else {
            s.push_str(&format!(
                "  {} missing, {ok} present; `sudo make deps` installs every package of scripts/host-needs.list\n",
                self.missing()
            ));
        }
        s
    }
}

/// Checks this host against the list, and against `topo`'s clients.
pub fn check(topo: Option<&Topology>, topo_path: Option<&Path>) -> Report {
    let mut findings = Vec::new();
    let needs = match parse_needs(HOST_NEEDS) {
        Ok(n) => n,
        Err(e) => {
            findings.push(missing("scripts/host-needs.list", e, None));
            Vec::new()
        }
    };
    for need in needs.iter().filter(|n| n.kind != Kind::Kernel) {
        findings.push(check_need(need));
    }
    let kernel: Vec<&Need> = needs.iter().filter(|n| n.kind == Kind::Kernel).collect();
    findings.extend(kernel::probe(&kernel));
    if let Some(topo) = topo {
        findings.extend(check_strongswan_clients(topo, &needs));
    }
    Report {
        topology: topo_path.map(|p| p.display().to_string()),
        findings,
    }
}

fn missing(what: &str, detail: String, fix: Option<String>) -> Finding {
    Finding {
        what: what.to_string(),
        status: Status::Missing,
        detail,
        fix,
    }
}

fn present(what: String, detail: String) -> Finding {
    Finding {
        what,
        status: Status::Ok,
        detail,
        fix: None,
    }
}

/// The command that installs `package`: with `--reinstall` when dpkg says
/// it is installed (a file of it was removed by hand).
fn install_fix(package: Option<&str>) -> Option<String> {
    package.map(|p| {
        let again = if package_installed(p) {
            " --reinstall"
        } else {
            ""
        };
        format!("sudo apt-get install{again} --no-install-recommends {p}")
    })
}

fn package_installed(package: &str) -> bool {
    std::process::Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
}

fn check_need(need: &Need) -> Finding {
    let what = format!("{:?} {}", need.kind, need.name).to_lowercase();
    let found = match need.kind {
        Kind::Command => on_path(&need.name),
        Kind::File => Path::new(&need.name).exists(),
        Kind::Plugin => plugin_path(&need.name).exists(),
        Kind::Kernel => unreachable!("kernel features are probed"),
    };
    if found {
        return present(what, need.why.clone());
    }
    let detail = match (need.kind, &need.package) {
        (Kind::Plugin, Some(p)) => format!(
            "{} is not there ({}); package {p}",
            plugin_path(&need.name).display(),
            need.why
        ),
        (_, Some(p)) => format!("not found ({}); package {p}", need.why),
        (_, None) => format!("not found ({})", need.why),
    };
    missing(&what, detail, install_fix(need.package.as_deref()))
}

/// The plugin's shared object.
pub fn plugin_path(name: &str) -> std::path::PathBuf {
    Path::new(PLUGIN_DIR).join(format!("libstrongswan-{name}.so"))
}

/// Whether `cmd` is an executable on the PATH, or in the directories
/// sudo's `secure_path` adds (the README's commands run under sudo).
fn on_path(cmd: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain([
            "/usr/local/sbin",
            "/usr/local/bin",
            "/usr/sbin",
            "/usr/bin",
            "/sbin",
            "/bin",
        ])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(cmd))
        .any(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    found
}

/// The plugins strongSwan clients load: the `load =` line of
/// `netns/strongswan/strongswan.conf.in` (`load_modular = no`, so charon
/// loads exactly these).
pub fn charon_load_list() -> Vec<String> {
    strongswan::STRONGSWAN_CONF_IN
        .lines()
        .find_map(|l| l.trim().strip_prefix("load ="))
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default()
}

/// The charon plugins that can provide an algorithm: any one of the sets
/// (all plugins of a set loaded) will do. From strongSwan's plugin list:
/// `aes`, `sha1`, `sha2`, `hmac`, `gmp`, `curve25519` register software
/// implementations, `gcm` builds AES-GCM on an AES crypter, and `openssl`
/// registers all of them plus the ECP groups.
fn plugin_sets(alg: Alg) -> &'static [&'static [&'static str]] {
    match alg {
        Alg::Encr(Encr::AesCbc { .. }) => &[&["aes"], &["openssl"]],
        Alg::Encr(Encr::AesGcm16 { .. }) => &[&["gcm", "aes"], &["openssl"]],
        Alg::Integ(Integ::HmacSha1_96) | Alg::Prf(Prf::HmacSha1) => {
            &[&["hmac", "sha1"], &["openssl"]]
        }
        Alg::Integ(_) | Alg::Prf(_) => &[&["hmac", "sha2"], &["openssl"]],
        Alg::Dh(DhGroup::Modp2048 | DhGroup::Modp3072 | DhGroup::Modp4096) => {
            &[&["gmp"], &["openssl"]]
        }
        Alg::Dh(DhGroup::Ecp256 | DhGroup::Ecp384) => &[&["openssl"]],
        Alg::Dh(DhGroup::Curve25519) => &[&["curve25519"], &["openssl"]],
    }
}

/// An algorithm of a proposal that the routing stack's IKE implements (so
/// it may be negotiated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Encr(Encr),
    Integ(Integ),
    Prf(Prf),
    Dh(DhGroup),
}

impl Alg {
    fn name(self) -> String {
        match self {
            Alg::Encr(Encr::AesCbc { key_bits }) => format!("aes{key_bits}"),
            Alg::Encr(Encr::AesGcm16 { key_bits }) => format!("aes{key_bits}gcm16"),
            Alg::Integ(i) => format!("{i:?}").to_lowercase(),
            Alg::Prf(p) => format!("prf-{p:?}").to_lowercase(),
            Alg::Dh(d) => format!("{d:?}").to_lowercase(),
        }
    }
}

/// Every algorithm of `proposals`, once each, in order.
fn algorithms(proposals: &[ProposalConfig]) -> Vec<Alg> {
    let mut out = Vec::new();
    for p in proposals {
        let all = p.encr.iter().map(|e| Alg::Encr(*e));
        let all = all.chain(p.integ.iter().map(|i| Alg::Integ(*i)));
        let all = all.chain(p.prf.iter().map(|f| Alg::Prf(*f)));
        for a in all.chain(p.dh.iter().map(|d| Alg::Dh(*d))) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    out
}

/// The strongSwan clients' plugins and proposals (see the module doc).
fn check_strongswan_clients(topo: &Topology, needs: &[Need]) -> Vec<Finding> {
    let clients: Vec<&str> = topo
        .clients
        .iter()
        .filter(|c| c.ipsec == ClientIpsec::Strongswan)
        .map(|c| c.name.as_str())
        .collect();
    if clients.is_empty() {
        return Vec::new();
    }
    let load = charon_load_list();
    let mut out: Vec<Finding> = load
        .iter()
        .filter(|p| !needs.iter().any(|n| n.kind == Kind::Plugin && &n.name == *p))
        .map(|p| {
            missing(
                &format!("plugin {p}"),
                "netns/strongswan/strongswan.conf.in loads it, but scripts/host-needs.list does not name it (nothing installs it)".into(),
                Some(format!("add a `plugin {p} PACKAGE` line to scripts/host-needs.list (dpkg -S {PLUGIN_DIR}/libstrongswan-{p}.so names the package)")),
            )
        })
        .collect();
    let Some(ike) = &topo.ike else {
        return out;
    };
    let who = clients.join(", ");
    for (label, protocol, text) in [
        ("ike", Protocol::Ike, &ike.proposals),
        ("esp", Protocol::Esp, &ike.esp_proposals),
    ] {
        out.extend(check_proposals(&who, label, protocol, text, &load, needs));
    }
    out
}

fn check_proposals(
    who: &str,
    label: &str,
    protocol: Protocol,
    text: &str,
    load: &[String],
    needs: &[Need],
) -> Vec<Finding> {
    let what = format!("{who} {label} proposal");
    let proposals = match parse_proposals(protocol, text) {
        Ok(p) => p,
        Err(e) => {
            return vec![missing(
                &what,
                format!("plexnet's IKE cannot use them: {e}"),
                None,
            )]
        }
    };
    algorithms(&proposals)
        .into_iter()
        .map(|alg| check_algorithm(&what, alg, load, needs))
        .collect()
}

/// An algorithm is loadable when all plugins of one of its sets are both
/// in charon's load list and on disk.
fn check_algorithm(what: &str, alg: Alg, load: &[String], needs: &[Need]) -> Finding {
    let what = format!("{what}: {}", alg.name());
    let usable = |set: &&&[&str]| {
        set.iter()
            .all(|p| load.iter().any(|l| l == p) && plugin_path(p).exists())
    };
    if let Some(set) = plugin_sets(alg).iter().find(usable) {
        return present(what, format!("charon loads it with {}", set.join("+")));
    }
    let options: Vec<String> = plugin_sets(alg).iter().map(|set| set.join("+")).collect();
    let packages = packages_for(plugin_sets(alg)[0], load, needs);
    missing(
        &what,
        format!(
            "the client may negotiate it with the routing stack, but its charon cannot load it: needs plugin {} ({})",
            options.join(" or "),
            packages.join(", ")
        ),
        install_fix(Some(&packages.join(" "))),
    )
}

/// The packages of the plugins in `set` that are missing from disk (or all
/// of them if none is), from the list.
fn packages_for(set: &[&str], _load: &[String], needs: &[Need]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let wanted: Vec<&&str> = set.iter().filter(|p| !plugin_path(p).exists()).collect();
    for p in if wanted.is_empty() {
        set.iter().collect()
    } else {
        wanted
    } {
        let pkg = needs
            .iter()
            .find(|n| n.kind == Kind::Plugin && n.name == **p)
            .and_then(|n| n.package.clone())
            .unwrap_or_else(|| format!("the package of plugin {p}"));
        if !out.contains(&pkg) {
            out.push(pkg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_names_every_plugin_charon_loads() {
        let needs = parse_needs(HOST_NEEDS).expect("host-needs.list parses");
        for p in charon_load_list() {
            assert!(
                needs.iter().any(|n| n.kind == Kind::Plugin && n.name == p),
                "plugin {p} is loaded by strongswan.conf.in but not in the list"
            );
        }
        let gcm = needs.iter().find(|n| n.name == "gcm").expect("gcm");
        assert_eq!(
            gcm.package.as_deref(),
            Some("libstrongswan-standard-plugins")
        );
        assert!(needs
            .iter()
            .any(|n| n.kind == Kind::Kernel && n.name == "tun-offload"));
    }

    #[test]
    fn a_bad_line_is_located() {
        let e = parse_needs("command curl curl ok\nwidget x y z\n").unwrap_err();
        assert!(
            e.contains("host-needs.list:2") && e.contains("widget"),
            "{e}"
        );
        let e = parse_needs("command curl\n").unwrap_err();
        assert!(e.contains(":1:"), "{e}");
    }

    #[test]
    fn default_esp_needs_gcm_and_ecp_needs_openssl() {
        let esp = parse_proposals(Protocol::Esp, "default").unwrap();
        let algs = algorithms(&esp);
        assert!(algs.contains(&Alg::Encr(Encr::AesGcm16 { key_bits: 128 })));
        assert_eq!(
            plugin_sets(Alg::Encr(Encr::AesGcm16 { key_bits: 128 })),
            &[&["gcm", "aes"][..], &["openssl"][..]]
        );
        assert_eq!(plugin_sets(Alg::Dh(DhGroup::Ecp256)), &[&["openssl"][..]]);
    }

    #[test]
    fn an_algorithm_without_its_plugin_in_the_load_list_is_missing_with_its_package() {
        let needs = parse_needs(HOST_NEEDS).unwrap();
        let load: Vec<String> = ["aes", "sha1", "hmac"].map(String::from).to_vec();
        let f = check_algorithm("client1 esp", Alg::Dh(DhGroup::Ecp256), &load, &needs);
        assert_eq!(f.status, Status::Missing);
        assert!(f.detail.contains("openssl"), "{}", f.detail);
        assert!(
            f.fix
                .as_deref()
                .unwrap()
                .contains("libstrongswan-standard-plugins"),
            "{f:?}"
        );
    }

    #[test]
    fn render_lists_the_missing_with_fixes_and_counts() {
        let r = Report {
            topology: Some("topologies/figure4.toml".into()),
            findings: vec![
                present("command curl".into(), "ok".into()),
                missing(
                    "plugin gcm",
                    "absent".into(),
                    Some("sudo apt-get install x".into()),
                ),
            ],
        };
        let s = r.render();
        assert!(s.contains("MISSING  plugin gcm: absent"), "{s}");
        assert!(s.contains("fix: sudo apt-get install x"), "{s}");
        assert!(s.contains("1 missing, 1 present"), "{s}");
        assert_eq!(r.missing(), 1);
    }
}
