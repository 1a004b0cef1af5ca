//! Configuration of an [`Ike`](crate::ike::Ike) endpoint: local identity,
//! proposals, peers with their pre-shared keys and traffic selectors,
//! lifetimes, the half-open limits that switch cookies on, and timers.

use core::time::Duration;

use thiserror::Error;

use crate::ike::ident::Identity;
use crate::ike::keys::Encr;
use crate::ike::proposal::{parse_proposals, ProposalConfig, ProposalParseError, Protocol};
use crate::ike::ts::TsConfig;
use crate::ipsec::sa::EncAlg;

/// One peer we share a key with.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's identity: IDi when it initiates, IDr we send when we do.
    pub id: Identity,
    /// The pre-shared key (RFC 7296 §2.15).
    pub psk: Vec<u8>,
    /// Our side of its child SAs.
    pub local_ts: TsConfig,
    /// Its side of its child SAs.
    pub remote_ts: TsConfig,
}

impl core::fmt::Debug for PeerConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PeerConfig")
            .field("id", &self.id)
            .field("psk", &"<secret>")
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .finish()
    }
}

impl PeerConfig {
    /// A host-to-host peer: both selectors `dynamic`.
    pub fn new(id: Identity, psk: impl Into<Vec<u8>>) -> PeerConfig {
        PeerConfig {
            id,
            psk: psk.into(),
            local_ts: TsConfig::Dynamic,
            remote_ts: TsConfig::Dynamic,
        }
    }
}

/// When an IKE SA is rekeyed (RFC 7296 §2.8). `None` never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeLifetime {
    /// Time after establishment at which we rekey the IKE SA.
    pub rekey_time: Option<Duration>,
}

/// When a child SA is rekeyed (soft) and when it expires (hard). Byte and
/// packet counts come from the data path through
/// [`Ike::child_bytes_processed`](crate::ike::Ike::child_bytes_processed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChildLifetime {
    pub rekey_time: Option<Duration>,
    pub life_time: Option<Duration>,
    pub rekey_bytes: Option<u64>,
    pub life_bytes: Option<u64>,
    pub rekey_packets: Option<u64>,
    pub life_packets: Option<u64>,
}

/// Configuration of one endpoint (one local address).
#[derive(Debug, Clone)]
pub struct IkeConfig {
    /// Our identity (IDr as responder, IDi as initiator).
    pub local_id: Identity,
    /// IKE proposals, preferred first.
    pub ike_proposals: Vec<ProposalConfig>,
    /// ESP proposals, preferred first; with DH groups when rekeys use PFS.
    /// Only transforms the IPsec engine has ([`esp_supported`]).
    pub esp_proposals: Vec<ProposalConfig>,
    /// Peers, looked up by the identity they send.
    pub peers: Vec<PeerConfig>,
    pub ike_lifetime: IkeLifetime,
    pub child_lifetime: ChildLifetime,
    /// A random amount up to this is taken off each rekey time, so the two
    /// peers do not rekey at once (strongSwan's `rand_time`).
    pub rekey_jitter: Duration,
    /// Above this many half-open IKE SAs, IKE_SA_INIT requests without a
    /// valid COOKIE get one (RFC 7296 §2.6).
    pub cookie_threshold: usize,
    /// Hard cap on half-open IKE SAs: requests beyond it are dropped even
    /// with a valid cookie, so memory stays bounded.
    pub half_open_limit: usize,
    /// A half-open IKE SA is forgotten after this long.
    pub half_open_timeout: Duration,
    /// Liveness check when nothing was heard for this long (RFC 7296 §1.4).
    pub dpd_interval: Option<Duration>,
    /// First retransmission timeout of a request; doubles on each try
    /// (RFC 7296 §2.1).
    pub retransmit_timeout: Duration,
    /// Retransmissions before the peer is declared dead.
    pub retransmit_tries: u32,
    /// Anti-replay window of inbound child SAs (libipsec's is 128).
    pub replay_window: u32,
    /// Pretend to be behind a NAT (send a NAT_DETECTION_SOURCE_IP that
    /// cannot match) so IKE moves to port 4500 and ESP is UDP-encapsulated,
    /// as strongSwan's `encap = yes` and its kernel-libipsec do.
    pub force_encap: bool,
}

