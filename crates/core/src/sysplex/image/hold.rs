//! Fig. 11 at a target: an initial SYN from a DVIPA to one of its IKE
//! peers, with no SA to protect it, makes a NEWCONN to the DVIPA's routing
//! stack (block 174) and waits for the SA its IKE negotiates (blocks
//! 176–178); it is sealed and sent once the SA arrived, or dropped after
//! [`HELD_FOR`] (TCP's own retransmission takes over).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use super::{ImageCounters, ImageId};
use crate::sysplex::target::{OutboundPlan, TargetStack};
use crate::sysplex::xcf::{VipaEntry, XcfMessage};
use crate::time::Instant;
use crate::wire::IpProtocol;

/// How long a SYN waits for the SA its NEWCONN asked for (Fig. 11 block
/// 178); TCP's own retransmission takes over after that.
pub const HELD_FOR: Duration = Duration::from_secs(5);
/// SYNs held at most at once by default (`[limits] newconn_hold_max`);
/// more are dropped and counted (`newconn_overflow`), TCP retransmits them.
pub const HELD_MAX: usize = 64;

/// When a target asks for an SA: the topology's IKE settings, as the
/// shell read them.
#[derive(Debug, Clone)]
pub struct NewConnPolicy {
    /// IKE negotiates on demand (`[ike] on_demand`): the IpDynVpnAction's
    /// `Initiation` allows this stack to start.
    pub on_demand: bool,
    /// The IKE peers of each DVIPA (the clients that negotiate with it).
    pub peers: BTreeMap<Ipv4Addr, Vec<Ipv4Addr>>,
    /// The image that defines each DVIPA (asked when no VIPA list names a
    /// routing stack for it).
    pub owners: BTreeMap<Ipv4Addr, ImageId>,
    /// SYNs held at most at once (`[limits] newconn_hold_max`).
    pub hold_max: usize,
}

impl Default for NewConnPolicy {
    fn default() -> Self {
        Self {
            on_demand: false,
            peers: BTreeMap::new(),
            owners: BTreeMap::new(),
            hold_max: HELD_MAX,
        }
    }
}

impl NewConnPolicy {
    /// Fig. 11 block 174: an outbound packet no SA covers is an initial
    /// TCP SYN from a DVIPA to one of the DVIPA's IKE peers: the DVIPA's
    /// routing stack, as the VIPA lists name it (else the topology's
    /// owner), gets a NEWCONN so its IKE negotiates an SA. `None`: the
    /// packet is not one to hold.
    pub fn request(
        &self,
        vipa_lists: &BTreeMap<String, Vec<VipaEntry>>,
        packet: &[u8],
    ) -> Option<(ImageId, XcfMessage)> {
        if !self.on_demand {
            return None;
        }
        let flow = crate::sysplex::packet::flow_of(packet).ok()?;
        if flow.proto != IpProtocol::Tcp || !flow.flags.is_some_and(|f| f.is_initial_syn()) {
            return None;
        }
        if !self
            .peers
            .get(&flow.src)
            .is_some_and(|p| p.contains(&flow.dst))
        {
            return None;
        }
        let owner = vipa_lists
            .iter()
            .find(|(_, v)| v.iter().any(|e| e.dvipa == flow.src))
            .map(|(o, _)| ImageId::from(o.as_str()))
            .or_else(|| self.owners.get(&flow.src).cloned())?;
        Some((
            owner,
            XcfMessage::NewConn {
                dvipa: flow.src,
                local_port: flow.src_port,
                peer: flow.dst,
                peer_port: flow.dst_port,
                protocol: 6,
            },
        ))
    }
}

/// The SYNs waiting for their SA, with when each began to wait.
#[derive(Debug, Default)]
pub(super) struct HoldQueue {
    held: Vec<(Instant, Vec<u8>)>,
}

impl HoldQueue {
    /// Fig. 11 block 174: a SYN that made a NEWCONN waits for its SA,
    /// unless `max` wait already (then it is dropped and counted).
    pub(super) fn hold(
        &mut self,
        now: Instant,
        syn: Vec<u8>,
        max: usize,
        counters: &mut ImageCounters,
    ) {
        if self.held.len() >= max {
            counters.newconn_overflow += 1;
            return;
        }
        counters.newconn_held += 1;
        self.held.push((now, syn));
    }

    /// Fig. 11 blocks 176–178: the held SYNs that now have an SA, to seal
    /// and send; those waiting [`HELD_FOR`] already are counted and
    /// dropped, the others wait on.
    pub(super) fn take_ready(
        &mut self,
        now: Instant,
        target: &mut TargetStack,
        counters: &mut ImageCounters,
    ) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        let waiting = std::mem::take(&mut self.held);
        for (since, syn) in waiting {
            if matches!(target.outbound_plan(&syn), OutboundPlan::Protect { .. }) {
                ready.push(syn);
            } else if now - since < HELD_FOR {
                self.held.push((since, syn));
            } else {
                counters.newconn_expired += 1;
            }
        }
        counters.newconn_released += ready.len() as u64;
        ready
    }

    pub(super) fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}
