//! AH seal and open (RFC 4302 §3.3, §3.4), transport and tunnel mode, and
//! the AH-outside-ESP bundle (transport adjacency, RFC 4301 §4.3).

use super::esp::{
    check_seq, finish_inbound, input_packet, open_esp_parts, seal_esp_inner, OpenError, Opened,
    SealError,
};
use super::outer::{fix_ipv4_header, parse_outer, tunnel_header, v4};
use super::replay::ReplayWindow;
use super::sa::{Mode, Protocol, Sa};
use crate::wire::ah::{self as ah_wire, AhPacket};
use crate::wire::ipv4::{self, Ipv4Packet};
use crate::wire::IpProtocol;

/// The AH ICV field length for an ICV of `icv_len` bytes: the header must
/// be a multiple of 32 bits over IPv4 (RFC 4302 §2.2; 64 bits over IPv6,
/// which will pad here). All plexnet's ICVs (12, 16, 24, 32) need no
/// padding over IPv4.
const fn icv_field_len(icv_len: usize) -> usize {
    icv_len.div_ceil(4) * 4
}

/// IPv4 options that keep their value in transit (RFC 4302 Appendix A.1):
/// End of List, No Operation, Security, Extended Security, Commercial
/// Security, Router Alert, Sender Directed Multi-Destination Delivery.
fn option_is_immutable(kind: u8) -> bool {
    matches!(kind, 0 | 1 | 130 | 133 | 134 | 148 | 149)
}

/// Zeroes the fields of an IPv4 header that may change in transit, for the
/// AH ICV (RFC 4302 §3.3.3.1.1.1): TOS, flags, fragment offset, TTL and
/// checksum, and every mutable option whole (§3.3.3.1.1.2). Loose and
/// strict source routes are zeroed too rather than predicted; plexnet never
/// sends them. Returns `false` for an option list that does not parse.
fn zero_mutable_v4(header: &mut [u8]) -> bool {
    header[1] = 0; // TOS
    header[6..8].fill(0); // flags, fragment offset
    header[8] = 0; // TTL
    header[10..12].fill(0); // checksum
    let mut i = ipv4::HEADER_LEN;
    while i < header.len() {
        match header[i] {
            0 => break,
            1 => i += 1,
            kind => {
                let Some(&len) = header.get(i + 1) else {
                    return false;
                };
                let len = usize::from(len);
                if len < 2 || i + len > header.len() {
                    return false;
                }
                if !option_is_immutable(kind) {
                    header[i..i + len].fill(0);
                }
                i += len;
            }
        }
    }
    true
}

/// Seals `packet` with AH into `out`. Returns the number of protected bytes.
pub fn seal_ah(sa: &Sa, seq: u64, packet: &[u8], out: &mut Vec<u8>) -> Result<usize, SealError> {
    let cfg = sa.config();
    if cfg.protocol != Protocol::Ah {
        return Err(SealError::WrongProtocol);
    }
    check_seq(seq, cfg.esn)?;
    let ip = input_packet(packet)?;
    let header_len = usize::from(ip.header_len());
    let total = usize::from(ip.total_len());
    let ah_len = ah_wire::FIXED_LEN + icv_field_len(sa.icv_len());
    let (payload, next_header, outer_header_len) = match cfg.mode {
        Mode::Transport => {
            if ip.more_frags() || ip.frag_offset() != 0 {
                return Err(SealError::Fragment);
            }
            (&packet[header_len..total], ip.next_header(), header_len)
        }
        Mode::Tunnel => (&packet[..total], IpProtocol::IpIp, ipv4::HEADER_LEN),
    };
    let total_out = outer_header_len + ah_len + payload.len();
    if total_out > usize::from(u16::MAX) {
        return Err(SealError::TooLarge);
    }
    out.clear();
    out.reserve(total_out);
    match cfg.mode {
        Mode::Transport => out.extend_from_slice(&packet[..header_len]),
        Mode::Tunnel => out.extend_from_slice(&[0u8; ipv4::HEADER_LEN]),
    }
    out.resize(outer_header_len + ah_len, 0);
    out.extend_from_slice(payload);
    match cfg.mode {
        Mode::Transport => fix_ipv4_header(out, IpProtocol::Ah, total_out),
        Mode::Tunnel => {
            let (src, dst) = match (v4(cfg.src), v4(cfg.dst)) {
                (Some(s), Some(d)) => (s, d),
                _ => return Err(SealError::Unsupported),
            };
            let mut repr = tunnel_header(&ip, src, dst, seq);
            repr.next_header = IpProtocol::Ah;
            repr.payload_len = total_out - ipv4::HEADER_LEN;
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..ipv4::HEADER_LEN]));
        }
    }
    apply_ah(sa, seq, next_header, outer_header_len, out)?;
    Ok(payload.len())
}

