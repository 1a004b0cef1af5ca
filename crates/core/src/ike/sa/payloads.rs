//! Finding payloads in a message and building SA payloads (RFC 7296
//! §3.3), shared by the exchanges.

use crate::ike::dh::DhGroup;
use crate::ike::keys::Integ;
use crate::ike::proposal::ProposalConfig;
use crate::ipsec::sa::IntegAlg;
use crate::wire::ike::{
    Auth, DhId, Identification, KeyExchange, Notify, NotifyType, Payload, Sa, TrafficSelector,
    TransformId,
};

use super::NONCE_RANGE;

pub(super) fn notify(t: NotifyType) -> Payload {
    Payload::Notify(Notify::new(t, Vec::new()))
}

pub(super) fn find_notify(payloads: &[Payload], t: NotifyType) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type == t => Some(n),
        _ => None,
    })
}

/// Every notify of type `t`, in order.
pub(crate) fn find_notifies(payloads: &[Payload], t: NotifyType) -> Vec<&Notify> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Notify(n) if n.notify_type == t => Some(n),
            _ => None,
        })
        .collect()
}

/// The first error notify (§3.10.1: types below 16384).
pub(crate) fn first_error(payloads: &[Payload]) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.notify_type.is_error() => Some(n),
        _ => None,
    })
}

pub(super) fn find_id_i(payloads: &[Payload]) -> Option<&Identification> {
    payloads.iter().find_map(|p| match p {
        Payload::IdI(id) => Some(id),
        _ => None,
    })
}

pub(super) fn find_id_r(payloads: &[Payload]) -> Option<&Identification> {
    payloads.iter().find_map(|p| match p {
        Payload::IdR(id) => Some(id),
        _ => None,
    })
}

pub(super) fn find_auth(payloads: &[Payload]) -> Option<&Auth> {
    payloads.iter().find_map(|p| match p {
        Payload::Auth(a) => Some(a),
        _ => None,
    })
}

pub(crate) fn find_sa(payloads: &[Payload]) -> Option<&Sa> {
    payloads.iter().find_map(|p| match p {
        Payload::Sa(s) => Some(s),
        _ => None,
    })
}

pub(crate) fn find_ke(payloads: &[Payload]) -> Option<&KeyExchange> {
    payloads.iter().find_map(|p| match p {
        Payload::Ke(k) => Some(k),
        _ => None,
    })
}

pub(crate) fn find_nonce(payloads: &[Payload]) -> Option<&Vec<u8>> {
    payloads.iter().find_map(|p| match p {
        Payload::Nonce(n) if NONCE_RANGE.contains(&n.len()) => Some(n),
        _ => None,
    })
}

pub(super) fn find_ts(
    payloads: &[Payload],
) -> Option<(&Vec<TrafficSelector>, &Vec<TrafficSelector>)> {
    let i = payloads.iter().find_map(|p| match p {
        Payload::TsI(t) => Some(t),
        _ => None,
    })?;
    let r = payloads.iter().find_map(|p| match p {
        Payload::TsR(t) => Some(t),
        _ => None,
    })?;
    Some((i, r))
}

/// The first unknown payload with the critical bit (§2.5).
pub(crate) fn unknown_critical(payloads: &[Payload]) -> Option<u8> {
    payloads.iter().find_map(|p| match p {
        Payload::Unknown(u) if u.critical => Some(u.payload_type),
        _ => None,
    })
}

/// The PFS group for rekeying a child made in IKE_AUTH, where we were the
/// responder: the first group of our ESP proposals that the peer listed
/// in the proposal we chose; `None` if it listed none.
pub(super) fn pfs_hint(configs: &[ProposalConfig], peer: &Sa, number: u8) -> Option<DhGroup> {
    let theirs: Vec<DhId> = peer
        .proposals
        .iter()
        .filter(|p| p.number == number)
        .flat_map(|p| &p.transforms)
        .filter_map(|t| match t.id {
            TransformId::Dh(id) => Some(id),
            _ => None,
        })
        .collect();
    configs
        .iter()
        .flat_map(|c| c.dh.iter().copied())
        .find(|g| theirs.contains(&g.id()))
}

/// The ESP proposals consistent with the KE payload we send: those with
/// the group when there is one, those without groups when there is none
/// (§1.3.1), so the peer cannot pick a proposal our KE contradicts.
pub(super) fn pfs_proposals(
    configs: &[ProposalConfig],
    pfs: Option<DhGroup>,
) -> Vec<ProposalConfig> {
    let fits: Vec<ProposalConfig> = configs
        .iter()
        .filter(|p| match pfs {
            Some(g) => p.dh.contains(&g),
            None => p.dh.is_empty(),
        })
        .cloned()
        .collect();
    if fits.is_empty() {
        configs.to_vec()
    } else {
        fits
    }
}

pub(super) fn integ_alg(i: Option<Integ>) -> IntegAlg {
    match i {
        None => IntegAlg::None,
        Some(Integ::HmacSha1_96) => IntegAlg::HmacSha1_96,
        Some(Integ::HmacSha256_128) => IntegAlg::HmacSha256_128,
        Some(Integ::HmacSha384_192) => IntegAlg::HmacSha384_192,
        Some(Integ::HmacSha512_256) => IntegAlg::HmacSha512_256,
    }
}

pub(super) fn spi32(spi: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(spi.try_into().ok()?))
}

pub(super) fn spi64(spi: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(spi.try_into().ok()?))
}
