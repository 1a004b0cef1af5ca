//! The steps of sealing an ESP packet (RFC 4303 §3.3): where everything
//! goes, the packet before encryption, encryption and ICV, and the outer
//! headers (RFC 4301 §5.1.2.1, RFC 3948 §2.1).

use super::*;

/// Where everything goes in a sealed packet (RFC 4303 §2): the payload
/// ESP carries, its padding, and the offsets of the ESP header, the
/// ciphertext and the ICV.
pub(super) struct SealLayout<'a> {
    pub(super) payload: &'a [u8],
    next_header: IpProtocol,
    /// The input's IPv4 header length (transport mode keeps it).
    header_len: usize,
    outer_header_len: usize,
    pad: usize,
    esp_start: usize,
    pt_start: usize,
    icv_start: usize,
    total_out: usize,
}

impl<'a> SealLayout<'a> {
    #[inline]
    pub(super) fn of(
        sa: &Sa,
        ip: &Ipv4Packet<&[u8]>,
        packet: &'a [u8],
        gap: usize,
    ) -> Result<SealLayout<'a>, SealError> {
        let cfg = sa.config();
        let header_len = usize::from(ip.header_len());
        let total = usize::from(ip.total_len());
        let (payload, next_header, outer_header_len) = match cfg.mode {
            Mode::Transport => {
                if ip.more_frags() || ip.frag_offset() != 0 {
                    return Err(SealError::Fragment);
                }
                (&packet[header_len..total], ip.next_header(), header_len)
            }
            Mode::Tunnel => (&packet[..total], IpProtocol::IpIp, ipv4::HEADER_LEN),
        };
        let block = cfg.enc.block_len();
        // RFC 4303 §2.4: payload, padding, Pad Length and Next Header end on a
        // cipher block (CBC) or a 4-byte boundary.
        let pad = (block - (payload.len() + esp_wire::TRAILER_LEN) % block) % block;
        let ct_len = payload.len() + pad + esp_wire::TRAILER_LEN;
        let udp_len = if cfg.udp_encap.is_some() {
            udp::HEADER_LEN
        } else {
            0
        };
        let esp_start = outer_header_len + gap + udp_len;
        let pt_start = esp_start + esp_wire::HEADER_LEN + cfg.enc.iv_len();
        let icv_start = pt_start + ct_len;
        let total_out = icv_start + sa.icv_len();
        if total_out > usize::from(u16::MAX) {
            return Err(SealError::TooLarge);
        }
        Ok(SealLayout {
            payload,
            next_header,
            header_len,
            outer_header_len,
            pad,
            esp_start,
            pt_start,
            icv_start,
            total_out,
        })
    }
}

/// The packet before encryption: the IP header (transport) or room for
/// the tunnel header, the gap, the ESP header, the payload and its
/// trailer (RFC 4303 §2), and room for the ICV.
#[inline]
pub(super) fn write_esp(
    out: &mut Vec<u8>,
    cfg: &SaConfig,
    seq: u64,
    iv: &[u8],
    packet: &[u8],
    l: &SealLayout,
) {
    out.clear();
    out.reserve(l.total_out);
    match cfg.mode {
        Mode::Transport => out.extend_from_slice(&packet[..l.header_len]),
        Mode::Tunnel => out.extend_from_slice(&[0u8; ipv4::HEADER_LEN]),
    }
    out.resize(l.esp_start, 0);
    out.extend_from_slice(&cfg.spi.0.to_be_bytes());
    out.extend_from_slice(&(seq as u32).to_be_bytes());
    out.extend_from_slice(iv);
    out.extend_from_slice(l.payload);
    let pad = l.pad as u8;
    out.extend((1..=pad).chain([pad, u8::from(l.next_header)]));
    out.resize(l.total_out, 0);
}

/// Encrypts the payload and trailer in place and writes the ICV: the GCM
/// tag (RFC 4106 §3), or the integrity algorithm's over SPI through Next
/// Header (RFC 4303 §3.3.2.1).
#[inline]
pub(super) fn protect(sa: &Sa, seq: u64, iv: &[u8], out: &mut [u8], l: &SealLayout) {
    let cfg = sa.config();
    let seq_hi = ((seq >> 32) as u32).to_be_bytes();
    let (body, icv) = out.split_at_mut(l.icv_start);
    match cfg.enc {
        EncAlg::Null => {}
        EncAlg::AesCbc128 | EncAlg::AesCbc192 | EncAlg::AesCbc256 => {
            let mut iv16 = [0u8; 16];
            iv16.copy_from_slice(iv);
            sa.crypto.cipher.cbc_encrypt(&iv16, &mut body[l.pt_start..]);
        }
        EncAlg::AesGcm16_128 | EncAlg::AesGcm16_256 => {
            let mut iv8 = [0u8; 8];
            iv8.copy_from_slice(iv);
            let (aad, aad_len) = gcm_aad(cfg.spi.0, seq, cfg.esn);
            let tag = sa
                .crypto
                .cipher
                .gcm_seal(&iv8, &aad[..aad_len], &mut body[l.pt_start..]);
            icv.copy_from_slice(&tag);
        }
    }
    if !cfg.enc.is_aead() {
        // RFC 4303 §3.3.2.1: the ICV covers SPI through Next Header, and
        // with ESN the high 32 bits appended (§2.2.1), not transmitted.
        let esn: &[u8] = if cfg.esn { &seq_hi } else { &[] };
        sa.crypto
            .integrity
            .compute(&[&body[l.esp_start..], esn], icv);
    }
}

/// The outer IPv4 header: the input's, fixed (transport), or the tunnel
/// header (RFC 4301 §5.1.2.1); then the UDP header of RFC 3948 when the SA
/// encapsulates.
#[inline]
pub(super) fn write_outer(
    out: &mut [u8],
    cfg: &SaConfig,
    ip: &Ipv4Packet<&[u8]>,
    seq: u64,
    l: &SealLayout,
    gap: usize,
) -> Result<(), SealError> {
    let outer_protocol = if cfg.udp_encap.is_some() {
        IpProtocol::Udp
    } else {
        IpProtocol::Esp
    };
    match cfg.mode {
        Mode::Transport => fix_ipv4_header(out, outer_protocol, l.total_out),
        Mode::Tunnel => {
            let (src, dst) = match (v4(cfg.src), v4(cfg.dst)) {
                (Some(s), Some(d)) => (s, d),
                _ => return Err(SealError::Unsupported),
            };
            let mut repr = tunnel_header(ip, src, dst, seq);
            repr.next_header = outer_protocol;
            repr.payload_len = l.total_out - ipv4::HEADER_LEN;
            repr.emit(&mut Ipv4Packet::new_unchecked(&mut out[..ipv4::HEADER_LEN]));
        }
    }
    if let Some(encap) = cfg.udp_encap {
        let start = l.outer_header_len + gap;
        let repr = UdpRepr {
            src_port: encap.src_port,
            dst_port: encap.dst_port,
        };
        // RFC 3948 §2.1: the UDP checksum is sent as zero.
        repr.emit(
            &mut UdpPacket::new_unchecked(&mut out[start..l.total_out]),
            l.total_out - start - udp::HEADER_LEN,
            None,
        );
    }
    Ok(())
}
