//! Security associations (RFC 4301 §4.4.2): what an SA is (its parameters,
//! serializable so the routing stack can ship SAs to targets over XCF) and
//! the per-SA state that precomputes key schedules.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::crypto::CryptoState;
use crate::wire::IpProtocol;

mod selector;

pub use selector::{AddrRange, PortRange, TrafficSelector};

/// A Security Parameters Index (RFC 4303 §2.1, RFC 4302 §2.4). Values 1–255
/// are reserved by IANA and 0 is never sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Spi(pub u32);

impl fmt::Display for Spi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

/// The IPsec protocol of an SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Encapsulating Security Payload, RFC 4303.
    Esp,
    /// Authentication Header, RFC 4302.
    Ah,
}

impl Protocol {
    /// The IP protocol number that carries it.
    pub fn ip_protocol(self) -> IpProtocol {
        match self {
            Protocol::Esp => IpProtocol::Esp,
            Protocol::Ah => IpProtocol::Ah,
        }
    }
}

/// The mode of an SA (RFC 4301 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Protects the payload of the IP packet; the IP header stays.
    Transport,
    /// Protects a whole inner IP packet inside a new outer header.
    Tunnel,
}

/// ESP encryption algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EncAlg {
    /// NULL encryption, RFC 2410 (ESP with integrity only).
    Null,
    /// AES-CBC with a 128-bit key, RFC 3602.
    AesCbc128,
    /// AES-CBC with a 192-bit key, RFC 3602.
    AesCbc192,
    /// AES-CBC with a 256-bit key, RFC 3602.
    AesCbc256,
    /// AES-GCM with a 16-byte ICV and a 128-bit key, RFC 4106.
    AesGcm16_128,
    /// AES-GCM with a 16-byte ICV and a 256-bit key, RFC 4106.
    AesGcm16_256,
}

impl EncAlg {
    /// Every algorithm, for tests and displays.
    pub const ALL: [EncAlg; 6] = [
        EncAlg::Null,
        EncAlg::AesCbc128,
        EncAlg::AesCbc192,
        EncAlg::AesCbc256,
        EncAlg::AesGcm16_128,
        EncAlg::AesGcm16_256,
    ];

    /// Length of the key material: the AES key, plus the 4-byte salt for
    /// GCM (RFC 4106 §8.1).
    pub const fn key_len(self) -> usize {
        match self {
            EncAlg::Null => 0,
            EncAlg::AesCbc128 => 16,
            EncAlg::AesCbc192 => 24,
            EncAlg::AesCbc256 => 32,
            EncAlg::AesGcm16_128 => 16 + GCM_SALT_LEN,
            EncAlg::AesGcm16_256 => 32 + GCM_SALT_LEN,
        }
    }

    /// Length of the explicit IV in each packet: 16 for CBC (RFC 3602 §3),
    /// 8 for GCM (RFC 4106 §3.1), none for NULL (RFC 2410 §2).
    pub const fn iv_len(self) -> usize {
        match self {
            EncAlg::Null => 0,
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => 16,
            EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => 8,
        }
    }

    /// The block size the plaintext is padded to: 16 for CBC (RFC 3602
    /// §2.4); GCM and NULL only need the 4-byte alignment of RFC 4303 §2.4.
    pub const fn block_len(self) -> usize {
        match self {
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => 16,
            EncAlg::Null | EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => 4,
        }
    }

    /// Whether this is a combined-mode (AEAD) algorithm that brings its own
    /// ICV (RFC 4303 §3.2.3).
    pub const fn is_aead(self) -> bool {
        matches!(self, EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256)
    }

    /// The AEAD's ICV length: 16 for the "-16" GCM variants (RFC 4106 §6).
    pub const fn aead_icv_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            0
        }
    }

    /// A stable short name, as strongSwan spells proposals.
    pub const fn as_str(self) -> &'static str {
        match self {
            EncAlg::Null => "null",
            EncAlg::AesCbc128 => "aes128",
            EncAlg::AesCbc192 => "aes192",
            EncAlg::AesCbc256 => "aes256",
            EncAlg::AesGcm16_128 => "aes128gcm16",
            EncAlg::AesGcm16_256 => "aes256gcm16",
        }
    }
}

/// Length of the GCM salt at the end of the key material (RFC 4106 §8.1).
pub const GCM_SALT_LEN: usize = 4;

/// Integrity algorithms, for ESP and AH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntegAlg {
    /// No separate integrity algorithm (only with an AEAD cipher).
    None,
    /// HMAC-SHA-1-96, RFC 2404.
    HmacSha1_96,
    /// HMAC-SHA-256-128, RFC 4868.
    HmacSha256_128,
    /// HMAC-SHA-384-192, RFC 4868.
    HmacSha384_192,
    /// HMAC-SHA-512-256, RFC 4868.
    HmacSha512_256,
}

impl IntegAlg {
    /// Every real integrity algorithm.
    pub const ALL: [IntegAlg; 4] = [
        IntegAlg::HmacSha1_96,
        IntegAlg::HmacSha256_128,
        IntegAlg::HmacSha384_192,
        IntegAlg::HmacSha512_256,
    ];

