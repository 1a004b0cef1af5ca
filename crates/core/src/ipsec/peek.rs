//! Peek: the 5-tuple and TCP flags of a protected packet without opening
//! it (patent Figure 8 block 132 and its "IPsec combination" table).
//!
//! The routing stack must know which connection an inbound packet belongs
//! to before it forwards the still-encrypted packet to a target. Peek
//! decrypts only what holds the inner headers:
//!
//! - AES-CBC: P_i = D(C_i) ⊕ C_{i-1} (RFC 3602 §2), so any block decrypts
//!   on its own given the ciphertext block before it (or the IV). Transport
//!   mode needs block 0 (ports and flags) and the last block (Next Header
//!   in the trailer); tunnel mode needs the blocks of the inner IPv4 header
//!   and the first 14 bytes of TCP: 3 blocks without IP options, at most 5.
//! - AES-GCM: the keystream block for plaintext block i is E(K, salt ‖ IV
//!   ‖ i+2) (RFC 4106 §3.1, SP 800-38D §7.1): one AES call per needed block.
//! - ESP-NULL and AH: nothing to decrypt (the table's Note 1).
//!
//! Nothing is authenticated: a peeked packet may be forged. The caller uses
//! the result only to pick a target, and pre-checks the replay window with
//! [`ReplayWindow::check`](super::ReplayWindow::check), never `update`.
//! The work is bounded by the header sizes, never by the packet size.

use core::net::{IpAddr, Ipv4Addr};

use serde::Serialize;

use super::outer::{parse_outer_with, OuterError, OuterView};
use super::sa::{EncAlg, Mode, Protocol, Sa, SaConfig, Spi};
use crate::wire::{ah as ah_wire, esp as esp_wire, ipv4, IpProtocol, TcpFlags};

mod reader;

use reader::{Reader, HEAD_BLOCKS};

/// What peek learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct PeekResult {
    /// SPI of the header peek looked behind.
    pub spi: Spi,
    /// The sequence number as sent (low 32 bits), for a replay pre-check.
    pub seq: u32,
    /// Outer source address.
    pub outer_src: IpAddr,
    /// Outer destination address.
    pub outer_dst: IpAddr,
    /// Source of the protected packet (the inner header in tunnel mode).
    pub src: IpAddr,
    /// Destination of the protected packet.
    pub dst: IpAddr,
    /// Protocol of the protected packet.
    pub proto: IpProtocol,
    /// Source port (TCP and UDP; 0 otherwise).
    pub src_port: u16,
    /// Destination port (TCP and UDP; 0 otherwise).
    pub dst_port: u16,
    /// TCP flags, for TCP.
    pub tcp_flags: Option<TcpFlags>,
    /// AES block operations spent: a cost that does not grow with the
    /// packet (0 for ESP-NULL and AH).
    pub blocks_decrypted: u8,
}

/// Why peek could not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum PeekError {
    /// Too short for the headers it claims.
    #[error("packet truncated")]
    Truncated,
    /// Impossible lengths or fields.
    #[error("malformed packet")]
    Malformed,
    /// Neither ESP nor AH (nor ESP in UDP).
    #[error("not an IPsec packet")]
    NotIpsec,
    /// The SA given is not the one the packet names (see [`locate`]).
    #[error("packet is not for this SA")]
    WrongSa,
    /// An IP fragment.
    #[error("IP fragment")]
    Fragment,
    /// IPv6, not yet.
    #[error("unsupported")]
    Unsupported,
}

impl From<OuterError> for PeekError {
    fn from(e: OuterError) -> Self {
        match e {
            OuterError::Truncated => PeekError::Truncated,
            OuterError::Malformed => PeekError::Malformed,
            OuterError::Fragment => PeekError::Fragment,
            OuterError::Unsupported => PeekError::Unsupported,
            OuterError::NotIpsec => PeekError::NotIpsec,
        }
    }
}