/// Writes the AH header at `at` (space already there, the outer header's
/// Total Length final) and its ICV over the whole packet.
fn apply_ah(
    sa: &Sa,
    seq: u64,
    next_header: IpProtocol,
    at: usize,
    out: &mut [u8],
) -> Result<(), SealError> {
    let cfg = sa.config();
    let icv_len = sa.icv_len();
    let repr = ah_wire::Repr {
        next_header,
        spi: cfg.spi.0,
        seq_number: seq as u32,
        icv_len: icv_field_len(icv_len),
    };
    repr.emit(&mut AhPacket::new_unchecked(&mut out[at..]));
    let mut header = [0u8; 60];
    header[..at].copy_from_slice(&out[..at]);
    if !zero_mutable_v4(&mut header[..at]) {
        return Err(SealError::Malformed(crate::wire::WireError::Malformed));
    }
    let seq_hi = ((seq >> 32) as u32).to_be_bytes();
    let esn: &[u8] = if cfg.esn { &seq_hi } else { &[] };
    let mut icv = [0u8; 64];
    // RFC 4302 §3.3.3: the ICV covers the header with mutable fields
    // zeroed, AH with a zero ICV, the payload, and the ESN high bits.
    sa.crypto
        .integrity
        .compute(&[&header[..at], &out[at..], esn], &mut icv[..icv_len]);
    let icv_at = at + ah_wire::FIXED_LEN;
    out[icv_at..icv_at + icv_len].copy_from_slice(&icv[..icv_len]);
    Ok(())
}

/// Where a verified AH header was.
struct VerifiedAh {
    header_len: usize,
    ah_end: usize,
    end: usize,
    next_header: IpProtocol,
    seq: u64,
}

/// Verifies the AH of `packet` against `sa` and moves the window.
fn verify_ah(sa: &Sa, replay: &mut ReplayWindow, packet: &[u8]) -> Result<VerifiedAh, OpenError> {
    let cfg = sa.config();
    if cfg.protocol != Protocol::Ah {
        return Err(OpenError::UnknownSpi);
    }
    let outer = parse_outer(packet)?;
    if outer.protocol != IpProtocol::Ah {
        return Err(OpenError::UnknownSpi);
    }
    let ah_bytes = &packet[outer.ipsec_at..outer.end];
    let ah = AhPacket::new_checked(ah_bytes)?;
    if ah.spi() != cfg.spi.0 {
        return Err(OpenError::UnknownSpi);
    }
    let icv_len = sa.icv_len();
    let field_len = ah.header_len() - ah_wire::FIXED_LEN;
    if field_len != icv_field_len(icv_len) {
        return Err(OpenError::Malformed);
    }
    let seq = replay.infer_seq(ah.seq_number());
    let mut header = [0u8; 60];
    header[..outer.header_len].copy_from_slice(&packet[..outer.header_len]);
    if !zero_mutable_v4(&mut header[..outer.header_len]) {
        return Err(OpenError::Malformed);
    }
    let seq_hi = ((seq >> 32) as u32).to_be_bytes();
    let esn: &[u8] = if cfg.esn { &seq_hi } else { &[] };
    let zeros = [0u8; 64];
    let parts: [&[u8]; 5] = [
        &header[..outer.header_len],
        &ah_bytes[..ah_wire::FIXED_LEN],
        &zeros[..field_len],
        ah.payload(),
        esn,
    ];
    if !sa.crypto.integrity.verify(&parts, &ah.icv()[..icv_len]) {
        return Err(OpenError::IcvMismatch);
    }
    replay.check(seq)?;
    replay.update(seq);
    Ok(VerifiedAh {
        header_len: outer.header_len,
        ah_end: outer.ipsec_at + ah.header_len(),
        end: outer.end,
        next_header: ah.next_header(),
        seq,
    })
}