    /// Key length: the hash output length (RFC 2404 §3, RFC 4868 §2.1.1).
    pub const fn key_len(self) -> usize {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacSha1_96 => 20,
            IntegAlg::HmacSha256_128 => 32,
            IntegAlg::HmacSha384_192 => 48,
            IntegAlg::HmacSha512_256 => 64,
        }
    }

    /// Length of the truncated ICV (RFC 2404 §2.2, RFC 4868 §2.1.2).
    pub const fn icv_len(self) -> usize {
        match self {
            IntegAlg::None => 0,
            IntegAlg::HmacSha1_96 => 12,
            IntegAlg::HmacSha256_128 => 16,
            IntegAlg::HmacSha384_192 => 24,
            IntegAlg::HmacSha512_256 => 32,
        }
    }

    /// A stable short name, as strongSwan spells proposals.
    pub const fn as_str(self) -> &'static str {
        match self {
            IntegAlg::None => "none",
            IntegAlg::HmacSha1_96 => "sha1",
            IntegAlg::HmacSha256_128 => "sha256",
            IntegAlg::HmacSha384_192 => "sha384",
            IntegAlg::HmacSha512_256 => "sha512",
        }
    }
}

/// Key material. Serialized as lower-case hex; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Key(pub Vec<u8>);

impl Key {
    /// The key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key as lower-case hex (for displays that must show it, such as
    /// the Wireshark key table).
    pub fn to_hex(&self) -> String {
        use fmt::Write;
        let mut s = String::with_capacity(self.0.len() * 2);
        for b in &self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// Parses hex (an optional `0x` prefix allowed).
    pub fn from_hex(hex: &str) -> Option<Key> {
        let hex = hex.strip_prefix("0x").unwrap_or(hex);
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        Some(Key(bytes))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(<{} bytes>)", self.0.len())
    }
}

impl From<&[u8]> for Key {
    fn from(bytes: &[u8]) -> Key {
        Key(bytes.to_vec())
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Key, D::Error> {
        let s = String::deserialize(deserializer)?;
        Key::from_hex(&s).ok_or_else(|| serde::de::Error::custom("key is not hex"))
    }
}

/// One set of lifetime limits; `None` is unlimited (RFC 4301 §4.4.2.1,
/// "Lifetime of this SA": time, byte count, and here also packets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Lifetime {
    /// Seconds since the SA was established.
    pub seconds: Option<u64>,
    /// Bytes of protected payload (the inner packet or transport payload).
    pub bytes: Option<u64>,
    /// Packets.
    pub packets: Option<u64>,
}

impl Lifetime {
    /// No limit at all.
    pub const UNLIMITED: Lifetime = Lifetime {
        seconds: None,
        bytes: None,
        packets: None,
    };

    /// Whether any limit is reached after `age` seconds, `bytes` and
    /// `packets`.
    pub fn reached(&self, age: u64, bytes: u64, packets: u64) -> bool {
        self.seconds.is_some_and(|l| age >= l)
            || self.bytes.is_some_and(|l| bytes >= l)
            || self.packets.is_some_and(|l| packets >= l)
    }
}

/// Soft and hard lifetimes: at the soft one IKE rekeys, at the hard one the
/// SA is dead (RFC 4301 §4.4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Lifetimes {
    /// Rekey trigger.
    pub soft: Lifetime,
    /// Expiry.
    pub hard: Lifetime,
}

/// UDP encapsulation of ESP (RFC 3948): the ports of the outer UDP header
/// as this SA sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UdpEncap {
    /// Source port of sealed packets (4500 after NAT-T, RFC 3947 §4).
    pub src_port: u16,
    /// Destination port of sealed packets.
    pub dst_port: u16,
}

/// The parameters of one SA: everything the SAD holds for it (RFC 4301
/// §4.4.2.1), and what the routing stack copies to target stacks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaConfig {
    /// SPI.
    pub spi: Spi,
    /// ESP or AH.
    pub protocol: Protocol,
    /// Transport or tunnel.
    pub mode: Mode,
    /// Source of the packets on the wire: the sending host in transport
    /// mode, the local tunnel endpoint in tunnel mode.
    pub src: IpAddr,
    /// Destination of the packets on the wire (the SA's destination,
    /// RFC 4301 §4.1: SPI, protocol and destination identify an SA).
    pub dst: IpAddr,
    /// Encryption (ESP only; `Null` for AH).
    pub enc: EncAlg,
    /// Encryption key material (with the GCM salt at the end).
    pub enc_key: Key,
    /// Integrity (`None` only with an AEAD cipher).
    pub integ: IntegAlg,
    /// Integrity key.
    pub integ_key: Key,
    /// Extended sequence numbers (RFC 4303 §2.2.1).
    pub esn: bool,
    /// Anti-replay window size in packets (inbound).
    pub replay_window: u32,
    /// Soft and hard lifetimes.
    pub lifetimes: Lifetimes,
    /// ESP in UDP (RFC 3948), with the outer ports.
    pub udp_encap: Option<UdpEncap>,
    /// Traffic the SA may carry.
    pub selector: TrafficSelector,
}

