//! What the image's control socket answers: `status`, `netstat` and
//! `ipsec`, from the image's stacks and counters and the shell's.

use serde::Serialize;
use std::net::Ipv4Addr;

use super::{dvipas_of, manual_bundle, manual_install, ImageNode, ShellCounters};
use crate::lab::plan::TUN_NAME;
use crate::sysplex::image::{GivebackState, ImageCounters};
use crate::sysplex::routing::RoutingStack;
use crate::topology::Topology;

impl ImageNode {
    /// `plexnet netstat NODE REPORT`.
    pub fn netstat(
        &self,
        report: crate::runtime::display::Report,
    ) -> crate::runtime::display::Netstat {
        use crate::runtime::display::{self, Report};
        let core = self.core();
        let routing = core.image.routing();
        let mut n = display::Netstat {
            image: self.name.clone(),
            report,
            routing: routing.is_some_and(|r| r.distributions().next().is_some()),
            vipadcfg: None,
            vdpt: Vec::new(),
            vcrt: Vec::new(),
            conn: Vec::new(),
            dct: None,
        };
        match report {
            Report::Vipadcfg => {
                let mut cfg = display::vipadcfg(&self.topo, &self.name);
                if let Some(t) = self.takeover.get() {
                    let watches = super::super::takeover::watch_rows(&core.image);
                    let watches = if watches.is_empty() {
                        t.unhanded().into_iter().map(|w| (w, None)).collect()
                    } else {
                        watches
                    };
                    cfg.status = t.status_rows_of(&watches);
                }
                n.vipadcfg = Some(cfg);
            }
            Report::Vdpt => n.vdpt = routing.map(display::vdpt).unwrap_or_default(),
            Report::Vcrt => {
                n.vcrt = routing.map(display::vcrt).unwrap_or_default();
                n.dct = routing.map(display::dct_summary);
            }
            Report::Conn => n.conn = display::conn(),
        }
        n
    }

    /// `plexnet ipsec NODE`.
    pub fn ipsec(&self) -> crate::runtime::display::IpsecDisplay {
        let core = self.core();
        let (routing, target) = (core.image.routing(), core.image.target());
        let mut d = crate::runtime::display::ipsec(&self.name, routing, target);
        let sec = self
            .topo
            .image(&self.name)
            .and_then(|i| i.ip_security.as_ref());
        d.filters = crate::runtime::display::filters(sec, routing, target);
        crate::runtime::display::mark_origins(&mut d, &manual_spis(&self.topo));
        d
    }

    /// The status the control socket answers.
    pub fn status(&self) -> serde_json::Value {
        let (_, served) = dvipas_of(&self.topo, &self.name);
        let owned = self.owned_now();
        let core = self.core();
        let image = &core.image;
        let label = |a: &Ipv4Addr| self.topo.label(*a);
        let mut roles = Vec::new();
        if !owned.is_empty() {
            roles.push(format!(
                "owns {}",
                owned.iter().map(label).collect::<Vec<_>>().join(", ")
            ));
        }
        let targets: Vec<String> = self
            .topo
            .distributed_to(&self.name)
            .iter()
            .map(label)
            .collect();
        if !targets.is_empty() {
            roles.push(format!("target of {}", targets.join(", ")));
        }
        // A giveback under way (z/OS shows the DVIPA MOVING).
        for w in image.watches() {
            let d = label(&w.dvipa);
            match image.giveback_state(w.dvipa) {
                Some(GivebackState::WaitingIdle { to, connections }) => roles.push(format!(
                    "gives {d} back to {to} when idle ({connections} connections)"
                )),
                Some(GivebackState::Flushing { to } | GivebackState::Offered { to }) => {
                    roles.push(format!("{d} MOVING to {to}"))
                }
                Some(GivebackState::Taking { from }) => {
                    roles.push(format!("taking {d} back from {from}"))
                }
                None => {}
            }
        }
        let kernel_tun = KernelTun::read(TUN_NAME);
        let tun_drops = kernel_tun
            .as_ref()
            .map_or(0, |k| k.rx_dropped + k.tx_dropped);
        let mut summary = format!(
            "{}; {} echo replies, {} shadow SAs, {} connections served, {} opened, {} sealed",
            if roles.is_empty() {
                "no DVIPA role".to_string()
            } else {
                roles.join(", ")
            },
            image.stack().counters().echo_replies,
            image.target().shadow().len(),
            image.target().served().counters().connections,
            image.target().counters().opened,
            image.target().counters().sealed,
        );
        if tun_drops > 0 {
            summary.push_str(&format!(", {tun_drops} dropped by the kernel at the TUN"));
        }
        serde_json::json!({
            "node": self.name,
            "role": "image",
            "ready": true,
            "pid": std::process::id(),
            "tun": TUN_NAME,
            "xcf": self.xcf.to_string(),
            "xcf_forwarding": self.topo.xcf_forwarding,
            "limits": self.topo.limits,
            "owned_dvipas": owned.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "served_dvipas": served.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "counters": image.stack().counters(),
            "routing": image.routing().map(routing_status),
            "target": {
                "counters": image.target().counters(),
                "shadow_sas": image.target().shadow().len(),
                // What it reports to a DVIPA's new routing stack.
                "served": image.target().served().counters(),
            },
            "shell": ShellStatus { io: &self.counters, image: image.counters() },
            // What the kernel dropped at the TUN before the daemon read it
            // (a full queue under a flood) or after it wrote it.
            "kernel_tun": kernel_tun,
            // Why a request for sequence numbers failed (the image's
            // `cf_errors` counts the batches whose packets it dropped).
            "cf_client": self.cf.get().map(|c| c.counters()),
            "cf_watch": &*self.cf_watch.lock().unwrap_or_else(|p| p.into_inner()),
            "summary": summary,
        })
    }
}