/// Why a configuration is not usable.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error(transparent)]
    Proposal(#[from] ProposalParseError),
    #[error("no {0} proposal left that this implementation supports")]
    NoProposals(&'static str),
}

/// Whether the IPsec engine implements an ESP cipher (it has no
/// AES-GCM-192).
pub fn esp_supported(encr: Encr) -> bool {
    enc_alg(encr).is_some()
}

/// The engine's algorithm for a negotiated ESP cipher.
pub fn enc_alg(encr: Encr) -> Option<EncAlg> {
    Some(match encr {
        Encr::AesCbc { key_bits: 128 } => EncAlg::AesCbc128,
        Encr::AesCbc { key_bits: 192 } => EncAlg::AesCbc192,
        Encr::AesCbc { key_bits: 256 } => EncAlg::AesCbc256,
        Encr::AesGcm16 { key_bits: 128 } => EncAlg::AesGcm16_128,
        Encr::AesGcm16 { key_bits: 256 } => EncAlg::AesGcm16_256,
        _ => return None,
    })
}

impl IkeConfig {
    /// A configuration from strongSwan-style proposal strings, with the
    /// defaults of [`IkeConfig::with_proposals`] otherwise.
    pub fn new(local_id: Identity, ike: &str, esp: &str) -> Result<IkeConfig, ConfigError> {
        IkeConfig::with_proposals(
            local_id,
            parse_proposals(Protocol::Ike, ike)?,
            parse_proposals(Protocol::Esp, esp)?,
        )
    }

    /// A configuration from parsed proposals. ESP ciphers the engine lacks
    /// are removed. Defaults: no peers, IKE rekey after 4 h, child rekey
    /// after 1 h and expiry after 1 h 6 min (strongSwan's), 10 % jitter,
    /// cookies above 16 half-open SAs, at most 1024 half-open, 30 s
    /// half-open timeout, no DPD, retransmissions at 2, 4, 8, 16, 32 s,
    /// replay window 128.
    pub fn with_proposals(
        local_id: Identity,
        ike_proposals: Vec<ProposalConfig>,
        mut esp_proposals: Vec<ProposalConfig>,
    ) -> Result<IkeConfig, ConfigError> {
        for p in &mut esp_proposals {
            p.encr.retain(|e| esp_supported(*e));
        }
        esp_proposals.retain(|p| !p.encr.is_empty());
        if ike_proposals.is_empty() {
            return Err(ConfigError::NoProposals("IKE"));
        }
        if esp_proposals.is_empty() {
            return Err(ConfigError::NoProposals("ESP"));
        }
        Ok(IkeConfig {
            local_id,
            ike_proposals,
            esp_proposals,
            peers: Vec::new(),
            ike_lifetime: IkeLifetime {
                rekey_time: Some(Duration::from_secs(4 * 3600)),
            },
            child_lifetime: ChildLifetime {
                rekey_time: Some(Duration::from_secs(3600)),
                life_time: Some(Duration::from_secs(3960)),
                ..ChildLifetime::default()
            },
            rekey_jitter: Duration::from_secs(360),
            cookie_threshold: 16,
            half_open_limit: 1024,
            half_open_timeout: Duration::from_secs(30),
            dpd_interval: None,
            retransmit_timeout: Duration::from_secs(2),
            retransmit_tries: 5,
            replay_window: 128,
            force_encap: false,
        })
    }

    /// The peer whose identity a received IDi names.
    pub fn peer_by_id(&self, id: &crate::wire::ike::Identification) -> Option<&PeerConfig> {
        self.peers.iter().find(|p| p.id.matches(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_esp_ciphers_the_engine_lacks() {
        let c = IkeConfig::new(Identity::Fqdn("a".into()), "default", "default").unwrap();
        assert!(c.esp_proposals.iter().all(|p| p
            .encr
            .iter()
            .all(|e| *e != Encr::AesGcm16 { key_bits: 192 })));
        assert_eq!(c.esp_proposals[0].encr.len(), 2);
        assert_eq!(
            IkeConfig::new(Identity::Fqdn("a".into()), "default", "aes192gcm16").unwrap_err(),
            ConfigError::NoProposals("ESP")
        );
        assert!(IkeConfig::new(Identity::Fqdn("a".into()), "aes128", "default").is_err());
        let p = PeerConfig::new(Identity::Fqdn("b".into()), "hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
