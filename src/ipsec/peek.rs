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

use core::net::IpAddr;

use serde::Serialize;

use super::outer::{parse_outer, parse_outer_with, OuterError};
use super::sa::{EncAlg, Mode, Protocol, Sa, SaConfig, Spi};
use crate::wire::{ah as ah_wire, esp as esp_wire, ipv4, IpProtocol, TcpFlags};

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
    let outer = parse_outer(packet)?;
    let (src, dst) = (IpAddr::V4(outer.src), IpAddr::V4(outer.dst));
    let ipsec = &packet[outer.ipsec_at..outer.end];
    if outer.protocol == IpProtocol::Esp {
        let esp = esp_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
        return Ok(SaLocator {
            protocol: Protocol::Esp,
            spi: Spi(esp.spi()),
            src,
            dst,
            ah_spi: None,
        });
    }
    let ah = ah_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
    if ah.next_header() == IpProtocol::Esp {
        let esp = esp_wire::Packet::new_checked(ah.payload()).map_err(|_| PeekError::Truncated)?;
        return Ok(SaLocator {
            protocol: Protocol::Esp,
            spi: Spi(esp.spi()),
            src,
            dst,
            ah_spi: Some(Spi(ah.spi())),
        });
    }
    Ok(SaLocator {
        protocol: Protocol::Ah,
        spi: Spi(ah.spi()),
        src,
        dst,
        ah_spi: None,
    })
}

/// The plaintext of the protected payload. For ESP, the blocks peek needs
/// are decrypted together, in one pipelined AES call, into two small
/// windows: the head (inner headers) and the tail (the ESP trailer).
/// AH and ESP-NULL payloads are read in place.
struct Reader<'a> {
    sa: &'a Sa,
    /// The payload is cleartext (AH, ESP-NULL).
    clear: bool,
    iv: &'a [u8],
    ct: &'a [u8],
    /// Plaintext of blocks `0..head_blocks`.
    head: [u8; HEAD_BLOCKS * 16],
    head_blocks: usize,
    /// Plaintext of blocks `tail_first..tail_first + tail_blocks`.
    tail: [u8; 32],
    tail_first: usize,
    tail_blocks: usize,
    /// AES block operations spent.
    blocks: u8,
}

/// `block ^= other` (16 bytes), as one 128-bit operation.
#[inline]
fn xor16(block: &mut aes::Block, other: &[u8]) {
    let mut a = [0u8; 16];
    let mut b = [0u8; 16];
    a.copy_from_slice(block);
    b.copy_from_slice(&other[..16]);
    let x = u128::from_ne_bytes(a) ^ u128::from_ne_bytes(b);
    block.copy_from_slice(&x.to_ne_bytes());
}

/// Blocks 0..3 hold an inner IPv4 header without options (20 bytes) and
/// the first 14 bytes of TCP (ports and flags).
const HEAD_BLOCKS: usize = 3;

impl<'a> Reader<'a> {
    fn new(sa: &'a Sa, clear: bool, iv: &'a [u8], ct: &'a [u8]) -> Self {
        Reader {
            sa,
            clear,
            iv,
            ct,
            head: [0; HEAD_BLOCKS * 16],
            head_blocks: 0,
            tail: [0; 32],
            tail_first: 0,
            tail_blocks: 0,
            blocks: 0,
        }
    }

    fn len(&self) -> usize {
        self.ct.len()
    }

    /// Decrypts blocks `idx` (each inside the ciphertext) into `out`, in
    /// one AES call.
    fn decrypt(&mut self, idx: &[usize], out: &mut [aes::Block]) {
        let ct_block = |i: usize| {
            let mut c = aes::Block::default();
            let end = self.ct.len().min(i * 16 + 16);
            c[..end - i * 16].copy_from_slice(&self.ct[i * 16..end]);
            c
        };
        match self.sa.config().enc {
            EncAlg::Null => {
                for (o, &i) in out.iter_mut().zip(idx) {
                    *o = ct_block(i);
                }
            }
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => {
                for (o, &i) in out.iter_mut().zip(idx) {
                    *o = ct_block(i);
                }
                self.sa.crypto.cipher.decrypt_raw_blocks(out);
                // P_i = D(C_i) ⊕ C_{i-1}, with C_{-1} the IV (RFC 3602 §2).
                for (o, &i) in out.iter_mut().zip(idx) {
                    let prev = if i == 0 {
                        self.iv
                    } else {
                        &self.ct[(i - 1) * 16..i * 16]
                    };
                    o.iter_mut().zip(prev).for_each(|(x, p)| *x ^= p);
                }
                self.blocks += out.len() as u8;
            }
            EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => {
                let mut iv = [0u8; 8];
                iv.copy_from_slice(self.iv);
                self.sa.crypto.cipher.gcm_keystream_blocks(&iv, idx, out);
                for (o, &i) in out.iter_mut().zip(idx) {
                    xor16(o, &ct_block(i));
                }
                self.blocks += out.len() as u8;
            }
        }
    }