/// Which SA peek needs for a packet: the patent locates it "using SPI,
/// Protocol and source address". Behind AH with Next Header ESP, that is
/// the ESP SA, and `ah_spi` names the AH SA outside it (an AH+ESP bundle,
/// RFC 4301 §4.3), which is what a bundle is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct SaLocator {
    /// ESP or AH.
    pub protocol: Protocol,
    /// SPI.
    pub spi: Spi,
    /// Outer source.
    pub src: IpAddr,
    /// Outer destination.
    pub dst: IpAddr,
    /// The SPI of the AH header in front of the ESP header, for an AH+ESP
    /// bundle; `None` otherwise.
    pub ah_spi: Option<Spi>,
}

impl SaLocator {
    /// Whether this packet is for the inbound SA `sa`, or, with `bundle_ah`,
    /// for the AH+ESP bundle of `bundle_ah` outside `sa`: SPI, protocol and
    /// source, as the patent looks SAs up (a bundle by its AH SA, whose ESP
    /// SPI must then be `sa`'s). A bare ESP packet on a bundle's ESP SA
    /// lacks the AH its policy requires (RFC 4301 §4.4.2) and names nothing.
    pub fn names(&self, sa: &SaConfig, bundle_ah: Option<&SaConfig>) -> bool {
        let is = |c: &SaConfig, protocol, spi| {
            c.spi == spi && c.protocol == protocol && c.src == self.src
        };
        match (self.ah_spi, bundle_ah) {
            (None, None) => is(sa, self.protocol, self.spi),
            (Some(ah_spi), Some(ah)) => {
                is(ah, Protocol::Ah, ah_spi) && is(sa, Protocol::Esp, self.spi)
            }
            _ => false,
        }
    }
}

/// Finds the SPI and protocol whose SA [`peek`] needs.
pub fn locate(packet: &[u8]) -> Result<SaLocator, PeekError> {
    locate_in(packet, &OuterView::parse(packet)?)
}

/// [`locate`] with the packet's outer view already parsed.
pub fn locate_in(packet: &[u8], outer: &OuterView) -> Result<SaLocator, PeekError> {
    let (src, dst) = (IpAddr::V4(outer.src), IpAddr::V4(outer.dst));
    let ipsec = outer.ipsec(packet);
    let locator = |protocol, spi, ah_spi| SaLocator {
        protocol,
        spi: Spi(spi),
        src,
        dst,
        ah_spi,
    };
    if outer.protocol == IpProtocol::Esp {
        let esp = esp_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
        return Ok(locator(Protocol::Esp, esp.spi(), None));
    }
    let ah = ah_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
    if ah.next_header() == IpProtocol::Esp {
        let esp = esp_wire::Packet::new_checked(ah.payload()).map_err(|_| PeekError::Truncated)?;
        return Ok(locator(Protocol::Esp, esp.spi(), Some(Spi(ah.spi()))));
    }
    Ok(locator(Protocol::Ah, ah.spi(), None))
}

/// Peeks at `packet` (a whole outer IPv4 packet) with `sa`, the SA that
/// [`locate`] names. See the module documentation for what is decrypted.
pub fn peek(packet: &[u8], sa: &Sa) -> Result<PeekResult, PeekError> {
    match peek_fast(packet, sa) {
        Some(r) => Ok(r),
        None => peek_general(packet, &parse_outer_with(packet, false)?, sa),
    }
}

/// [`peek`] with the packet's outer view already parsed (by [`locate`]'s
/// caller): the outer headers are not read again.
pub fn peek_in(packet: &[u8], outer: &OuterView, sa: &Sa) -> Result<PeekResult, PeekError> {
    let fast = match outer.protocol {
        IpProtocol::Esp => peek_fast_esp(outer.ipsec(packet), sa, outer.src, outer.dst),
        _ => None,
    };
    match fast {
        Some(r) => Ok(r),
        None => peek_general(packet, outer, sa),
    }
}

