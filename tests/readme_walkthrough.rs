//! README.md's walk-throughs, run as written: the commands (`$ ` lines) of
//! the ```console blocks marked `<!-- walkthrough: main -->` and
//! `<!-- walkthrough: takeover -->` go into one bash script, in order, so
//! the README and this test cannot drift. Then the test checks what the
//! README promises: plaintext to DVA1:80 is refused before the SA is up
//! (MVS1's filter names the rule), the initiate succeeds, the curls are answered by at
//! least two images, client1's wire carries ESP in UDP to DVA1 and no
//! plaintext TCP to it, tshark with `plexnet ipsec MVS1 --wireshark-keys`
//! decrypts every ESP packet and finds its ICV good, and after `kill -9` of
//! MVS1, MVS5 holds DVA1 and its targets answer.
//!
//! What the script changes, and only this (see [`script`]):
//! - `sudo CMD` execs CMD (the test is root already; the environment stays,
//!   so `PLEXNET_PREFIX=plxrd-` keeps the lab apart from a user's `plx-`
//!   one);
//! - `make topology` and `make down` do what the Makefile does after it has
//!   installed and built (`plexnet doctor`, `plexnet up`; `plexnet down
//!   --all`) with this build's plexnet, first on the PATH;
//! - `/tmp/` is the test's own temporary directory.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const PREFIX: &str = "plxrd-";
const DVA1: &str = "198.18.0.100";

/// The commands of the README's ```console block after `<!-- walkthrough: NAME -->`.
fn walkthrough(readme: &str, name: &str) -> Vec<String> {
    let marker = format!("<!-- walkthrough: {name} -->");
    let at = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no {marker}"));
    let rest = &readme[at + marker.len()..];
    let body = rest
        .trim_start()
        .strip_prefix("```console\n")
        .unwrap_or_else(|| panic!("{marker} is not followed by a ```console block"));
    let body = &body[..body.find("```").expect("the block ends")];
    let cmds: Vec<String> = body
        .lines()
        .filter_map(|l| l.strip_prefix("$ "))
        .map(str::to_string)
        .collect();
    assert!(!cmds.is_empty(), "{marker}: no `$ ` commands");
    cmds
}

/// What one command printed and how it ended.
#[derive(Debug)]
struct Step {
    cmd: String,
    output: String,
    status: i32,
}

/// `sudo` and `make` as the walk-through meets them (see the module doc):
/// executables first on the PATH, so a background `sudo ... &` is the
/// command itself and `kill %1` reaches it, as with the real sudo.
const SUDO: &str =
    "#!/bin/sh\n# the test is root already; keep the environment (PLEXNET_PREFIX)\nexec \"$@\"\n";
const MAKE: &str =
    "#!/bin/sh\n# what the Makefile does once installed and built, with this build's plexnet\n\
case \"$*\" in\n\
  topology) plexnet doctor topologies/figure4.toml && exec plexnet up topologies/figure4.toml ;;\n\
  down) exec plexnet down --all ;;\n\
  *) echo \"the walk-through test does not know make $*\"; exit 2 ;;\n\
esac\n";

/// The bash script: every command between markers that let [`run`] split
/// the output per command.
fn script(cmds: &[String], bin: &Path, tmp: &Path) -> String {
    let mut s = format!(
        "exec 2>&1\nexport PLEXNET_PREFIX={PREFIX}\nexport PATH={}:$PATH\n",
        bin.display()
    );
    for (i, c) in cmds.iter().enumerate() {
        let c = c.replace("/tmp/", &format!("{}/", tmp.display()));
        s.push_str(&format!("echo '@@BEGIN {i}'\n{c}\necho \"@@END {i} $?\"\n"));
    }
    s
}

/// Writes an executable script.
fn executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("writing a shim");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Runs the commands in one bash (background jobs and `kill %1` work as in
/// a terminal) and splits what each printed.
fn run(cmds: &[String], tmp: &Path) -> Vec<Step> {
    let bin = tmp.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let link = bin.join("plexnet");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_plexnet"), &link).expect("plexnet link");
    executable(&bin.join("sudo"), SUDO);
    executable(&bin.join("make"), MAKE);
    let out = Command::new("bash")
        .arg("-c")
        .arg(script(cmds, &bin, tmp))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("WIRESHARK_CONFIG_DIR", tmp.join("no-keys"))
        .output()
        .expect("bash");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    cmds.iter()
        .enumerate()
        .map(|(i, cmd)| {
            let begin = format!("@@BEGIN {i}\n");
            let from = text.find(&begin).map(|p| p + begin.len());
            let end = format!("@@END {i} ");
            let to = text.find(&end);
            let (Some(from), Some(to)) = (from, to) else {
                panic!("command {i} `{cmd}` did not finish; everything printed:\n{text}");
            };
            let status = text[to + end.len()..]
                .lines()
                .next()
                .and_then(|n| n.trim().parse().ok())
                .expect("exit status");
            Step {
                cmd: cmd.clone(),
                output: text[from..to].to_string(),
                status,
            }
        })
        .collect()
}

fn step<'a>(steps: &'a [Step], starts: &str) -> &'a Step {
    steps
        .iter()
        .find(|s| s.cmd.starts_with(starts))
        .unwrap_or_else(|| panic!("the walk-through has no command starting {starts:?}"))
}

/// Prints what every command printed (the test's log), then checks that
/// each exited 0.
fn all_succeeded(steps: &[Step]) {
    for s in steps {
        eprintln!("$ {}  [exit {}]\n{}", s.cmd, s.status, s.output.trim_end());
    }
    for s in steps {
        assert_eq!(
            s.status, 0,
            "`{}` exited {}:\n{}",
            s.cmd, s.status, s.output
        );
    }
}

