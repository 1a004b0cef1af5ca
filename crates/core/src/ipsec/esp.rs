//! ESP seal (outbound, RFC 4303 §3.3) and open (inbound, RFC 4303 §3.4),
//! transport and tunnel mode, optionally in UDP (RFC 3948).

use rand_core::RngCore;

use super::outer::{fix_ipv4_header, parse_outer, tunnel_header, v4, OuterError};
use super::replay::{ReplayError, ReplayWindow};
use super::sa::{EncAlg, IntegAlg, Mode, Protocol, Sa, SaConfig};
use super::DropReason;
use crate::wire::esp::{self as esp_wire, Trailer};
use crate::wire::flow::FiveTuple;
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::{udp, IpProtocol, UdpPacket, UdpRepr, WireError};

mod seal;

use seal::{protect, write_esp, write_outer, SealLayout};

/// Why a packet could not be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The SA is not of the protocol asked for.
    #[error("SA protocol does not match the operation")]
    WrongProtocol,
    /// The explicit IV has the wrong length for the cipher.
    #[error("IV is {got} bytes, the cipher needs {want}")]
    IvLength {
        /// Needed.
        want: usize,
        /// Given.
        got: usize,
    },
    /// Sequence number 0, or above 2^32 - 1 without ESN: the sender must
    /// rekey rather than cycle (RFC 4303 §3.3.3).
    #[error("sequence number out of range for this SA")]
    Sequence,
    /// The packet to protect is not a valid IPv4 packet.
    #[error("packet to seal is not valid IPv4: {0}")]
    Malformed(WireError),
    /// Transport mode applies to whole datagrams only (RFC 4303 §3.1.1).
    #[error("transport mode cannot protect a fragment")]
    Fragment,
    /// The result would exceed 65535 bytes.
    #[error("sealed packet would exceed the IPv4 maximum")]
    TooLarge,
    /// IPv6 is not wired up yet.
    #[error("IPv6 is not supported yet")]
    Unsupported,
    /// The SA's hard lifetime has passed.
    #[error("SA hard lifetime expired")]
    Expired,
}

/// Why an inbound packet was dropped; [`OpenError::reason`] gives the
/// counter it goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// No SA for the SPI and protocol.
    #[error("unknown SPI")]
    UnknownSpi,
    /// Too short for the headers, IV and ICV.
    #[error("packet truncated")]
    Truncated,
    /// Impossible lengths or fields.
    #[error("malformed packet")]
    Malformed,
    /// The ICV does not verify.
    #[error("ICV mismatch")]
    IcvMismatch,
    /// Already received.
    #[error("replayed packet")]
    Replayed,
    /// Left of the replay window.
    #[error("sequence number left of the replay window")]
    TooOld,
    /// Padding not 1, 2, 3, ….
    #[error("bad ESP padding")]
    BadPadding,
    /// Next Header does not fit the SA's mode or the inner header.
    #[error("next header mismatch")]
    NextHeaderMismatch,
    /// Decrypted traffic outside the SA's selectors.
    #[error("traffic selector mismatch")]
    SelectorMismatch,
    /// A dummy packet (Next Header 59).
    #[error("dummy packet")]
    Dummy,
    /// Past the hard lifetime.
    #[error("SA expired")]
    SaExpired,
    /// An IP fragment.
    #[error("IP fragment")]
    Fragment,
    /// IPv6, not yet.
    #[error("unsupported")]
    Unsupported,
}

impl OpenError {
    /// The drop counter this error goes to.
    pub fn reason(self) -> DropReason {
        match self {
            OpenError::UnknownSpi => DropReason::UnknownSpi,
            OpenError::Truncated => DropReason::Truncated,
            OpenError::Malformed => DropReason::Malformed,
            OpenError::IcvMismatch => DropReason::IcvMismatch,
            OpenError::Replayed => DropReason::Replayed,
            OpenError::TooOld => DropReason::TooOld,
            OpenError::BadPadding => DropReason::BadPadding,
            OpenError::NextHeaderMismatch => DropReason::NextHeaderMismatch,
            OpenError::SelectorMismatch => DropReason::SelectorMismatch,
            OpenError::Dummy => DropReason::Dummy,
            OpenError::SaExpired => DropReason::SaExpired,
            OpenError::Fragment => DropReason::Fragment,
            OpenError::Unsupported => DropReason::Unsupported,
        }
    }
}