/// Why an [`SaConfig`] cannot become an [`Sa`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    /// The key length does not match the algorithm.
    #[error("{what} key is {got} bytes, {alg} needs {want}")]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// The algorithm.
        alg: &'static str,
        /// Needed length.
        want: usize,
        /// Given length.
        got: usize,
    },
    /// The algorithms do not combine: AEAD with an integrity algorithm,
    /// NULL encryption without integrity (RFC 4303 §3.2: not both NULL), or
    /// AH with encryption or without integrity. Confidentiality-only ESP
    /// (AES-CBC without integrity) is allowed as RFC 4303 §3.2 permits, for
    /// the RFC 3602 test vectors; IKE never proposes it here.
    #[error("algorithm combination not allowed: {0}")]
    Combination(&'static str),
    /// SPI 0 is never used on the wire (RFC 4303 §2.1).
    #[error("SPI 0 is reserved")]
    ZeroSpi,
    /// The SA endpoints are of different address families.
    #[error("SA endpoints mix IPv4 and IPv6")]
    MixedFamilies,
    /// UDP encapsulation is for ESP only (RFC 3948).
    #[error("UDP encapsulation is only defined for ESP")]
    UdpEncapAh,
}

/// An SA ready for use: the parameters plus precomputed key schedules and
/// HMAC pad states. Serializes as its [`SaConfig`]; deserializing rebuilds
/// the key schedules.
#[derive(Clone, Serialize, Deserialize)]
#[serde(try_from = "SaConfig", into = "SaConfig")]
pub struct Sa {
    config: SaConfig,
    pub(crate) crypto: CryptoState,
}

impl fmt::Debug for Sa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sa")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Sa {
    fn eq(&self, other: &Sa) -> bool {
        self.config == other.config
    }
}

impl Eq for Sa {}

impl Sa {
    /// Checks the parameters and precomputes the key schedules.
    pub fn new(config: SaConfig) -> Result<Sa, SaError> {
        if config.spi.0 == 0 {
            return Err(SaError::ZeroSpi);
        }
        if config.src.is_ipv4() != config.dst.is_ipv4() {
            return Err(SaError::MixedFamilies);
        }
        match config.protocol {
            Protocol::Esp => {
                if config.enc.is_aead() && config.integ != IntegAlg::None {
                    return Err(SaError::Combination("AES-GCM carries its own ICV"));
                }
                if config.enc == EncAlg::Null && config.integ == IntegAlg::None {
                    return Err(SaError::Combination(
                        "ESP with NULL encryption needs integrity",
                    ));
                }
            }
            Protocol::Ah => {
                if config.enc != EncAlg::Null {
                    return Err(SaError::Combination("AH does not encrypt"));
                }
                if config.integ == IntegAlg::None {
                    return Err(SaError::Combination("AH needs integrity"));
                }
                if config.udp_encap.is_some() {
                    return Err(SaError::UdpEncapAh);
                }
            }
        }
        check_len(
            "encryption",
            config.enc.as_str(),
            config.enc.key_len(),
            &config.enc_key,
        )?;
        check_len(
            "integrity",
            config.integ.as_str(),
            config.integ.key_len(),
            &config.integ_key,
        )?;
        let crypto = CryptoState::new(&config);
        Ok(Sa { config, crypto })
    }

    /// The parameters.
    pub fn config(&self) -> &SaConfig {
        &self.config
    }

    /// The SPI.
    pub fn spi(&self) -> Spi {
        self.config.spi
    }

    /// ESP or AH.
    pub fn protocol(&self) -> Protocol {
        self.config.protocol
    }

    /// Transport or tunnel.
    pub fn mode(&self) -> Mode {
        self.config.mode
    }

    /// Length of the ICV in each packet.
    pub fn icv_len(&self) -> usize {
        self.config.enc.aead_icv_len() + self.config.integ.icv_len()
    }

    /// A short suite name such as `aes128-sha1` or `aes128gcm16`.
    pub fn suite_name(&self) -> String {
        match (self.config.protocol, self.config.enc.is_aead()) {
            (Protocol::Ah, _) => format!("ah-{}", self.config.integ.as_str()),
            (Protocol::Esp, true) => self.config.enc.as_str().to_string(),
            (Protocol::Esp, false) => format!(
                "{}-{}",
                self.config.enc.as_str(),
                self.config.integ.as_str()
            ),
        }
    }
}

fn check_len(what: &'static str, alg: &'static str, want: usize, key: &Key) -> Result<(), SaError> {
    if key.0.len() != want {
        return Err(SaError::KeyLength {
            what,
            alg,
            want,
            got: key.0.len(),
        });
    }
    Ok(())
}

impl TryFrom<SaConfig> for Sa {
    type Error = SaError;
    fn try_from(config: SaConfig) -> Result<Sa, SaError> {
        Sa::new(config)
    }
}

impl From<Sa> for SaConfig {
    fn from(sa: Sa) -> SaConfig {
        sa.config
    }
}

#[cfg(test)]
pub(crate) mod tests;