/// Opens an AH packet into `out`: ICV first, then the replay window, then
/// Next Header and selectors. On error `out` is empty.
pub fn open_ah(
    sa: &Sa,
    replay: &mut ReplayWindow,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<Opened, OpenError> {
    let result = verify_ah(sa, replay, packet).and_then(|v| {
        out.clear();
        let prefix = match sa.mode() {
            Mode::Transport => {
                out.extend_from_slice(&packet[..v.header_len]);
                v.header_len
            }
            Mode::Tunnel => 0,
        };
        out.extend_from_slice(&packet[v.ah_end..v.end]);
        finish_inbound(sa, v.next_header, prefix, out)?;
        Ok(Opened {
            seq: v.seq,
            next_header: v.next_header,
            protected_bytes: v.end - v.ah_end,
        })
    });
    if result.is_err() {
        out.clear();
    }
    result
}

/// Seals with ESP (in the ESP SA's mode), then AH over the result on the
/// same outer header: IP, AH, ESP, … (RFC 4301 §4.3 transport adjacency,
/// the patent's "Combined AH,ESP" rows). The AH SA's own mode is not used.
/// Returns the protected bytes.
pub fn seal_bundle(
    ah_sa: &Sa,
    ah_seq: u64,
    esp_sa: &Sa,
    esp_seq: u64,
    esp_iv: &[u8],
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, SealError> {
    if ah_sa.protocol() != Protocol::Ah
        || esp_sa.protocol() != Protocol::Esp
        || esp_sa.config().udp_encap.is_some()
    {
        return Err(SealError::WrongProtocol);
    }
    check_seq(ah_seq, ah_sa.config().esn)?;
    let ah_len = ah_wire::FIXED_LEN + icv_field_len(ah_sa.icv_len());
    let protected = seal_esp_inner(esp_sa, esp_seq, esp_iv, packet, out, ah_len)?;
    let header_len = usize::from(Ipv4Packet::new_unchecked(&out[..]).header_len());
    let total = out.len();
    if total > usize::from(u16::MAX) {
        return Err(SealError::TooLarge);
    }
    fix_ipv4_header(out, IpProtocol::Ah, total);
    apply_ah(ah_sa, ah_seq, IpProtocol::Esp, header_len, out)?;
    Ok(protected)
}

/// Opens an AH+ESP bundle: AH is verified first (and its window moved),
/// then ESP is opened from the same buffer without a copy.
pub fn open_bundle(
    ah_sa: &Sa,
    ah_replay: &mut ReplayWindow,
    esp_sa: &Sa,
    esp_replay: &mut ReplayWindow,
    packet: &[u8],
    out: &mut Vec<u8>,
) -> Result<Opened, OpenError> {
    let result = verify_ah(ah_sa, ah_replay, packet).and_then(|v| {
        if v.next_header != IpProtocol::Esp {
            return Err(OpenError::NextHeaderMismatch);
        }
        open_esp_parts(
            esp_sa,
            esp_replay,
            &packet[..v.header_len],
            &packet[v.ah_end..v.end],
            out,
        )
    });
    if result.is_err() {
        out.clear();
    }
    result
}
