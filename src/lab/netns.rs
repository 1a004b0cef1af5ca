//! Named network namespaces, made the way iproute2 makes them, so `ip netns`
//! and `ip netns exec` see ours: a file in `/run/netns/` with the namespace
//! bind-mounted on it, inside a shared mount of `/run/netns`.

use anyhow::{Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Where named namespaces live (iproute2's `NETNS_RUN_DIR`).
pub const NETNS_DIR: &str = "/run/netns";
/// Per-namespace files bind-mounted over `/etc` by `ip netns exec` and by
/// `plexnet exec` (we write `hosts` there).
pub const NETNS_ETC_DIR: &str = "/etc/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

/// Namespaces whose name starts with `prefix`, sorted.
pub fn list_with_prefix(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(NETNS_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Makes `/run/netns` a shared mount point, as `ip netns add` does, so that
/// namespace mounts propagate into private mount namespaces (`ip netns exec`).
fn prepare_netns_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).with_context(|| format!("creating {NETNS_DIR}"))?;
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    if mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>).is_ok() {
        return Ok(());
    }
    // Not a mount point yet: bind it onto itself, then make it shared.
    mount(
        Some(NETNS_DIR),
        NETNS_DIR,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind-mounting {NETNS_DIR} onto itself"))?;
    mount(None::<&str>, NETNS_DIR, None::<&str>, shared, None::<&str>)
        .with_context(|| format!("making {NETNS_DIR} a shared mount"))
}

/// Creates the named namespace `name`. Fails if it exists.
pub fn create(name: &str) -> Result<()> {
    prepare_netns_dir()?;
    let target = path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .with_context(|| format!("creating {}", target.display()))?;
    // unshare() moves only the calling thread; a short-lived thread keeps
    // the caller in its own namespace. The bind mount keeps the new one alive.
    let bind_target = target.clone();
    let result = std::thread::spawn(move || -> Result<()> {
        unshare(CloneFlags::CLONE_NEWNET).context("unshare(CLONE_NEWNET)")?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &bind_target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("bind-mounting the namespace on {}", bind_target.display()))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace thread panicked"))?;
    if result.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    result
}

/// Removes the named namespace; a missing one is not an error. The kernel
/// frees the namespace (and destroys its veths) once no process is left in it.
pub fn delete(name: &str) -> Result<()> {
    let target = path(name);
    if !target.exists() {
        return Ok(());
    }
    // EINVAL: not mounted (a half-created namespace); the file still goes.
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    std::fs::remove_file(&target).with_context(|| format!("removing {}", target.display()))?;
    let etc = Path::new(NETNS_ETC_DIR).join(name);
    if etc.exists() {
        std::fs::remove_dir_all(&etc).with_context(|| format!("removing {}", etc.display()))?;
    }
    Ok(())
}

/// Opens a namespace for `setns`.
pub fn open(name: &str) -> Result<File> {
    File::open(path(name)).with_context(|| format!("opening namespace {name}"))
}

/// Moves the calling thread into namespace `name` for good (daemons, exec).
pub fn enter(name: &str) -> Result<()> {
    let ns = open(name)?;
    setns(&ns, CloneFlags::CLONE_NEWNET).with_context(|| format!("entering namespace {name}"))
}

/// The calling thread is in namespace `name` until this guard drops, then
/// back where it was. Used while opening netlink sockets and writing sysctls
/// for several namespaces from one thread.
#[derive(Debug)]
pub struct Inside {
    home: File,
}

impl Inside {
    pub fn enter(name: &str) -> Result<Self> {
        let home = File::open("/proc/thread-self/ns/net").context("opening own namespace")?;
        enter(name)?;
        Ok(Self { home })
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        // Failing to go home would leave the thread in a lab namespace: stop.
        if let Err(e) = setns(&self.home, CloneFlags::CLONE_NEWNET) {
            panic!("cannot return to the original network namespace: {e}");
        }
    }
}

/// The inode of a namespace file: two paths name the same namespace when
/// their inodes agree (used to find every process inside a namespace).
pub fn inode(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// Writes a sysctl of the namespace the calling thread is in, e.g.
/// `net/ipv4/ip_forward`. `/proc/sys/net` resolves per thread.
pub fn sysctl(key: &str, value: &str) -> Result<()> {
    let p = Path::new("/proc/sys").join(key);
    std::fs::write(&p, value).with_context(|| format!("setting sysctl {key}={value}"))
}