/// What peek learned of an AH+ESP bundle (the patent's "Combined AH,ESP"
/// rows, RFC 4301 §4.3): the AH header, read in the clear, and the ESP
/// packet behind it, peeked as [`peek`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct BundlePeek {
    /// The AH SPI.
    pub ah_spi: Spi,
    /// The AH sequence number as sent (low 32 bits), for the AH SA's own
    /// replay pre-check.
    pub ah_seq: u32,
    /// The ESP peek: SPI, sequence number and the inner headers.
    pub esp: PeekResult,
}

/// Peeks at an AH+ESP bundle with its two SAs: the AH header must name
/// `ah` and be followed by ESP, which is peeked with `esp`. Nothing is
/// verified (the AH ICV neither): as with [`peek`], the caller only picks
/// a target and pre-checks replay windows with the result.
pub fn peek_bundle(packet: &[u8], ah: &Sa, esp: &Sa) -> Result<BundlePeek, PeekError> {
    peek_bundle_in(packet, &parse_outer_with(packet, false)?, ah, esp)
}

/// [`peek_bundle`] with the packet's outer view already parsed.
pub fn peek_bundle_in(
    packet: &[u8],
    outer: &OuterView,
    ah: &Sa,
    esp: &Sa,
) -> Result<BundlePeek, PeekError> {
    if outer.protocol != IpProtocol::Ah || ah.protocol() != Protocol::Ah {
        return Err(PeekError::WrongSa);
    }
    let hdr =
        ah_wire::Packet::new_checked(outer.ipsec(packet)).map_err(|_| PeekError::Truncated)?;
    if hdr.spi() != ah.spi().0 || hdr.next_header() != IpProtocol::Esp {
        return Err(PeekError::WrongSa);
    }
    Ok(BundlePeek {
        ah_spi: ah.spi(),
        ah_seq: hdr.seq_number(),
        esp: peek_general(packet, outer, esp)?,
    })
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline(always)]
fn v4_at(b: &[u8], at: usize) -> Ipv4Addr {
    Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3])
}

/// The common case, read straight from the bytes: a tunnel-mode ESP SA, an
/// outer IPv4 header without options carrying ESP (directly or in UDP,
/// RFC 3948), at least three cipher blocks, and an inner IPv4 header
/// without options. Bounds are checked up front; no views or `Repr`s are
/// built and no checksum is computed (see [`parse_outer_with`]). Returns
/// `None` for anything else, and for every packet [`peek_general`] would
/// refuse, so that path alone decides errors and unusual layouts: the
/// two agree on every packet (a property test checks it).
#[inline]
fn peek_fast(packet: &[u8], sa: &Sa) -> Option<PeekResult> {
    let cfg = sa.config();
    if cfg.mode != Mode::Tunnel || cfg.protocol != Protocol::Esp {
        return None;
    }
    let (esp_at, end, src, dst) = fast_outer(packet, cfg)?;
    peek_fast_esp(&packet[esp_at..end], sa, src, dst)
}

/// The fast path's outer header: IPv4 version 4, IHL 5, no fragment,
/// Total Length within the buffer, carrying ESP directly or in UDP.
/// Where the ESP packet starts and ends, and the outer addresses (read
/// from the fixed-size header: no further bounds checks).
#[inline(always)]
fn fast_outer(packet: &[u8], cfg: &SaConfig) -> Option<(usize, usize, Ipv4Addr, Ipv4Addr)> {
    let h: &[u8; ipv4::HEADER_LEN] = packet.get(..ipv4::HEADER_LEN)?.try_into().ok()?;
    let (src, dst) = (v4_at(h, 12), v4_at(h, 16));
    if h[0] != 0x45 || be16(h, 6) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(be16(h, 2));
    if total < ipv4::HEADER_LEN || total > packet.len() {
        return None;
    }
    match h[9] {
        50 => Some((ipv4::HEADER_LEN, total, src, dst)),
        17 => {
            // ESP in UDP: UDP Length within the IP packet, and a non-zero
            // SPI (zero is the non-ESP marker of IKE).
            const ESP_AT: usize = ipv4::HEADER_LEN + 8;
            if total < ESP_AT || cfg.spi.0 == 0 {
                return None;
            }
            let udp_len = usize::from(be16(packet, ipv4::HEADER_LEN + 4));
            if udp_len < 8 + esp_wire::HEADER_LEN || ipv4::HEADER_LEN + udp_len > total {
                return None;
            }
            Some((ESP_AT, ipv4::HEADER_LEN + udp_len, src, dst))
        }
        _ => None,
    }
}

