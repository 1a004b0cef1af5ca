//! Traffic Selector payloads (RFC 7296 §3.13).

use super::*;

/// A traffic selector (RFC 7296 §3.13.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TrafficSelector {
    /// TS_IPV4_ADDR_RANGE.
    Ipv4 {
        /// IP protocol, 0 for any.
        ip_protocol: u8,
        start_port: u16,
        end_port: u16,
        start: [u8; 4],
        end: [u8; 4],
    },
    /// TS_IPV6_ADDR_RANGE.
    Ipv6 {
        ip_protocol: u8,
        start_port: u16,
        end_port: u16,
        start: [u8; 16],
        end: [u8; 16],
    },
    /// Another TS type (not 7 or 8): the octet after TS Type (IP Protocol ID
    /// for the RFC 7296 types) and everything after Selector Length.
    Other {
        ts_type: u8,
        second_octet: u8,
        data: Vec<u8>,
    },
}

pub(super) const TS_IPV4_LEN: usize = 16;
pub(super) const TS_IPV6_LEN: usize = 40;

impl TrafficSelector {
    /// All ports and protocols of one IPv4 address.
    pub fn ipv4_host(addr: [u8; 4]) -> TrafficSelector {
        TrafficSelector::Ipv4 {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: addr,
            end: addr,
        }
    }

    pub fn ts_type(&self) -> TsType {
        match self {
            TrafficSelector::Ipv4 { .. } => TsType::Ipv4AddrRange,
            TrafficSelector::Ipv6 { .. } => TsType::Ipv6AddrRange,
            TrafficSelector::Other { ts_type, .. } => TsType::from(*ts_type),
        }
    }

    pub(super) fn parse_payload(body: &[u8]) -> Result<Vec<TrafficSelector>, Malformed> {
        let mut r = Reader::new(body);
        let count = r.u8("TS header")?;
        r.skip(3, "TS header")?;
        let mut selectors = Vec::with_capacity(usize::from(count));
        while !r.is_empty() {
            selectors.push(TrafficSelector::parse(&mut r)?);
        }
        if selectors.len() != usize::from(count) {
            return Err(Malformed::Inconsistent("number of traffic selectors"));
        }
        Ok(selectors)
    }

    pub(super) fn parse(r: &mut Reader<'_>) -> Result<TrafficSelector, Malformed> {
        let ts_type = TsType::from(r.u8("traffic selector")?);
        let second_octet = r.u8("traffic selector")?;
        let length = usize::from(r.u16("traffic selector")?);
        let inner = length
            .checked_sub(4)
            .ok_or(Malformed::BadLength("traffic selector"))?;
        let mut s = Reader::new(r.take(inner, "traffic selector")?);
        let ip_protocol = second_octet;
        Ok(match ts_type {
            TsType::Ipv4AddrRange => {
                if length != TS_IPV4_LEN {
                    return Err(Malformed::BadLength("TS_IPV4_ADDR_RANGE"));
                }
                TrafficSelector::Ipv4 {
                    ip_protocol,
                    start_port: s.u16("traffic selector")?,
                    end_port: s.u16("traffic selector")?,
                    start: array(s.take(4, "traffic selector")?),
                    end: array(s.take(4, "traffic selector")?),
                }
            }
            TsType::Ipv6AddrRange => {
                if length != TS_IPV6_LEN {
                    return Err(Malformed::BadLength("TS_IPV6_ADDR_RANGE"));
                }
                TrafficSelector::Ipv6 {
                    ip_protocol,
                    start_port: s.u16("traffic selector")?,
                    end_port: s.u16("traffic selector")?,
                    start: array(s.take(16, "traffic selector")?),
                    end: array(s.take(16, "traffic selector")?),
                }
            }
            TsType::Unknown(ts_type) => TrafficSelector::Other {
                ts_type,
                second_octet,
                data: s.rest().to_vec(),
            },
        })
    }

    pub(super) fn emit_payload(
        selectors: &[TrafficSelector],
        out: &mut Vec<u8>,
    ) -> Result<(), EmitError> {
        out.push(
            u8::try_from(selectors.len()).map_err(|_| EmitError::TooMany("traffic selectors"))?,
        );
        out.extend_from_slice(&[0, 0, 0]);
        for ts in selectors {
            let start = out.len();
            out.push(ts.ts_type().into());
            match ts {
                TrafficSelector::Ipv4 {
                    ip_protocol,
                    start_port,
                    end_port,
                    ..
                }
                | TrafficSelector::Ipv6 {
                    ip_protocol,
                    start_port,
                    end_port,
                    ..
                } => {
                    out.push(*ip_protocol);
                    out.extend_from_slice(&[0, 0]);
                    out.extend_from_slice(&start_port.to_be_bytes());
                    out.extend_from_slice(&end_port.to_be_bytes());
                }
                TrafficSelector::Other { second_octet, .. } => {
                    out.push(*second_octet);
                    out.extend_from_slice(&[0, 0]);
                }
            }
            match ts {
                TrafficSelector::Ipv4 { start, end, .. } => {
                    out.extend_from_slice(start);
                    out.extend_from_slice(end);
                }
                TrafficSelector::Ipv6 { start, end, .. } => {
                    out.extend_from_slice(start);
                    out.extend_from_slice(end);
                }
                TrafficSelector::Other { data, .. } => out.extend_from_slice(data),
            }
            patch_len16(out, start, "traffic selector")?;
        }
        Ok(())
    }
}

/// Copies a slice whose length the caller has checked into an array.
pub(super) fn array<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(s);
    a
}
