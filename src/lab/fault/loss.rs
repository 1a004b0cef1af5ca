//! Random loss on a kernel without netem: a classic BPF classifier in
//! direct-action mode (tc-bpf(8), `cls_bpf`, which the kernel has with
//! `clsact`) on the ingress of the veth's other end.
//!
//! Why the other end's ingress: a packet shot on the sender's own egress
//! is refused to the sending socket (ENOBUFS), which a wire does not do;
//! dropped as it arrives at the peer, it is lost as netem's loss would
//! lose it, silently for the sender. The clsact qdisc counts the drops
//! (`tc -s qdisc show dev PEER_IF`), and `plexnet netem` shows them.

use anyhow::{bail, Result};

use super::Found;
use crate::lab::plan::{self, End};

/// `SKF_AD_OFF + SKF_AD_RANDOM` (linux/filter.h): a classic BPF load from
/// this offset yields a random 32-bit number.
const SKF_AD_RANDOM: u32 = 0xffff_f000 + 56;
/// `TC_ACT_SHOT` (linux/pkt_cls.h): drop the packet.
const TC_ACT_SHOT: u32 = 2;

/// The classifier for `loss_pct` percent, in tc's `bytecode` syntax
/// (`N,code jt jf k,...`, as `bpf_asm -c` writes it):
/// ```text
/// ld  rand          ; A = a random u32
/// rsh #1            ; A < 2^31 (T is at most 2^31 - 1)
/// jge #T, drop      ; the top p of the range is dropped
/// ret #0            ; TC_ACT_OK
/// drop: ret #2      ; TC_ACT_SHOT
/// ```
/// The shift keeps the threshold below 2^31: the kernel compares a
/// classic BPF `jge #k` against `k` sign-extended, so a threshold at or
/// above 2^31 never matched (seen on this machine's 6.18 kernel).
pub fn bytecode(loss_pct: f64) -> String {
    const HALF: f64 = (1u64 << 31) as f64;
    let threshold = (HALF * (1.0 - loss_pct / 100.0)).round().min(HALF - 1.0) as u32;
    format!("5,32 0 0 {SKF_AD_RANDOM},116 0 0 1,53 1 0 {threshold},6 0 0 0,6 0 0 {TC_ACT_SHOT}")
}

/// The far end of the veth whose near end is `iface` in `found`'s
/// namespace; an interface that is not one of the plan's veths (lo, a
/// TUN) is an error, as loss without netem needs the far end.
pub fn far_end(found: &Found, iface: &str) -> Result<End> {
    let topo = found.topology()?;
    let me = &found.node.namespace;
    let p = plan::plan(&topo, &found.lab.prefix);
    for v in p.veths {
        if v.a.ns == *me && v.a.ifname == iface {
            return Ok(v.b);
        }
        if v.b.ns == *me && v.b.ifname == iface {
            return Ok(v.a);
        }
    }
    bail!(
        "{iface} of {} is not one of the lab's links: without the kernel's netem, --loss works on links only (it drops at the link's other end)",
        found.node.name
    )
}

/// The `tc` argument lists that install the classifier on `far`'s
/// ingress: a fresh clsact qdisc, then the filter.
pub fn install_args(far: &End, loss_pct: f64) -> [Vec<String>; 2] {
    let dev = far.ifname.as_str();
    let qdisc = ["qdisc", "add", "dev", dev, "clsact"];
    let filter = [
        "filter", "add", "dev", dev, "ingress", "bpf", "da", "bytecode",
    ];
    let mut filter: Vec<String> = filter.map(String::from).to_vec();
    filter.push(bytecode(loss_pct));
    [qdisc.map(String::from).to_vec(), filter]
}

/// `tc qdisc del dev FAR clsact`: removes the classifier with its qdisc.
pub fn remove_args(far: &End) -> Vec<String> {
    ["qdisc", "del", "dev", far.ifname.as_str(), "clsact"]
        .map(String::from)
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_splits_the_halved_range() {
        assert_eq!(
            bytecode(0.0),
            "5,32 0 0 4294963256,116 0 0 1,53 1 0 2147483647,6 0 0 0,6 0 0 2"
        );
        assert!(bytecode(25.0).contains(",53 1 0 1610612736,"));
        assert!(bytecode(100.0).contains(",53 1 0 0,"));
    }
}