/// The fast path behind the outer header: `esp` is the ESP packet of a
/// tunnel-mode SA with at least three cipher blocks and an inner IPv4
/// header without options; `None` for anything else.
#[inline(always)]
fn peek_fast_esp(
    esp: &[u8],
    sa: &Sa,
    outer_src: Ipv4Addr,
    outer_dst: Ipv4Addr,
) -> Option<PeekResult> {
    let cfg = sa.config();
    if cfg.mode != Mode::Tunnel || cfg.protocol != Protocol::Esp {
        return None;
    }
    // ESP: SPI, sequence number, IV, at least 3 blocks, ICV.
    let iv_len = cfg.enc.iv_len();
    let icv_len = sa.icv_len();
    const CT_AT: usize = esp_wire::HEADER_LEN;
    if esp.len() < CT_AT + iv_len + 48 + icv_len {
        return None;
    }
    let spi = u32::from_be_bytes([esp[0], esp[1], esp[2], esp[3]]);
    if spi != cfg.spi.0 {
        return None;
    }
    let seq = u32::from_be_bytes([esp[4], esp[5], esp[6], esp[7]]);
    let ct_len = esp.len() - CT_AT - iv_len - icv_len;
    if ct_len % cfg.enc.block_len() != 0 {
        return None;
    }
    let iv = &esp[CT_AT..CT_AT + iv_len];
    let head: &[u8; 48] = esp[CT_AT + iv_len..CT_AT + iv_len + 48].try_into().ok()?;
    let p = sa.crypto.cipher.head3(iv, head);
    let (proto, src_port, dst_port, tcp_flags) = fast_inner(&p, ct_len)?;
    Some(PeekResult {
        spi: Spi(spi),
        seq,
        outer_src: IpAddr::V4(outer_src),
        outer_dst: IpAddr::V4(outer_dst),
        src: IpAddr::V4(v4_at(&p, 12)),
        dst: IpAddr::V4(v4_at(&p, 16)),
        proto,
        src_port,
        dst_port,
        tcp_flags,
        blocks_decrypted: if cfg.enc == EncAlg::Null { 0 } else { 3 },
    })
}

/// The fast path's inner IPv4 header without options (Total Length within
/// the `ct_len` bytes of payload) and its ports and TCP flags.
#[inline(always)]
fn fast_inner(p: &[u8; 48], ct_len: usize) -> Option<(IpProtocol, u16, u16, Option<TcpFlags>)> {
    let inner_total = usize::from(be16(p, 2));
    if p[0] != 0x45 || inner_total < ipv4::HEADER_LEN || inner_total > ct_len {
        return None;
    }
    // A non-first fragment carries no ports.
    let l4_len = if be16(p, 6) & 0x1fff == 0 {
        inner_total - ipv4::HEADER_LEN
    } else {
        0
    };
    let proto = IpProtocol::from(p[9]);
    match proto {
        IpProtocol::Tcp if l4_len > 0 => {
            if l4_len < 20 {
                return None;
            }
            Some((proto, be16(p, 20), be16(p, 22), Some(TcpFlags(p[33]))))
        }
        IpProtocol::Udp if l4_len > 0 => {
            if l4_len < 8 {
                return None;
            }
            Some((proto, be16(p, 20), be16(p, 22), None))
        }
        _ => Some((proto, 0, 0, None)),
    }
}