/// tshark's `fields` for every packet of `pcap` that `filter` selects.
fn tshark(pcap: &Path, config: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.env("WIRESHARK_CONFIG_DIR", config)
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-E", "separator=;"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark (package tshark)");
    assert!(
        out.status.success(),
        "tshark -Y {filter}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split(';').map(str::to_string).collect())
        .collect()
}

/// The images that answered the README's curl loop.
fn answered_by(steps: &[Step]) -> Vec<String> {
    let curls = step(steps, "for i in 1 2 3");
    let answers: Vec<String> = curls.output.lines().map(str::to_string).collect();
    assert_eq!(
        answers.len(),
        3,
        "three curls, three answers:\n{}",
        curls.output
    );
    for a in &answers {
        assert!(a.starts_with("served by MVS"), "{a}");
    }
    answers
}

/// client1's wire: ESP in UDP to DVA1, no TCP in clear to or from it, and
/// every ESP packet decrypted with an ICV that checks, with the keys the
/// README's `--wireshark-keys DIR` wrote. Returns (ESP packets, ICVs good).
fn check_the_wire(tmp: &Path) -> (usize, usize) {
    let pcap = tmp.join("c1.pcap");
    let keys = tmp.join("c1-keys");
    let none = tmp.join("no-keys");
    std::fs::create_dir_all(&none).expect("empty Wireshark config");
    let esp_to_dva1 = tshark(
        &pcap,
        &none,
        &format!("esp && udp.dstport == 4500 && ip.dst == {DVA1}"),
        &["frame.number"],
    );
    assert!(
        !esp_to_dva1.is_empty(),
        "no ESP in UDP to DVA1 on client1's wire"
    );
    let clear = tshark(
        &pcap,
        &none,
        &format!("tcp && !esp && ip.addr == {DVA1}"),
        &["frame.number", "tcp.srcport", "tcp.dstport"],
    );
    assert!(clear.is_empty(), "plaintext TCP to or from DVA1: {clear:?}");
    let esp = tshark(&pcap, &keys, "esp", &["esp.spi", "esp.icv_good", "ip.src"]);
    let good = esp.iter().filter(|f| f[1] == "1").count();
    for f in &esp {
        assert_eq!(f[1], "1", "ESP packet without a good ICV: {f:?}");
        assert!(
            f[2].contains(','),
            "ESP packet not decrypted (no inner IP): {f:?}"
        );
    }
    (esp.len(), good)
}

fn main_walkthrough(readme: &str, tmp: &Path) {
    let steps = run(&walkthrough(readme, "main"), tmp);
    all_succeeded(&steps);
    let initiate = step(&steps, "sudo plexnet exec client1 -- swanctl --initiate");
    assert!(
        initiate.output.contains("initiate completed successfully"),
        "{}",
        initiate.output
    );
    let refused = step(
        &steps,
        "sudo plexnet exec client1 -- curl -s -m 2 http://DVA1/ ||",
    );
    assert!(
        refused.output.contains("Denied: dva1-web clear-text"),
        "plaintext before IKE:\n{}",
        refused.output
    );
    let answers = answered_by(&steps);
    let images: BTreeSet<&String> = answers.iter().collect();
    assert!(images.len() >= 2, "curls answered by {images:?}");
    let (esp, good) = check_the_wire(tmp);
    let http = step(&steps, "WIRESHARK_CONFIG_DIR=");
    assert!(
        http.output.contains("HTTP"),
        "tshark -Y http:\n{}",
        http.output
    );
    eprintln!(
        "readme main walk-through: {} commands; curls answered by {images:?}; {esp} ESP packets on client1's wire, {good} ICVs good, 0 plaintext TCP to DVA1",
        steps.len()
    );
}

fn takeover_walkthrough(readme: &str, tmp: &Path) {
    let steps = run(&walkthrough(readme, "takeover"), tmp);
    all_succeeded(&steps);
    let cfg = step(&steps, "sudo plexnet netstat MVS5 vipadcfg");
    let dva1 = cfg
        .output
        .lines()
        .find(|l| l.trim_start().starts_with(DVA1) && l.contains("Active"))
        .unwrap_or_else(|| panic!("DVA1 not Active in MVS5's VIPA status:\n{}", cfg.output));
    assert!(dva1.contains("MVS5"), "{dva1}");
    let curl = step(&steps, "sudo plexnet exec client1 -- curl");
    let by = curl.output.trim();
    assert!(
        ["served by MVS2", "served by MVS3", "served by MVS4"].contains(&by),
        "after the takeover: {by:?}"
    );
    let sas = step(&steps, "sudo plexnet exec client1 -- swanctl --list-sas");
    assert!(sas.output.contains("ESTABLISHED"), "{}", sas.output);
    assert!(
        namespaces(PREFIX).is_empty(),
        "make down left {:?}",
        namespaces(PREFIX)
    );
    eprintln!("readme takeover walk-through: DVA1 at MVS5 ({dva1}); curl {by:?}");
}

#[test]
fn the_readme_walkthroughs_work_as_written() {
    if !can_use_namespaces("readme_walkthrough") {
        return;
    }
    let _guard = LabGuard { prefix: PREFIX };
    let _ = plexnet(PREFIX, &["down", "--all"]);
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .expect("README.md");
    let tmp = tempfile::tempdir().expect("temp dir");
    // It stands for /tmp: tcpdump drops to its own user and writes there.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod 1777");
    main_walkthrough(&readme, tmp.path());
    takeover_walkthrough(&readme, tmp.path());
}
