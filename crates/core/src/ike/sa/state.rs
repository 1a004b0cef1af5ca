//! The states of an IKE SA, its children and its requests in flight
//! (RFC 7296 §1, §2.3).

use crate::ike::api::{ChildSaId, ChildSaInfo};
use crate::ike::dh::{DhGroup, DhPrivate};
use crate::ike::keys::{child_keys, ChildKeys, IkeKeys, IkeSuite, KeyError};
use crate::ike::proposal::Selected;
use crate::ike::sk::SkKeys;
use crate::wire::ike::TrafficSelector;

/// The negotiated IKE SA transforms and keys (RFC 7296 §2.14).
pub(crate) struct IkeCrypto {
    pub suite: IkeSuite,
    pub group: DhGroup,
    pub keys: IkeKeys,
    pub send: SkKeys,
    pub recv: SkKeys,
}

impl IkeCrypto {
    pub fn new(suite: IkeSuite, group: DhGroup, keys: IkeKeys, initiator: bool) -> IkeCrypto {
        let i = SkKeys {
            encr: suite.encr,
            integ: suite.integ,
            sk_e: keys.sk_ei.clone(),
            sk_a: keys.sk_ai.clone(),
        };
        let r = SkKeys {
            encr: suite.encr,
            integ: suite.integ,
            sk_e: keys.sk_er.clone(),
            sk_a: keys.sk_ar.clone(),
        };
        let (send, recv) = if initiator { (i, r) } else { (r, i) };
        IkeCrypto {
            suite,
            group,
            keys,
            send,
            recv,
        }
    }

    /// A child SA's keys from SK_d (§2.17), with g^ir (new) under PFS.
    pub fn child_keys(
        &self,
        g_ir: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        chosen: &Selected,
    ) -> Result<ChildKeys, KeyError> {
        let prf = self.suite.prf;
        child_keys(prf, &self.keys.sk_d, g_ir, ni, nr, chosen.child_suite())
    }
}

/// A child SA's negotiated proposal, SPIs and keys, ready to install.
pub(crate) struct Negotiated {
    pub chosen: Selected,
    pub spi_in: u32,
    pub spi_out: u32,
    pub keys: ChildKeys,
}

/// Initiator, IKE_SA_INIT sent.
pub(crate) struct ExpectInitResponse {
    pub dh: DhPrivate,
    pub ni: Vec<u8>,
    pub cookie: Option<Vec<u8>>,
    /// The request as last sent: RealMessage1 of the AUTH (§2.15).
    pub request: Vec<u8>,
}

/// Responder, IKE_SA_INIT answered: the half-open state (§2.6).
pub(crate) struct ExpectAuth {
    pub request: Vec<u8>,
    pub response: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
}

/// Initiator, IKE_AUTH sent.
pub(crate) struct ExpectAuthResponse {
    /// RealMessage2, which the responder's AUTH signs.
    pub response: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub spi_in: u32,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

pub(crate) enum State {
    ExpectInitResponse(Box<ExpectInitResponse>),
    ExpectAuth(Box<ExpectAuth>),
    ExpectAuthResponse(Box<ExpectAuthResponse>),
    Established,
    /// Superseded by a rekeyed IKE SA; waits for the DELETE exchange.
    Rekeyed,
    /// Gone, or transiently taken.
    Dead,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::ExpectInitResponse(_) => "ExpectInitResponse",
            State::ExpectAuth(_) => "ExpectAuth",
            State::ExpectAuthResponse(_) => "ExpectAuthResponse",
            State::Established => "Established",
            State::Rekeyed => "Rekeyed",
            State::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildState {
    Installed,
    Rekeying,
    /// Replaced by a rekey; waits for the DELETE (ours or the peer's).
    Rekeyed,
    Deleting,
}

pub(crate) struct Child {
    pub info: ChildSaInfo,
    /// The PFS group it was made with, reused when it is rekeyed.
    pub pfs: Option<DhGroup>,
    pub state: ChildState,
    pub bytes: u64,
    pub packets: u64,
}

/// A CREATE_CHILD_SA request for a child SA in flight.
pub(crate) struct ChildRequest {
    pub rekey: Option<ChildSaId>,
    pub spi_in: u32,
    pub ni: Vec<u8>,
    pub dh: Option<DhPrivate>,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
}

/// A CREATE_CHILD_SA request rekeying the IKE SA in flight (§1.3.2).
pub(crate) struct IkeRekeyRequest {
    pub spi: u64,
    pub ni: Vec<u8>,
    pub dh: DhPrivate,
}

pub(crate) enum Request {
    Init,
    Auth,
    CreateChild(Box<ChildRequest>),
    RekeyIke(Box<IkeRekeyRequest>),
    DeleteChildren(Vec<ChildSaId>),
    DeleteIke,
    Dpd,
}

/// Our outstanding request: window size 1 (§2.3).
pub(crate) struct Pending {
    pub msg_id: u32,
    pub datagram: Vec<u8>,
    pub tries: u32,
    pub what: Request,
}

/// Exchanges waiting for the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Task {
    RekeyChild(ChildSaId),
    RekeyIke,
    DeleteChild(ChildSaId),
    DeleteIke,
    Dpd,
}
