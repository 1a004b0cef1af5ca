//! Probes the kernel features of `scripts/host-needs.list` for real, the
//! way the lab uses them: on a thread that moves into a network namespace
//! of its own (`unshare(CLONE_NEWNET)`), which the kernel removes with
//! everything created in it when the thread ends, so a probe leaves
//! nothing behind, also when it fails.

use std::io::IoSlice;
use std::net::{SocketAddrV4, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::Command;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, MsgFlags, SockaddrIn,
};

use super::{missing, present, Finding, Need, Status};

/// Results for each kernel line of the list. Without root nothing can be
/// probed: each feature is reported unchecked, which is not a failure.
pub(super) fn probe(needs: &[&Need]) -> Vec<Finding> {
    if needs.is_empty() {
        return Vec::new();
    }
    if !nix::unistd::geteuid().is_root() {
        return needs
            .iter()
            .map(|n| Finding {
                what: format!("kernel {}", n.name),
                status: Status::Unchecked,
                detail: format!("{}; probing needs root: sudo plexnet doctor", n.why),
                fix: None,
            })
            .collect();
    }
    let owned: Vec<Need> = needs.iter().map(|n| (*n).clone()).collect();
    std::thread::spawn(move || probe_in_own_netns(&owned))
        .join()
        .unwrap_or_else(|_| {
            vec![missing(
                "kernel probes",
                "the probing thread panicked".into(),
                None,
            )]
        })
}

fn probe_in_own_netns(needs: &[Need]) -> Vec<Finding> {
    let netns = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(CLONE_NEWNET): {e}"));
    let lo = netns
        .clone()
        .and_then(|()| ip(&["link", "set", "lo", "up"]));
    needs
        .iter()
        .map(|n| {
            let result = match n.name.as_str() {
                "netns" => netns.clone(),
                _ if netns.is_err() => Err("no network namespace to probe in".into()),
                "veth" => ip(&[
                    "link", "add", "plxdoc0", "type", "veth", "peer", "name", "plxdoc1",
                ]),
                "bridge" => ip(&["link", "add", "plxdocbr", "type", "bridge"]),
                "tun-offload" => tun_with_offloads(),
                "udp-gso" => lo.clone().and_then(|()| udp_gso_roundtrip(false)),
                "udp-gro" => lo.clone().and_then(|()| udp_gso_roundtrip(true)),
                "tbf" => lo.clone().and_then(|()| {
                    qdisc(&["tbf", "rate", "1gbit", "burst", "32kb", "latency", "200ms"])
                }),
                "netem" => lo
                    .clone()
                    .and_then(|()| qdisc(&["netem", "delay", "1ms", "loss", "1%"])),
                other => Err(format!(
                    "doctor has no probe for kernel feature {other:?} (scripts/host-needs.list)"
                )),
            };
            finding(n, result)
        })
        .collect()
}

/// Kernel features only one command needs: missing, they are reported
/// but do not fail `doctor` (the topologies run without them).
const OPTIONAL: [&str; 1] = ["netem"];

fn finding(n: &Need, result: Result<(), String>) -> Finding {
    let what = format!("kernel {}", n.name);
    match result {
        Ok(()) => present(what, n.why.clone()),
        Err(e) if OPTIONAL.contains(&n.name.as_str()) => Finding {
            what,
            status: super::Status::Optional,
            detail: format!("{} ({e})", n.why),
            fix: Some(format!(
                "run on a kernel with {} (Debian's kernels have it as a module: modprobe sch_{})",
                n.name, n.name
            )),
        },
        Err(e) => missing(
            &what,
            format!("{} ({e})", n.why),
            Some(format!(
                "run on a kernel with {} (see `uname -r`; inside a container, allow CAP_NET_ADMIN and /dev/net/tun)",
                n.name
            )),
        ),
    }
}

/// `tc qdisc add dev lo root ARGS` in this thread's namespace: the qdisc
/// kind exists in this kernel.
fn qdisc(args: &[&str]) -> Result<(), String> {
    let mut argv = vec!["qdisc", "add", "dev", "lo", "root"];
    argv.extend_from_slice(args);
    let out = Command::new("tc")
        .args(&argv)
        .output()
        .map_err(|e| format!("running tc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "tc {}: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS` in this thread's namespace (the child inherits it).
fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A TUN with IFF_VNET_HDR and TSO/USO offloads, as every image opens it
/// (`runtime::tunio::create`).
fn tun_with_offloads() -> Result<(), String> {
    tun_rs::DeviceBuilder::new()
        .name("plxdoctun")
        .offload(true)
        .build_sync()
        .map(drop)
        .map_err(|e| format!("opening /dev/net/tun with offloads: {e}"))
}

/// Sends two 100-byte segments as one `UDP_SEGMENT` send over loopback
/// and reads them back; with `gro`, the receiver has `UDP_GRO` on and
/// must get them.
fn udp_gso_roundtrip(gro: bool) -> Result<(), String> {
    let any = SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 0);
    let rx = UdpSocket::bind(any).map_err(|e| format!("binding a UDP socket: {e}"))?;
    let tx = UdpSocket::bind(any).map_err(|e| format!("binding a UDP socket: {e}"))?;
    if gro {
        setsockopt(&rx, sockopt::UdpGroSegment, &true).map_err(|e| format!("UDP_GRO: {e}"))?;
    }
    rx.set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let to = match rx.local_addr() {
        Ok(std::net::SocketAddr::V4(a)) => SockaddrIn::from(a),
        other => return Err(format!("receiver address: {other:?}")),
    };
    let payload = [0x5au8; 200];
    let segment: u16 = 100;
    sendmsg(
        tx.as_raw_fd(),
        &[IoSlice::new(&payload)],
        &[ControlMessage::UdpGsoSegments(&segment)],
        MsgFlags::empty(),
        Some(&to),
    )
    .map_err(|e| format!("sendmsg with UDP_SEGMENT: {e}"))?;
    let mut got = 0;
    let mut buf = [0u8; 512];
    while got < payload.len() {
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut cmsg = nix::cmsg_space!(i32);
        let msg =
            recvmsg::<SockaddrIn>(rx.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
                .map_err(|e| format!("reading the segments back: {e}"))?;
        got += msg.bytes;
    }
    Ok(())
}