/// The kernel's counters of the image's TUN (`/proc/net/dev`, read by a
/// daemon thread, hence in the image's namespace). The kernel transmits
/// into the TUN what the daemon reads (`tx_dropped`: its queue was full,
/// as under a SYN flood), and receives what the daemon writes
/// (`rx_dropped`).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub(crate) struct KernelTun {
    pub rx_packets: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_dropped: u64,
}

impl KernelTun {
    fn read(dev: &str) -> Option<KernelTun> {
        Self::parse(&std::fs::read_to_string("/proc/net/dev").ok()?, dev)
    }

    /// `dev`'s line of `/proc/net/dev`: `NAME: rx bytes packets errs drop
    /// fifo frame compressed multicast, tx bytes packets errs drop ...`.
    fn parse(text: &str, dev: &str) -> Option<KernelTun> {
        let line = text
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(dev)?.strip_prefix(':'))?;
        let f: Vec<u64> = line
            .split_whitespace()
            .map(|v| v.parse().ok())
            .collect::<Option<_>>()?;
        Some(KernelTun {
            rx_packets: *f.get(1)?,
            rx_dropped: *f.get(3)?,
            tx_packets: *f.get(9)?,
            tx_dropped: *f.get(11)?,
        })
    }
}

/// The shell's counters and the image's, as one `shell` object of
/// `status` (where they were before the image became a state machine).
#[derive(Serialize)]
struct ShellStatus<'a> {
    #[serde(flatten)]
    io: &'a ShellCounters,
    #[serde(flatten)]
    image: &'a ImageCounters,
}

fn routing_status(r: &RoutingStack) -> serde_json::Value {
    serde_json::json!({
        "counters": r.counters(),
        "dct_entries": r.dct().len(),
        "dct": crate::runtime::display::dct_summary(r),
        "owned_sas": r.sa_summary(),
        "listeners": r.listeners(),
    })
}

/// The DVIPA side of a manual SA as an SA install (ESP or AH alone; an
/// AH+ESP bundle is [`manual_bundle`]'s).
/// The SPIs of the topology's manually keyed SAs (ESP and AH, both
/// directions), as the displays write them.
fn manual_spis(topo: &Topology) -> Vec<String> {
    let mut out = Vec::new();
    for ms in &topo.manual_sas {
        let pairs = manual_install(ms)
            .map(|i| vec![i.inbound.spi, i.outbound.spi])
            .into_iter()
            .chain(manual_bundle(ms).map(|b| {
                vec![
                    b.esp.inbound.spi,
                    b.esp.outbound.spi,
                    b.ah.inbound.spi,
                    b.ah.outbound.spi,
                ]
            }));
        out.extend(pairs.flatten().map(|spi| format!("{:#010x}", spi.0)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::KernelTun;

    #[test]
    fn the_tun_line_of_proc_net_dev_gives_its_drops() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  plx0: 1500000    1000    0    7    0     0          0         0  3000000    2000    0   57822    0     0       0          0
";
        let t = KernelTun::parse(text, "plx0").expect("plx0");
        assert_eq!(
            t,
            KernelTun {
                rx_packets: 1000,
                rx_dropped: 7,
                tx_packets: 2000,
                tx_dropped: 57822
            }
        );
        assert_eq!(KernelTun::parse(text, "plx1"), None);
    }
}
