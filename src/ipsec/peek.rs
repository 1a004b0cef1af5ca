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

use super::outer::{parse_outer, OuterError};
use super::sa::{EncAlg, Mode, Protocol, Sa, Spi};
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
/// the ESP SA.
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
        });
    }
    Ok(SaLocator {
        protocol: Protocol::Ah,
        spi: Spi(ah.spi()),
        src,
        dst,
    })
}

/// The plaintext of an ESP payload, decrypted block by block on demand.
struct Reader<'a> {
    sa: &'a Sa,
    iv: &'a [u8],
    ct: &'a [u8],
    /// The first blocks, cached: they hold every header peek reads.
    cache: [[u8; 16]; CACHED],
    cached: u8,
    blocks: u8,
}

/// Blocks 0..5 cover an inner IPv4 header with the most options (60
/// bytes) plus 14 bytes of TCP.
const CACHED: usize = 5;

impl<'a> Reader<'a> {
    fn block(&mut self, i: usize) -> [u8; 16] {
        if i < CACHED && self.cached & (1 << i) != 0 {
            return self.cache[i];
        }
        let mut c = [0u8; 16];
        let end = self.ct.len().min(i * 16 + 16);
        c[..end - i * 16].copy_from_slice(&self.ct[i * 16..end]);
        let plain = match self.sa.config().enc {
            EncAlg::Null => c,
            EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => {
                let mut prev = [0u8; 16];
                if i == 0 {
                    prev.copy_from_slice(self.iv);
                } else {
                    prev.copy_from_slice(&self.ct[(i - 1) * 16..i * 16]);
                }
                self.blocks += 1;
                self.sa.crypto.cipher.cbc_decrypt_block(&prev, &c)
            }
            EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => {
                let mut iv = [0u8; 8];
                iv.copy_from_slice(self.iv);
                self.blocks += 1;
                let ks = self.sa.crypto.cipher.gcm_keystream_block(&iv, i as u32);
                let mut p = c;
                for (b, k) in p.iter_mut().zip(ks) {
                    *b ^= k;
                }
                p
            }
        };
        if i < CACHED {
            self.cache[i] = plain;
            self.cached |= 1 << i;
        }
        plain
    }

    /// Plaintext bytes `at..at + buf.len()`; the caller keeps them inside
    /// the ciphertext.
    fn read(&mut self, at: usize, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let pos = at + done;
            let block = self.block(pos / 16);
            let from = pos % 16;
            let n = (16 - from).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&block[from..from + n]);
            done += n;
        }
    }
}

/// Where the protected packet's bytes come from.
enum Plain<'a> {
    Clear(&'a [u8]),
    Esp(Reader<'a>),
}

impl Plain<'_> {
    fn len(&self) -> usize {
        match self {
            Plain::Clear(b) => b.len(),
            Plain::Esp(r) => r.ct.len(),
        }
    }

    fn read(&mut self, at: usize, buf: &mut [u8]) -> Result<(), PeekError> {
        if at + buf.len() > self.len() {
            return Err(PeekError::Truncated);
        }
        match self {
            Plain::Clear(b) => buf.copy_from_slice(&b[at..at + buf.len()]),
            Plain::Esp(r) => r.read(at, buf),
        }
        Ok(())
    }
}

/// Peeks at `packet` (a whole outer IPv4 packet) with `sa`, the SA that
/// [`locate`] names. See the module documentation for what is decrypted.
pub fn peek(packet: &[u8], sa: &Sa) -> Result<PeekResult, PeekError> {
    let cfg = sa.config();
    let outer = parse_outer(packet)?;
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
        Some((next, spi, seq, ah_len)) => (spi, seq, Plain::Clear(&ipsec[ah_len..]), Some(next)),
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
            let reader = Reader {
                sa,
                iv,
                ct,
                cache: [[0; 16]; CACHED],
                cached: 0,
                blocks: 0,
            };
            (esp.spi(), esp.seq_number(), Plain::Esp(reader), None)
        }
    };

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
    let blocks_decrypted = match &plain {
        Plain::Clear(_) => 0,
        Plain::Esp(r) => r.blocks,
    };
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
