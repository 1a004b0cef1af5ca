//! Helpers shared by the integration tests that need namespaces.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// True when the test may create namespaces. Root always runs them (CI and
/// `sudo make test` are root); outside CI a non-root run skips with a message
/// naming what is missing; in CI a missing requirement fails the test.
pub fn can_use_namespaces(test: &str) -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root (run `sudo make test`)")
    } else if !Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var_os("CI").is_some() => {
            panic!("{test}: needs {what}, and CI must run it")
        }
        Some(what) => {
            eprintln!("SKIPPED {test}: needs {what}");
            false
        }
    }
}

pub fn plexnet(prefix: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plexnet"))
        .arg("--prefix")
        .arg(prefix)
        .args(args)
        .output()
        .expect("running plexnet")
}

pub fn ok(prefix: &str, args: &[&str]) -> String {
    let out = plexnet(prefix, args);
    assert!(
        out.status.success(),
        "plexnet {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Brings the lab down when dropped, also when the test panics.
pub struct LabGuard {
    pub prefix: &'static str,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = plexnet(self.prefix, &["down", "--all"]);
    }
}

/// Namespaces in /run/netns starting with `prefix`.
pub fn namespaces(prefix: &str) -> Vec<String> {
    plexnet::lab::netns::list_with_prefix(prefix)
}