/// The protected payload of one packet as peek reads it: its SPI and
/// sequence number, a reader of its plaintext, and, for AH alone, the Next
/// Header (which ESP keeps in its encrypted trailer).
struct Protected<'a> {
    spi: u32,
    seq: u32,
    plain: Reader<'a>,
    ah_next: Option<IpProtocol>,
}

/// Every layout and every error: AH and bundles, transport mode, IP
/// options, short payloads.
fn peek_general(packet: &[u8], outer: &OuterView, sa: &Sa) -> Result<PeekResult, PeekError> {
    let cfg = sa.config();
    let Protected {
        spi,
        seq,
        mut plain,
        ah_next,
    } = protected(outer.ipsec(packet), outer.protocol, sa)?;
    // Everything peek will read, decrypted in one batch: the blocks of an
    // inner IPv4 header without options plus 14 bytes of TCP (tunnel), or
    // block 0 and the trailer (transport).
    match cfg.mode {
        // Transport: TCP ports and flags are in block 0, Next Header in the
        // trailer.
        Mode::Transport => plain.load(1, ah_next.is_none()),
        // Tunnel: the inner IPv4 header and the start of TCP.
        Mode::Tunnel => plain.load(HEAD_BLOCKS, false),
    }
    let (next_header, payload_len) = next_header(&mut plain, cfg.mode, ah_next)?;
    let l3 = match next_header {
        IpProtocol::IpIp => inner_ipv4(&mut plain, payload_len)?,
        IpProtocol::Ipv6 => return Err(PeekError::Unsupported),
        other if cfg.mode == Mode::Transport => Layer3 {
            src: IpAddr::V4(outer.src),
            dst: IpAddr::V4(outer.dst),
            proto: other,
            l4_at: 0,
            l4_len: payload_len,
        },
        _ => return Err(PeekError::Malformed),
    };
    let (src_port, dst_port, tcp_flags) = ports(&mut plain, &l3)?;
    Ok(PeekResult {
        spi: Spi(spi),
        seq,
        outer_src: IpAddr::V4(outer.src),
        outer_dst: IpAddr::V4(outer.dst),
        src: l3.src,
        dst: l3.dst,
        proto: l3.proto,
        src_port,
        dst_port,
        tcp_flags,
        blocks_decrypted: plain.blocks,
    })
}

/// The ESP or AH packet `ipsec` (`protocol`) as peek reads it with `sa`:
/// AH's payload is in the clear; behind AH with Next Header ESP (a
/// bundle), the ESP.
fn protected<'a>(
    mut ipsec: &'a [u8],
    protocol: IpProtocol,
    sa: &'a Sa,
) -> Result<Protected<'a>, PeekError> {
    let cfg = sa.config();
    if protocol == IpProtocol::Ah {
        let ah = ah_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
        if ah.next_header() != IpProtocol::Esp {
            if cfg.protocol != Protocol::Ah || ah.spi() != cfg.spi.0 {
                return Err(PeekError::WrongSa);
            }
            return Ok(Protected {
                spi: ah.spi(),
                seq: ah.seq_number(),
                plain: Reader::new(sa, true, &[], &ipsec[ah.header_len()..]),
                ah_next: Some(ah.next_header()),
            });
        }
        ipsec = &ipsec[ah.header_len()..];
    }
    let esp = esp_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
    if cfg.protocol != Protocol::Esp || esp.spi() != cfg.spi.0 {
        return Err(PeekError::WrongSa);
    }
    let iv_len = cfg.enc.iv_len();
    let overhead = esp_wire::HEADER_LEN + iv_len + sa.icv_len();
    if ipsec.len() < overhead + esp_wire::TRAILER_LEN {
        return Err(PeekError::Truncated);
    }
    let ct = &ipsec[esp_wire::HEADER_LEN + iv_len..ipsec.len() - sa.icv_len()];
    if ct.len() % cfg.enc.block_len() != 0 {
        return Err(PeekError::Malformed);
    }
    let iv = &ipsec[esp_wire::HEADER_LEN..esp_wire::HEADER_LEN + iv_len];
    Ok(Protected {
        spi: esp.spi(),
        seq: esp.seq_number(),
        plain: Reader::new(sa, cfg.enc == EncAlg::Null, iv, ct),
        ah_next: None,
    })
}