impl From<ReplayError> for OpenError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Replayed => OpenError::Replayed,
            ReplayError::TooOld => OpenError::TooOld,
        }
    }
}

impl From<OuterError> for OpenError {
    fn from(e: OuterError) -> Self {
        match e {
            OuterError::Truncated => OpenError::Truncated,
            OuterError::Malformed => OpenError::Malformed,
            OuterError::Fragment => OpenError::Fragment,
            OuterError::Unsupported => OpenError::Unsupported,
            OuterError::NotIpsec => OpenError::UnknownSpi,
        }
    }
}

impl From<WireError> for OpenError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => OpenError::Truncated,
            WireError::Malformed | WireError::Checksum => OpenError::Malformed,
        }
    }
}

/// What a successfully opened packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    /// The full (ESN-inferred) sequence number.
    pub seq: u64,
    /// Protocol of what was protected (IPv4-in-IP in tunnel mode).
    pub next_header: IpProtocol,
    /// Protected bytes (the inner packet or the transport payload), for
    /// byte lifetimes.
    pub protected_bytes: usize,
}

/// The explicit IV a sealed packet uses: random for CBC (RFC 3602 §2.4
/// asks for unpredictable IVs), the sequence number for GCM (RFC 4106 §3.1:
/// never repeat under one key; the sequence number is unique per packet of
/// the SA even with several senders), none for NULL.
pub fn make_iv(sa: &Sa, seq: u64, rng: &mut impl RngCore) -> ([u8; 16], usize) {
    let mut iv = [0u8; 16];
    let len = sa.config().enc.iv_len();
    match sa.config().enc {
        EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => iv[..8].copy_from_slice(&seq.to_be_bytes()),
        EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => rng.fill_bytes(&mut iv[..len]),
        EncAlg::Null => {}
    }
    (iv, len)
}

