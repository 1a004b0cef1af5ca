//! The keys under which the sysplex keeps a DVIPA's state in the coupling
//! facility's list structure (patent Fig. 12: what a backup stack reads
//! when it takes a DVIPA over): who holds it, its SA pairs, its
//! connection table. Typed here; the CF itself is a store of byte values
//! under text keys, so a key travels as its text ([`CfKey`]'s `Display`),
//! which is what it has always been on the wire:
//!
//! ```text
//! dvipa/<DVIPA>/owner
//! dvipa/<DVIPA>/sa/<esp|ah>/<inbound SPI, 0x%08x>
//! dvipa/<DVIPA>/conn/<client>:<client port>/<port>
//! ```

use std::fmt;
use std::net::Ipv4Addr;

use super::dct::ConnKey;
use crate::ipsec::sa::{Protocol, Spi};

/// One record of a DVIPA in the CF.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CfKey {
    /// Who holds the DVIPA now (`OwnerRecord`).
    Owner(Ipv4Addr),
    /// One SA pair (or AH+ESP bundle, under its ESP pair), by protocol and
    /// inbound SPI (`SaRecord`).
    Sa {
        dvipa: Ipv4Addr,
        protocol: Protocol,
        inbound_spi: Spi,
    },
    /// One connection of the DVIPA's DCT (`ConnRecord`).
    Conn(ConnKey),
}

/// A group of a DVIPA's records, listed by the prefix of their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CfPrefix {
    /// Everything the CF holds for one DVIPA.
    Dvipa(Ipv4Addr),
    /// The DVIPA's SA pairs.
    Sas(Ipv4Addr),
    /// The DVIPA's connection table.
    Conns(Ipv4Addr),
}

impl fmt::Display for CfPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CfPrefix::Dvipa(d) => write!(f, "dvipa/{d}/"),
            CfPrefix::Sas(d) => write!(f, "dvipa/{d}/sa/"),
            CfPrefix::Conns(d) => write!(f, "dvipa/{d}/conn/"),
        }
    }
}

impl fmt::Display for CfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CfKey::Owner(d) => write!(f, "{}owner", CfPrefix::Dvipa(*d)),
            CfKey::Sa {
                dvipa,
                protocol,
                inbound_spi,
            } => {
                let p = match protocol {
                    Protocol::Esp => "esp",
                    Protocol::Ah => "ah",
                };
                write!(f, "{}{p}/{:#010x}", CfPrefix::Sas(*dvipa), inbound_spi.0)
            }
            CfKey::Conn(c) => write!(
                f,
                "{}{}:{}/{}",
                CfPrefix::Conns(c.dvipa),
                c.client,
                c.client_port,
                c.port
            ),
        }
    }
}

impl From<CfKey> for String {
    fn from(key: CfKey) -> String {
        key.to_string()
    }
}

impl From<CfPrefix> for String {
    fn from(prefix: CfPrefix) -> String {
        prefix.to_string()
    }
}

impl CfKey {
    /// The key whose text `key` is; `None` for text no [`CfKey`] writes.
    pub fn parse(key: &str) -> Option<CfKey> {
        let rest = key.strip_prefix("dvipa/")?;
        let (dvipa, rest) = rest.split_once('/')?;
        let dvipa: Ipv4Addr = dvipa.parse().ok()?;
        match rest.split_once('/') {
            None if rest == "owner" => Some(CfKey::Owner(dvipa)),
            Some(("sa", sa)) => parse_sa(dvipa, sa),
            Some(("conn", conn)) => parse_conn(dvipa, conn).map(CfKey::Conn),
            _ => None,
        }
    }

    /// The connection this key names, if it is a connection's.
    pub fn conn(self) -> Option<ConnKey> {
        match self {
            CfKey::Conn(c) => Some(c),
            _ => None,
        }
    }
}

/// `<esp|ah>/0x%08x`.
fn parse_sa(dvipa: Ipv4Addr, sa: &str) -> Option<CfKey> {
    let (p, spi) = sa.split_once('/')?;
    let protocol = match p {
        "esp" => Protocol::Esp,
        "ah" => Protocol::Ah,
        _ => return None,
    };
    let spi = u32::from_str_radix(spi.strip_prefix("0x")?, 16).ok()?;
    Some(CfKey::Sa {
        dvipa,
        protocol,
        inbound_spi: Spi(spi),
    })
}

/// `<client>:<client port>/<port>`.
fn parse_conn(dvipa: Ipv4Addr, conn: &str) -> Option<ConnKey> {
    let (client, port) = conn.rsplit_once('/')?;
    let (client, client_port) = client.rsplit_once(':')?;
    Some(ConnKey {
        client: client.parse().ok()?,
        client_port: client_port.parse().ok()?,
        dvipa,
        port: port.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

    /// Every key reads back as itself, and as the text it always was.
    #[test]
    fn keys_keep_their_text_and_parse_back() {
        let conn = ConnKey {
            client: Ipv4Addr::new(198, 18, 1, 2),
            client_port: 40001,
            dvipa: DVA1,
            port: 80,
        };
        let sa = CfKey::Sa {
            dvipa: DVA1,
            protocol: Protocol::Ah,
            inbound_spi: Spi(0x1001),
        };
        let cases = [
            (CfKey::Owner(DVA1), "dvipa/198.18.0.100/owner"),
            (sa, "dvipa/198.18.0.100/sa/ah/0x00001001"),
            (
                CfKey::Conn(conn),
                "dvipa/198.18.0.100/conn/198.18.1.2:40001/80",
            ),
        ];
        for (key, text) in cases {
            assert_eq!(key.to_string(), text);
            assert_eq!(CfKey::parse(text), Some(key));
        }
        assert_eq!(CfPrefix::Sas(DVA1).to_string(), "dvipa/198.18.0.100/sa/");
        for other in [
            "dvipa/x/conn/1.2.3.4:5/6",
            "dvipa/198.18.0.100/sa/gre/0x00001001",
            "dvipa/198.18.0.100/owners",
            "k",
        ] {
            assert_eq!(CfKey::parse(other), None, "{other}");
        }
    }
}