/// The protected packet's protocol and payload length: AH names it; ESP
/// keeps Next Header and Pad Length in its trailer (transport mode needs
/// them; tunnel mode has the inner header instead, RFC 4303 §2.6).
fn next_header(
    plain: &mut Reader<'_>,
    mode: Mode,
    ah_next: Option<IpProtocol>,
) -> Result<(IpProtocol, usize), PeekError> {
    Ok(match ah_next {
        Some(next) => (next, plain.len()),
        None if mode == Mode::Tunnel => (IpProtocol::IpIp, plain.len()),
        None => {
            let mut t = [0u8; 2];
            let n = plain.len();
            plain.read(n - 2, &mut t)?;
            let payload_len = (n - 2)
                .checked_sub(usize::from(t[0]))
                .ok_or(PeekError::Malformed)?;
            (IpProtocol::from(t[1]), payload_len)
        }
    })
}

/// The protected packet's addresses and protocol, and where its layer 4
/// header starts and how long it is (0: none to read).
struct Layer3 {
    src: IpAddr,
    dst: IpAddr,
    proto: IpProtocol,
    l4_at: usize,
    l4_len: usize,
}

/// The inner IPv4 header of a tunnel-mode packet (RFC 4301 §5.1.2).
fn inner_ipv4(plain: &mut Reader<'_>, payload_len: usize) -> Result<Layer3, PeekError> {
    let mut h = [0u8; ipv4::HEADER_LEN];
    plain.read(0, &mut h)?;
    let inner = ipv4::Packet::new_unchecked(&h[..]);
    match inner.version() {
        4 => {}
        6 => return Err(PeekError::Unsupported),
        _ => return Err(PeekError::Malformed),
    }
    let hl = usize::from(inner.header_len());
    let total = usize::from(inner.total_len());
    if hl < ipv4::HEADER_LEN || total < hl || total > payload_len {
        return Err(PeekError::Malformed);
    }
    // A non-first fragment carries no ports.
    let l4_len = if inner.frag_offset() == 0 {
        total - hl
    } else {
        0
    };
    Ok(Layer3 {
        src: IpAddr::V4(inner.src_addr()),
        dst: IpAddr::V4(inner.dst_addr()),
        proto: inner.next_header(),
        l4_at: hl,
        l4_len,
    })
}

/// Ports (TCP, UDP) and TCP flags of the protected packet; zeros and
/// `None` for other protocols.
fn ports(plain: &mut Reader<'_>, l3: &Layer3) -> Result<(u16, u16, Option<TcpFlags>), PeekError> {
    match l3.proto {
        IpProtocol::Tcp if l3.l4_len > 0 => {
            if l3.l4_len < 20 {
                return Err(PeekError::Truncated);
            }
            let mut t = [0u8; 14];
            plain.read(l3.l4_at, &mut t)?;
            Ok((be16(&t, 0), be16(&t, 2), Some(TcpFlags(t[13]))))
        }
        IpProtocol::Udp if l3.l4_len > 0 => {
            if l3.l4_len < 8 {
                return Err(PeekError::Truncated);
            }
            let mut u = [0u8; 4];
            plain.read(l3.l4_at, &mut u)?;
            Ok((be16(&u, 0), be16(&u, 2), None))
        }
        _ => Ok((0, 0, None)),
    }
}

#[cfg(test)]
mod tests;
