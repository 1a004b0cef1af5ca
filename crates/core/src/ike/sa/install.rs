//! Installing a negotiated child SA: its keys become the IPsec engine's
//! inbound and outbound SA (RFC 7296 §2.17, RFC 4303), with lifetimes
//! (§2.8), UDP encapsulation behind a NAT (RFC 3948) and selectors (§2.9).

use core::net::IpAddr;

use crate::ike::api::{ChildSaId, ChildSaInfo, IkeEvent, Role};
use crate::ike::config::{enc_alg, ChildLifetime};
use crate::ike::dh::{DhGroup, Zeroizing};
use crate::ike::ts;
use crate::ipsec::sa::{
    EncAlg, IntegAlg, Key, Lifetime, Lifetimes, Mode, Protocol as SaProtocol, SaConfig, Spi,
    TrafficSelector as SaSelector, UdpEncap,
};
use crate::wire::ike::TrafficSelector;

use super::payloads::integ_alg;
use super::{Child, ChildState, ChildTimer, Ctx, IkeSa, Negotiated, Timer};

/// What one direction of a child SA is made of.
struct Direction<'k> {
    spi: u32,
    src: IpAddr,
    dst: IpAddr,
    encr_key: &'k Zeroizing<Vec<u8>>,
    integ_key: &'k Zeroizing<Vec<u8>>,
    udp_encap: Option<UdpEncap>,
    selector: SaSelector,
}

/// What both directions of a child SA share.
struct Common {
    enc: EncAlg,
    integ: IntegAlg,
    replay_window: u32,
    lifetimes: Lifetimes,
}

impl Common {
    fn sa(&self, d: Direction<'_>) -> SaConfig {
        SaConfig {
            spi: Spi(d.spi),
            protocol: SaProtocol::Esp,
            mode: Mode::Tunnel,
            src: d.src,
            dst: d.dst,
            enc: self.enc,
            enc_key: Key(d.encr_key.to_vec()),
            integ: self.integ,
            integ_key: Key(d.integ_key.to_vec()),
            esn: false,
            replay_window: self.replay_window,
            lifetimes: self.lifetimes,
            udp_encap: d.udp_encap,
            selector: d.selector,
        }
    }
}

/// The engine's soft and hard lifetimes of a child SA (§2.8).
fn lifetimes(l: &ChildLifetime) -> Lifetimes {
    Lifetimes {
        soft: Lifetime {
            seconds: l.rekey_time.map(|d| d.as_secs()),
            bytes: l.rekey_bytes,
            packets: l.rekey_packets,
        },
        hard: Lifetime {
            seconds: l.life_time.map(|d| d.as_secs()),
            bytes: l.life_bytes,
            packets: l.life_packets,
        },
    }
}

impl IkeSa {
    /// Turns negotiated keys into the engine's SA pair and records the
    /// child. `role` is ours in the exchange that created it (§2.17: the
    /// first keys protect initiator-to-responder traffic).
    pub(super) fn install_child(
        &mut self,
        ctx: &mut Ctx<'_>,
        role: Role,
        n: Negotiated,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
    ) -> Option<ChildSaInfo> {
        let common = Common {
            enc: enc_alg(n.chosen.encr)?,
            integ: integ_alg(n.chosen.integ),
            replay_window: ctx.config.replay_window,
            lifetimes: lifetimes(&ctx.config.child_lifetime),
        };
        let (inbound, outbound) = self.esp_pair(ctx, role, &n, &local_ts, &remote_ts);
        let id = ChildSaId(ctx.out.next_child);
        ctx.out.next_child = ctx.out.next_child.wrapping_add(1);
        let info = ChildSaInfo {
            ike_sa: self.id,
            child: id,
            role,
            udp_encap: outbound.udp_encap,
            inbound: common.sa(inbound),
            outbound: common.sa(outbound),
            local_ts,
            remote_ts,
        };
        self.record_child(ctx, info.clone(), n.chosen.dh);
        Some(info)
    }

    /// Both directions: keys by role, addresses, UDP encapsulation when a
    /// NAT was detected (§2.23), and the selectors as the engine's.
    fn esp_pair<'k>(
        &self,
        ctx: &Ctx<'_>,
        role: Role,
        n: &'k Negotiated,
        local_ts: &[TrafficSelector],
        remote_ts: &[TrafficSelector],
    ) -> (Direction<'k>, Direction<'k>) {
        let k = &n.keys;
        let (out_e, out_a, in_e, in_a) = match role {
            Role::Initiator => (&k.encr_i, &k.integ_i, &k.encr_r, &k.integ_r),
            Role::Responder => (&k.encr_r, &k.integ_r, &k.encr_i, &k.integ_i),
        };
        let local = IpAddr::V4(ctx.local_ip);
        let remote = IpAddr::V4(*self.remote.ip());
        let encap = self.nat_local || self.nat_remote;
        let udp = |src_port, dst_port| encap.then_some(UdpEncap { src_port, dst_port });
        let inbound = Direction {
            spi: n.spi_in,
            src: remote,
            dst: local,
            encr_key: in_e,
            integ_key: in_a,
            udp_encap: udp(self.remote.port(), self.local_port),
            selector: ts::to_sa_selector(remote_ts, local_ts)
                .unwrap_or_else(|| SaSelector::hosts(remote, local)),
        };
        let outbound = Direction {
            spi: n.spi_out,
            src: local,
            dst: remote,
            encr_key: out_e,
            integ_key: out_a,
            udp_encap: udp(self.local_port, self.remote.port()),
            selector: ts::to_sa_selector(local_ts, remote_ts)
                .unwrap_or_else(|| SaSelector::hosts(local, remote)),
        };
        (inbound, outbound)
    }

    /// Keeps the child with its rekey (jittered) and expiry timers (§2.8).
    fn record_child(&mut self, ctx: &mut Ctx<'_>, info: ChildSaInfo, pfs: Option<DhGroup>) {
        let l = ctx.config.child_lifetime;
        let id = info.child;
        let rekey_at = l.rekey_time.map(|t| {
            let j = ctx.jitter(ctx.config.rekey_jitter.min(t));
            ctx.now + t - j
        });
        self.children.insert(
            id,
            Child {
                info,
                pfs,
                state: ChildState::Installed,
                bytes: 0,
                packets: 0,
            },
        );
        self.timers
            .set_or_cancel(Timer::Child(id, ChildTimer::Rekey), rekey_at);
        let expire_at = l.life_time.map(|t| ctx.now + t);
        self.timers
            .set_or_cancel(Timer::Child(id, ChildTimer::Expire), expire_at);
    }

    /// Forgets a child SA and reports it.
    pub fn remove_child(&mut self, ctx: &mut Ctx<'_>, id: ChildSaId) {
        if let Some(c) = self.children.remove(&id) {
            self.timers.cancel_child(id);
            ctx.out.child_spis.remove(&c.info.inbound.spi.0);
            ctx.out.events.push_back(IkeEvent::ChildSaDeleted {
                ike_sa: self.id,
                child: id,
                spis: c.info.spis(),
            });
        }
    }
}