    /// Decrypts the first `head` blocks and, with `trailer`, the block(s)
    /// holding the last two bytes: everything peek normally reads, in one
    /// call.
    fn load(&mut self, head: usize, trailer: bool) {
        if self.clear {
            return;
        }
        let nblocks = self.ct.len().div_ceil(16);
        let head = head.min(HEAD_BLOCKS).min(nblocks);
        let mut idx = [0usize; HEAD_BLOCKS + 2];
        idx[..head].iter_mut().enumerate().for_each(|(k, i)| *i = k);
        let mut n = head;
        let (t_first, t_last) = ((self.ct.len() - 2) / 16, (self.ct.len() - 1) / 16);
        if trailer {
            for i in t_first..=t_last {
                idx[n] = i;
                n += 1;
            }
        }
        let mut out = [aes::Block::default(); HEAD_BLOCKS + 2];
        self.decrypt(&idx[..n], &mut out[..n]);
        for (k, o) in out[..head].iter().enumerate() {
            self.head[k * 16..k * 16 + 16].copy_from_slice(o);
        }
        self.head_blocks = head;
        if trailer {
            for (k, o) in out[head..n].iter().enumerate() {
                self.tail[k * 16..k * 16 + 16].copy_from_slice(o);
            }
            self.tail_first = t_first;
            self.tail_blocks = n - head;
        }
    }

    /// Plaintext bytes `at..at + buf.len()`.
    fn read(&mut self, at: usize, buf: &mut [u8]) -> Result<(), PeekError> {
        let end = at + buf.len();
        if end > self.ct.len() {
            return Err(PeekError::Truncated);
        }
        if self.clear {
            buf.copy_from_slice(&self.ct[at..end]);
        } else if end <= self.head_blocks * 16 {
            buf.copy_from_slice(&self.head[at..end]);
        } else if at >= self.tail_first * 16 && end <= (self.tail_first + self.tail_blocks) * 16 {
            let o = self.tail_first * 16;
            buf.copy_from_slice(&self.tail[at - o..end - o]);
        } else {
            // Beyond the head: an inner header with IP options. At most 5
            // blocks (60 + 14 bytes), decrypted now.
            let first = at / 16;
            let count = (end - 1) / 16 - first + 1;
            if count > HEAD_BLOCKS + 2 {
                return Err(PeekError::Malformed);
            }
            let mut idx = [0usize; HEAD_BLOCKS + 2];
            idx[..count]
                .iter_mut()
                .enumerate()
                .for_each(|(k, i)| *i = first + k);
            let mut out = [aes::Block::default(); HEAD_BLOCKS + 2];
            self.decrypt(&idx[..count], &mut out[..count]);
            let mut flat = [0u8; (HEAD_BLOCKS + 2) * 16];
            for (k, o) in out[..count].iter().enumerate() {
                flat[k * 16..k * 16 + 16].copy_from_slice(o);
            }
            let o = first * 16;
            buf.copy_from_slice(&flat[at - o..end - o]);
        }
        Ok(())
    }
}