/// Seals `packet` (an IPv4 packet) with ESP into `out`, replacing its
/// contents: the outer packet ready to send. `seq` comes from the caller
/// (the sequence number source is pluggable, e.g. the coupling facility);
/// the IV is made by [`make_iv`]. Returns the number of protected bytes.
pub fn seal_esp(
    sa: &Sa,
    seq: u64,
    rng: &mut impl RngCore,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, SealError> {
    let (iv, len) = make_iv(sa, seq, rng);
    seal_esp_with_iv(sa, seq, &iv[..len], packet, out)
}

/// [`seal_esp`] with explicit IV bytes (test vectors, deterministic
/// simulation).
pub fn seal_esp_with_iv(
    sa: &Sa,
    seq: u64,
    iv: &[u8],
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, SealError> {
    seal_esp_inner(sa, seq, iv, packet, out, 0)
}

/// The sealing proper. `gap` bytes are left between the outer IP header
/// and the ESP header for an AH header (AH+ESP bundles, transport
/// adjacency, RFC 4301 §4.3); the outer Protocol then still says ESP and
/// the caller fixes it.
pub(crate) fn seal_esp_inner(
    sa: &Sa,
    seq: u64,
    iv: &[u8],
    packet: &[u8],
    out: &mut Vec<u8>,
    gap: usize,
) -> Result<usize, SealError> {
    let cfg = sa.config();
    if cfg.protocol != Protocol::Esp {
        return Err(SealError::WrongProtocol);
    }
    check_seq(seq, cfg.esn)?;
    if iv.len() != cfg.enc.iv_len() {
        return Err(SealError::IvLength {
            want: cfg.enc.iv_len(),
            got: iv.len(),
        });
    }
    let ip = input_packet(packet)?;
    let l = SealLayout::of(sa, &ip, packet, gap)?;
    write_esp(out, cfg, seq, iv, packet, &l);
    protect(sa, seq, iv, out, &l);
    write_outer(out, cfg, &ip, seq, &l, gap)?;
    Ok(l.payload.len())
}

pub(crate) fn check_seq(seq: u64, esn: bool) -> Result<(), SealError> {
    if seq == 0 || (!esn && seq > u64::from(u32::MAX)) {
        return Err(SealError::Sequence);
    }
    Ok(())
}

pub(crate) fn input_packet(packet: &[u8]) -> Result<Ipv4Packet<&[u8]>, SealError> {
    match packet.first().map(|b| b >> 4) {
        Some(6) => return Err(SealError::Unsupported),
        Some(4) => {}
        Some(_) => return Err(SealError::Malformed(WireError::Malformed)),
        None => return Err(SealError::Malformed(WireError::Truncated)),
    }
    Ipv4Packet::new_checked(packet).map_err(SealError::Malformed)
}

/// GCM additional authenticated data: SPI ‖ Sequence Number, or SPI ‖
/// high 32 ‖ low 32 bits with ESN (RFC 4106 §5).
fn gcm_aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut aad = [0u8; 12];
    aad[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        aad[4..12].copy_from_slice(&seq.to_be_bytes());
        (aad, 12)
    } else {
        aad[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        (aad, 8)
    }
}

/// Opens an ESP packet (the whole outer IPv4 packet, ESP directly or in
/// UDP) into `out`: the inner packet in tunnel mode, the packet with its
/// header restored in transport mode.
///
/// Order (RFC 4303 §3.4): lengths, ICV (before any decryption; for GCM the
/// tag is verified before the keystream is applied), replay check, replay
/// update, decryption, padding, Next Header, inner packet, selectors. A
/// forged packet never touches the window. On error `out` is empty.
pub fn open_esp(
    sa: &Sa,
    replay: &mut ReplayWindow,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<Opened, OpenError> {
    let result = parse_outer(packet)
        .map_err(OpenError::from)
        .and_then(|outer| {
            if outer.protocol != IpProtocol::Esp {
                return Err(OpenError::UnknownSpi);
            }
            open_esp_parts(
                sa,
                replay,
                &packet[..outer.header_len],
                &packet[outer.ipsec_at..outer.end],
                out,
            )
        });
    if result.is_err() {
        out.clear();
    }
    result
}

/// Opens the ESP bytes `esp` (SPI to ICV) that came behind the IPv4
/// header `ip_header`.
pub(crate) fn open_esp_parts(
    sa: &Sa,
    replay: &mut ReplayWindow,
    ip_header: &[u8],
    esp: &[u8],
    out: &mut Vec<u8>,
) -> Result<Opened, OpenError> {
    let cfg = sa.config();
    if cfg.protocol != Protocol::Esp {
        return Err(OpenError::UnknownSpi);
    }
    let packet = esp_wire::Packet::new_checked(esp)?;
    if packet.spi() != cfg.spi.0 {
        return Err(OpenError::UnknownSpi);
    }
    let iv_len = cfg.enc.iv_len();
    let icv_len = sa.icv_len();
    let overhead = esp_wire::HEADER_LEN + iv_len + icv_len;
    if esp.len() < overhead + esp_wire::TRAILER_LEN {
        return Err(OpenError::Truncated);
    }
    let ct_len = esp.len() - overhead;
    if ct_len % cfg.enc.block_len() != 0 {
        return Err(OpenError::Malformed);
    }
    let seq = replay.infer_seq(packet.seq_number());
    let seq_hi = ((seq >> 32) as u32).to_be_bytes();
    let icv_start = esp.len() - icv_len;
    let iv = &esp[esp_wire::HEADER_LEN..esp_wire::HEADER_LEN + iv_len];
    let ciphertext = &esp[esp_wire::HEADER_LEN + iv_len..icv_start];

    if !cfg.enc.is_aead() {
        let esn: &[u8] = if cfg.esn { &seq_hi } else { &[] };
        if !sa
            .crypto
            .integrity
            .verify(&[&esp[..icv_start], esn], &esp[icv_start..])
        {
            return Err(OpenError::IcvMismatch);
        }
    }

    let prefix = decrypt_into(sa, seq, iv, ciphertext, &esp[icv_start..], ip_header, out)?;
    // Authentic: now the window may be consulted and moved (RFC 4303
    // §3.4.3). Without integrity there is no anti-replay service (RFC 4303
    // §3.4.3: it needs the ICV), and an unauthenticated packet must never
    // move the window.
    if cfg.enc.is_aead() || cfg.integ != IntegAlg::None {
        replay.check(seq)?;
        replay.update(seq);
    }

    let (trailer, payload_len) = Trailer::parse(&out[prefix..])?;
    if !trailer.padding_is_default(&out[prefix..]) {
        return Err(OpenError::BadPadding);
    }
    out.truncate(prefix + payload_len);
    finish_inbound(sa, trailer.next_header, prefix, out)?;
    Ok(Opened {
        seq,
        next_header: trailer.next_header,
        protected_bytes: payload_len,
    })
}

/// Decrypts `ciphertext` into `out`, behind the IPv4 header in transport
/// mode: CBC (RFC 3602), or GCM with its `tag` verified first (RFC 4106).
/// Returns where the plaintext starts in `out`.
#[inline]
fn decrypt_into(
    sa: &Sa,
    seq: u64,
    iv: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
    ip_header: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, OpenError> {
    let cfg = sa.config();
    let prefix = match cfg.mode {
        Mode::Transport => ip_header.len(),
        Mode::Tunnel => 0,
    };
    out.clear();
    out.reserve(prefix + ciphertext.len());
    if cfg.mode == Mode::Transport {
        out.extend_from_slice(ip_header);
    }
    out.extend_from_slice(ciphertext);
    match cfg.enc {
        EncAlg::Null => {}
        EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => {
            let mut iv16 = [0u8; 16];
            iv16.copy_from_slice(iv);
            sa.crypto.cipher.cbc_decrypt(&iv16, &mut out[prefix..]);
        }
        EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => {
            let mut iv8 = [0u8; 8];
            iv8.copy_from_slice(iv);
            let (aad, aad_len) = gcm_aad(cfg.spi.0, seq, cfg.esn);
            sa.crypto
                .cipher
                .gcm_open(&iv8, &aad[..aad_len], &mut out[prefix..], tag)
                .map_err(|_| OpenError::IcvMismatch)?;
        }
    }
    Ok(prefix)
}

/// After the IPsec header is gone: check Next Header against the mode,
/// restore or validate the IP packet in `out` (which holds `prefix` bytes
/// of IP header in transport mode, then the payload), check selectors.
pub(crate) fn finish_inbound(
    sa: &Sa,
    next_header: IpProtocol,
    prefix: usize,
    out: &mut Vec<u8>,
) -> Result<(), OpenError> {
    let cfg = sa.config();
    match (cfg.mode, next_header) {
        (_, IpProtocol::NoNextHeader) => return Err(OpenError::Dummy),
        (Mode::Tunnel, IpProtocol::IpIp) => {
            let inner = Ipv4Packet::new_checked(&out[..]).map_err(|_| OpenError::Malformed)?;
            if inner.version() != ipv4::VERSION {
                return Err(OpenError::NextHeaderMismatch);
            }
            if !inner.verify_checksum() {
                return Err(OpenError::Malformed);
            }
            // Bytes after the inner packet are TFC padding (RFC 4303 §2.7).
            let total = usize::from(inner.total_len());
            out.truncate(total);
        }
        (Mode::Tunnel, IpProtocol::Ipv6) => return Err(OpenError::Unsupported),
        (Mode::Tunnel, _) => return Err(OpenError::NextHeaderMismatch),
        (Mode::Transport, protocol) => {
            let len = out.len();
            fix_ipv4_header(out, protocol, len);
        }
    }
    // In transport mode the restored header is `prefix` bytes long and
    // names `next_header`: the 5-tuple reads the packet as it now is.
    debug_assert!(cfg.mode == Mode::Tunnel || usize::from(out[0] & 0x0f) * 4 == prefix);
    let five = FiveTuple::parse(out).map_err(|_| OpenError::Malformed)?;
    let (src, dst, protocol, ports) = five.selector_fields();
    if !cfg.selector.matches(src, dst, protocol, ports) {
        return Err(OpenError::SelectorMismatch);
    }
    Ok(())
}
