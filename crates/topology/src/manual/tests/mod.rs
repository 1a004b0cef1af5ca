//! The `[[manual_sa]]` tests, by subject.

use super::super::test_support::{check_marked as check, load_t as load};
use super::*;
use crate::Topology;
use crate::{ManualProtocol, ManualSa};
use plexnet_core::ipsec::{IntegAlg, Mode, Protocol, Sa, Spi, TrafficSelector, UdpEncap};
use std::net::{IpAddr, Ipv4Addr};

/// MVS1 owns DVA1 (and DVB1 as an address only), client1 runs plexnet;
/// one manual SA with defaults.
const BASE: &str = r#"name = "t"
[hosts]
DVA1 = "198.18.0.100"
[[image]]
name = "MVS1"
vipadynamic = """
VIPADYNAMIC
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.100
  VIPADEFINE MOVEABLE IMMEDIATE 255.255.255.0 198.18.0.101
ENDVIPADYNAMIC
"""
[[client]]
name = "client1"
ipsec = "plexnet"
[[client]]
name = "client2"
[[manual_sa]]
client = "client1"
dvipa = "DVA1"
secret = "s3cret"
"#;

/// BASE with `extra` lines added to the manual SA.
fn with(extra: &str) -> String {
    format!("{BASE}{extra}\n")
}

/// BASE with IPCONFIG IPSECURITY on MVS1 and `policy` as its
/// `ipsec_policy`.
fn secured(policy: &str) -> String {
    let image = "ENDVIPADYNAMIC\n\"\"\"\n";
    assert!(BASE.contains(image));
    let security = format!(
        "profile = \"\"\"\nIPCONFIG IPSECURITY\nIPSEC DVIPSEC\nENDIPSEC\n\"\"\"\nipsec_policy = \"\"\"\n{policy}\"\"\"\n"
    );
    BASE.replacen(image, &format!("{image}{security}"), 1)
}

/// An ipsec_policy with one IpFilterRule for DVA1 <-> `remote` whose
/// action is `action` (`ipsec` with an IpManVpnAction, or `permit`).
fn policy(remote: &str, action: &str) -> String {
    let man = if action == "ipsec" {
        "  IpManVpnActionRef man\n"
    } else {
        ""
    };
    format!(
        "IpFilterRule r\n{{\n  IpSourceAddr 198.18.0.100\n  IpDestAddr 198.18.1.0/24\n  IpService\n  {{\n    Protocol All\n  }}\n  IpGenericFilterActionRef a\n{man}}}\n\
IpGenericFilterAction a\n{{\n  IpFilterAction {action}\n}}\n\
IpManVpnAction man\n{{\n  LocalSecurityEndpointAddr 198.18.0.100\n  RemoteSecurityEndpointAddr {remote}\n}}\n"
    )
}

/// The topology's one manual SA.
fn only(t: &Topology) -> &ManualSa {
    assert_eq!(t.manual_sas.len(), 1);
    &t.manual_sas[0]
}

mod errors;
mod loads;