/// Peeks at `packet` (a whole outer IPv4 packet) with `sa`, the SA that
/// [`locate`] names. See the module documentation for what is decrypted.
pub fn peek(packet: &[u8], sa: &Sa) -> Result<PeekResult, PeekError> {
    match peek_fast(packet, sa) {
        Some(r) => Ok(r),
        None => peek_general(packet, sa),
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
    let outer = parse_outer_with(packet, false)?;
    if outer.protocol != IpProtocol::Ah || ah.protocol() != Protocol::Ah {
        return Err(PeekError::WrongSa);
    }
    let hdr = ah_wire::Packet::new_checked(&packet[outer.ipsec_at..outer.end])
        .map_err(|_| PeekError::Truncated)?;
    if hdr.spi() != ah.spi().0 || hdr.next_header() != IpProtocol::Esp {
        return Err(PeekError::WrongSa);
    }
    Ok(BundlePeek {
        ah_spi: ah.spi(),
        ah_seq: hdr.seq_number(),
        esp: peek_general(packet, esp)?,
    })
}

#[inline(always)]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
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
    // Outer IPv4: version 4, IHL 5, no fragment, Total Length within the
    // buffer.
    let h: &[u8; ipv4::HEADER_LEN] = packet.get(..ipv4::HEADER_LEN)?.try_into().ok()?;
    if h[0] != 0x45 || be16(h, 6) & 0x3fff != 0 {
        return None;
    }
    let total = usize::from(be16(h, 2));
    if total < ipv4::HEADER_LEN || total > packet.len() {
        return None;
    }
    let (esp_at, end) = match h[9] {
        50 => (ipv4::HEADER_LEN, total),
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
            (ESP_AT, ipv4::HEADER_LEN + udp_len)
        }
        _ => return None,
    };
    let esp = &packet[esp_at..end];
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
    // Inner IPv4 without options: Total Length within the payload.
    let inner_total = usize::from(be16(&p, 2));
    if p[0] != 0x45 || inner_total < ipv4::HEADER_LEN || inner_total > ct_len {
        return None;
    }
    // A non-first fragment carries no ports.
    let l4_len = if be16(&p, 6) & 0x1fff == 0 {
        inner_total - ipv4::HEADER_LEN
    } else {
        0
    };
    let proto = IpProtocol::from(p[9]);
    let (src_port, dst_port, tcp_flags) = match proto {
        IpProtocol::Tcp if l4_len > 0 => {
            if l4_len < 20 {
                return None;
            }
            (be16(&p, 20), be16(&p, 22), Some(TcpFlags(p[33])))
        }
        IpProtocol::Udp if l4_len > 0 => {
            if l4_len < 8 {
                return None;
            }
            (be16(&p, 20), be16(&p, 22), None)
        }
        _ => (0, 0, None),
    };
    let addr = |b: &[u8; 48], at: usize| {
        IpAddr::V4(core::net::Ipv4Addr::new(
            b[at],
            b[at + 1],
            b[at + 2],
            b[at + 3],
        ))
    };
    let outer_addr = |at: usize| {
        IpAddr::V4(core::net::Ipv4Addr::new(
            h[at],
            h[at + 1],
            h[at + 2],
            h[at + 3],
        ))
    };
    Some(PeekResult {
        spi: Spi(spi),
        seq,
        outer_src: outer_addr(12),
        outer_dst: outer_addr(16),
        src: addr(&p, 12),
        dst: addr(&p, 16),
        proto,
        src_port,
        dst_port,
        tcp_flags,
        blocks_decrypted: if cfg.enc == EncAlg::Null { 0 } else { 3 },
    })
}

