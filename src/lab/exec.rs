//! `plexnet exec NODE -- CMD...`: run a command inside a node's namespace,
//! with `/etc/netns/<ns>/*` bind-mounted over `/etc` and `/sys` remounted,
//! exactly as `ip netns exec` does, so `ping DVA1` resolves.

use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use std::ffi::CString;
use std::path::Path;

use super::netns;

/// Replaces the current process with `argv` inside `namespace`. Must be
/// called before any other thread exists (unshare of the mount namespace).
pub fn exec_in(namespace: &str, argv: &[String]) -> Result<std::convert::Infallible> {
    if argv.is_empty() {
        bail!("no command given: plexnet exec NODE -- CMD [ARGS...]");
    }
    netns::enter(namespace)?;
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS)")?;
    // Keep our bind mounts from leaking back into the parent mount namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )
    .context("making / a slave mount")?;
    // /sys shows the links of the namespace that mounts it.
    if umount2("/sys", MntFlags::MNT_DETACH).is_ok() {
        mount(
            Some(namespace),
            "/sys",
            Some("sysfs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .context("remounting /sys")?;
    }
    bind_etc(namespace)?;
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()
        .context("an argument contains a NUL byte")?;
    let err = nix::unistd::execvp(&args[0], &args).unwrap_err();
    bail!("cannot run {}: {err}", argv[0])
}

fn bind_etc(namespace: &str) -> Result<()> {
    let dir = Path::new(netns::NETNS_ETC_DIR).join(namespace);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let target = Path::new("/etc").join(entry.file_name());
        if !target.exists() {
            continue;
        }
        mount(
            Some(&entry.path()),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| {
            format!(
                "bind-mounting {} on {}",
                entry.path().display(),
                target.display()
            )
        })?;
    }
    Ok(())
}