/// Every layout and every error: AH and bundles, transport mode, IP
/// options, short payloads.
fn peek_general(packet: &[u8], sa: &Sa) -> Result<PeekResult, PeekError> {
    let cfg = sa.config();
    let outer = parse_outer_with(packet, false)?;
    let mut ipsec = &packet[outer.ipsec_at..outer.end];
    // AH: the payload is in the clear; follow it to ESP in a bundle.
    let mut ah_next = None;
    if outer.protocol == IpProtocol::Ah {
        let ah = ah_wire::Packet::new_checked(ipsec).map_err(|_| PeekError::Truncated)?;
        if ah.next_header() == IpProtocol::Esp {
            ipsec = &ipsec[ah.header_len()..];
        } else {
            if cfg.protocol != Protocol::Ah || ah.spi() != cfg.spi.0 {
                return Err(PeekError::WrongSa);
            }
            ah_next = Some((ah.next_header(), ah.spi(), ah.seq_number(), ah.header_len()));
        }
    }
    let (spi, seq, mut plain, trailer_next) = match ah_next {
        Some((next, spi, seq, ah_len)) => (
            spi,
            seq,
            Reader::new(sa, true, &[], &ipsec[ah_len..]),
            Some(next),
        ),
        None => {
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
            let reader = Reader::new(sa, cfg.enc == EncAlg::Null, iv, ct);
            (esp.spi(), esp.seq_number(), reader, None)
        }
    };

    // Everything peek will read, decrypted in one batch: the blocks of an
    // inner IPv4 header without options plus 14 bytes of TCP (tunnel), or
    // block 0 and the trailer (transport).
    match cfg.mode {
        // Transport: TCP ports and flags are in block 0, Next Header in the
        // trailer.
        Mode::Transport => plain.load(1, trailer_next.is_none()),
        // Tunnel: the inner IPv4 header and the start of TCP.
        Mode::Tunnel => plain.load(HEAD_BLOCKS, false),
    }

    // The ESP trailer's Next Header and Pad Length give the protocol and
    // the payload length (transport mode needs them; tunnel mode has the
    // inner header instead, RFC 4303 §2.6).
    let (next_header, payload_len) = match trailer_next {
        Some(next) => (next, plain.len()),
        None if cfg.mode == Mode::Tunnel => (IpProtocol::IpIp, plain.len()),
        None => {
            let mut t = [0u8; 2];
            let n = plain.len();
            plain.read(n - 2, &mut t)?;
            let payload_len = (n - 2)
                .checked_sub(usize::from(t[0]))
                .ok_or(PeekError::Malformed)?;
            (IpProtocol::from(t[1]), payload_len)
        }
    };

    let (src, dst, proto, l4_at, l4_len) = match next_header {
        IpProtocol::IpIp => {
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
            (
                IpAddr::V4(inner.src_addr()),
                IpAddr::V4(inner.dst_addr()),
                inner.next_header(),
                hl,
                l4_len,
            )
        }
        IpProtocol::Ipv6 => return Err(PeekError::Unsupported),
        other if cfg.mode == Mode::Transport => (
            IpAddr::V4(outer.src),
            IpAddr::V4(outer.dst),
            other,
            0,
            payload_len,
        ),
        _ => return Err(PeekError::Malformed),
    };

    let (mut src_port, mut dst_port, mut tcp_flags) = (0, 0, None);
    match proto {
        IpProtocol::Tcp if l4_len > 0 => {
            if l4_len < 20 {
                return Err(PeekError::Truncated);
            }
            let mut t = [0u8; 14];
            plain.read(l4_at, &mut t)?;
            src_port = u16::from_be_bytes([t[0], t[1]]);
            dst_port = u16::from_be_bytes([t[2], t[3]]);
            tcp_flags = Some(TcpFlags(t[13]));
        }
        IpProtocol::Udp if l4_len > 0 => {
            if l4_len < 8 {
                return Err(PeekError::Truncated);
            }
            let mut u = [0u8; 4];
            plain.read(l4_at, &mut u)?;
            src_port = u16::from_be_bytes([u[0], u[1]]);
            dst_port = u16::from_be_bytes([u[2], u[3]]);
        }
        _ => {}
    }
    let blocks_decrypted = plain.blocks;
    Ok(PeekResult {
        spi: Spi(spi),
        seq,
        outer_src: IpAddr::V4(outer.src),
        outer_dst: IpAddr::V4(outer.dst),
        src,
        dst,
        proto,
        src_port,
        dst_port,
        tcp_flags,
        blocks_decrypted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipsec::sa::tests::config;
    use crate::ipsec::sa::{IntegAlg, UdpEncap};
    use crate::ipsec::seal_esp_with_iv;
    use proptest::prelude::*;

    fn suites() -> Vec<(EncAlg, IntegAlg)> {
        vec![
            (EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
            (EncAlg::AesCbc256, IntegAlg::HmacSha256_128),
            (EncAlg::AesCbc192, IntegAlg::None),
            (EncAlg::AesGcm16_128, IntegAlg::None),
            (EncAlg::AesGcm16_256, IntegAlg::None),
            (EncAlg::Null, IntegAlg::HmacSha1_96),
        ]
    }

    /// An IPv4 packet: `options` words of IP options, protocol `proto`,
    /// `l4` bytes after the header (checksums left zero: peek reads none).
    fn inner(proto: u8, options: usize, l4: usize, frag: u16, fill: u8) -> Vec<u8> {
        let hl = 20 + options * 4;
        let mut p = vec![fill; hl + l4];
        p[0] = 0x40 | (hl / 4) as u8;
        p[1] = 0;
        p[2..4].copy_from_slice(&((hl + l4) as u16).to_be_bytes());
        p[6..8].copy_from_slice(&frag.to_be_bytes());
        p[8] = 64;
        p[9] = proto;
        p[12..16].copy_from_slice(&[198, 18, 1, 10]);
        p[16..20].copy_from_slice(&[198, 18, 0, 100]);
        p
    }

    fn bundle_sas(enc: EncAlg, mode: Mode) -> (Sa, Sa) {
        let mut ah = config(EncAlg::Null, IntegAlg::HmacSha256_128, mode);
        ah.protocol = Protocol::Ah;
        ah.spi = Spi(0x2000_0002);
        let esp = config(enc, IntegAlg::None, mode);
        (Sa::new(ah).unwrap(), Sa::new(esp).unwrap())
    }

    /// The "Combined AH,ESP" rows, transport and tunnel, every cipher:
    /// peek reads the AH header in the clear and the TCP header behind ESP.
    #[test]
    fn bundles_peek_through_ah_in_both_modes() {
        let ciphers = [EncAlg::AesCbc128, EncAlg::AesCbc256, EncAlg::AesGcm16_128];
        for (enc, mode) in ciphers
            .into_iter()
            .flat_map(|e| [(e, Mode::Transport), (e, Mode::Tunnel)])
        {
            let (ah, esp) = bundle_sas(enc, mode);
            let mut sealed = Vec::new();
            let iv = vec![0x3c; enc.iv_len()];
            let pkt = inner(6, 0, 40, 0, 0x22);
            crate::ipsec::seal_bundle(&ah, 7, &esp, 9, &iv, &pkt, &mut sealed).unwrap();
            let loc = locate(&sealed).unwrap();
            assert_eq!((loc.spi, loc.ah_spi), (esp.spi(), Some(ah.spi())));
            assert!(loc.names(esp.config(), Some(ah.config())));
            assert!(
                !loc.names(esp.config(), None),
                "a bundle is named by its AH"
            );
            let b = peek_bundle(&sealed, &ah, &esp).unwrap();
            assert_eq!((b.ah_spi, b.ah_seq, b.esp.seq), (ah.spi(), 7, 9));
            assert_eq!(b.esp.proto, IpProtocol::Tcp, "{enc:?} {mode:?}");
            assert_eq!((b.esp.src_port, b.esp.dst_port), (0x2222, 0x2222));
            assert_eq!(
                b.esp.src,
                IpAddr::V4(core::net::Ipv4Addr::new(198, 18, 1, 10))
            );
            assert_eq!(peek_bundle(&sealed, &esp, &esp), Err(PeekError::WrongSa));
            let (other_ah, _) = bundle_sas(enc, mode);
            let mut c = other_ah.config().clone();
            c.spi = Spi(0x2000_0003);
            let other_ah = Sa::new(c).unwrap();
            assert_eq!(
                peek_bundle(&sealed, &other_ah, &esp),
                Err(PeekError::WrongSa)
            );
            // ESP alone is no bundle, and names no bundle's ESP SA.
            let mut bare = Vec::new();
            seal_esp_with_iv(&esp, 9, &iv, &pkt, &mut bare).unwrap();
            assert_eq!(peek_bundle(&bare, &ah, &esp), Err(PeekError::WrongSa));
            let loc = locate(&bare).unwrap();
            assert!(!loc.names(esp.config(), Some(ah.config())));
            assert!(loc.names(esp.config(), None));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// The fast path answers only what the general path answers, and
        /// answers the ordinary tunnel-mode packet.
        #[test]
        fn fast_path_agrees_with_general(
            suite in 0usize..6,
            tunnel in any::<bool>(),
            encap in any::<bool>(),
            proto in prop::sample::select(vec![6u8, 17, 1, 41, 4]),
            options in prop::sample::select(vec![0usize, 0, 0, 1, 10]),
            l4 in 0usize..120,
            frag in prop::sample::select(vec![0u16, 0, 0x4000, 0x2000, 0x0001]),
            fill in any::<u8>(),
            mutations in proptest::collection::vec((0usize..64, 1u8..), 0..3),
        ) {
            let (enc, integ) = suites()[suite];
            let mut c = config(enc, integ, if tunnel { Mode::Tunnel } else { Mode::Transport });
            if encap {
                c.udp_encap = Some(UdpEncap { src_port: 4500, dst_port: 4500 });
            }
            let sa = Sa::new(c).unwrap();
            let pkt = inner(proto, options, l4, if tunnel { frag } else { 0 }, fill);
            let iv = vec![0x3c; enc.iv_len()];
            let mut sealed = Vec::new();
            seal_esp_with_iv(&sa, 5, &iv, &pkt, &mut sealed).unwrap();
            let ordinary = tunnel && options == 0 && pkt.len() + 2 >= 48 && mutations.is_empty();
            if ordinary {
                prop_assert!(peek_fast(&sealed, &sa).is_some());
            }
            for (at, x) in mutations {
                let n = sealed.len();
                sealed[at % n] ^= x;
            }
            for cut in [sealed.len(), sealed.len().saturating_sub(20)] {
                let p = &sealed[..cut];
                if let Some(fast) = peek_fast(p, &sa) {
                    prop_assert_eq!(peek_general(p, &sa), Ok(fast));
                }
                let general = peek_general(p, &sa);
                prop_assert_eq!(peek(p, &sa), general);
            }
        }
    }
}
