//! What sysplex's unit tests share: the patent's Figure 4 sysplex as
//! configuration and policy built in code (no topology file: sysplex sits
//! below the topology crate).

use std::net::Ipv4Addr;

use super::config::SysplexImages;
use crate::ipsec::filter::{FilterOptions, FilterTable};
use crate::ipsec::policy::{
    AddrSpec, Conditions, DataOffer, DynVpnAction, FilterAction, FilterRule, Initiation, PortSpec,
    ProtocolSpec, Routing, RuleSet, TcpConnect,
};
use crate::ipsec::sa::{EncAlg, IntegAlg, Mode, Protocol};

/// DVA1 of figure4: MVS1 owns it, MVS5 backs it up at rank 100.
pub const DVA1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);
/// DVB1 of figure4: MVS5 owns it.
pub const DVB1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 101);

/// figure4's images MVS1..MVS5 (XCF address 198.19.0.k) and who may hold
/// its two DVIPAs, as `topologies/figure4.toml` defines them.
#[derive(Debug, Clone, Copy)]
pub struct Figure4;

const IMAGES: [&str; 5] = ["MVS1", "MVS2", "MVS3", "MVS4", "MVS5"];

impl SysplexImages for Figure4 {
    fn image_xcf(&self, name: &str) -> Option<(&str, Ipv4Addr)> {
        let k = IMAGES.iter().position(|i| i.eq_ignore_ascii_case(name))?;
        Some((IMAGES[k], Ipv4Addr::new(198, 19, 0, k as u8 + 1)))
    }

    fn dvipa_owner(&self, dvipa: Ipv4Addr) -> Option<&str> {
        match dvipa {
            DVA1 => Some("MVS1"),
            DVB1 => Some("MVS5"),
            _ => None,
        }
    }

    fn dvipa_holders(&self, dvipa: Ipv4Addr) -> Vec<(&str, Option<u8>)> {
        match dvipa {
            DVA1 => vec![("MVS1", None), ("MVS5", Some(100))],
            DVB1 => vec![("MVS5", None)],
            _ => vec![],
        }
    }
}

/// figure4's Policy Agent policy of `image` ("MVS1": DVA1's rules;
/// "MVS5": DVB1's, then DVA1's, which it backs up), ending in the logged
/// deny-all, as `topologies/figure4.toml` writes it; `log_ipsec` adds
/// `IpFilterLogging Yes` to the `ipsec` action. The profile's IPSECRULEs
/// are left out: the policy replaces them.
pub fn figure4_filter_table(image: &str, log_ipsec: bool) -> FilterTable {
    let mut rules = Vec::new();
    if image == "MVS5" {
        rules.extend(dvipa_rules("dvb1", DVB1, log_ipsec));
    }
    rules.extend(dvipa_rules("dva1", DVA1, log_ipsec));
    rules.push(FilterRule {
        name: "deny-all".into(),
        conditions: Conditions {
            routing: Routing::Either,
            ..Conditions::local(AddrSpec::Any, AddrSpec::Any, ProtocolSpec::Any)
        },
        action: FilterAction::Deny,
        log: true,
    });
    let options = FilterOptions::default();
    let mut table = FilterTable::new(RuleSet::default(), options).expect("no default rules");
    table
        .install_policy(RuleSet::new(rules))
        .expect("figure4's policy is valid");
    table
}

/// The rules figure4 writes for one DVIPA (named `prefix-...`): IKE, NAT-T
/// and ICMP permitted, HTTP and iperf3 from the clients' LANs under IPsec,
/// port 60 permitted in clear.
fn dvipa_rules(prefix: &str, dvipa: Ipv4Addr, log_ipsec: bool) -> Vec<FilterRule> {
    let clients = AddrSpec::Range {
        first: Ipv4Addr::new(198, 18, 1, 0),
        last: Ipv4Addr::new(198, 18, 2, 255),
    };
    let udp_from = |port| ProtocolSpec::Udp {
        src: PortSpec::single(port),
        dst: PortSpec::Any,
    };
    let tcp_from = |src| ProtocolSpec::Tcp {
        src,
        dst: PortSpec::Range {
            first: 1024,
            last: 65535,
        },
    };
    let web = tcp_from(PortSpec::single(80));
    let iperf = tcp_from(PortSpec::Range {
        first: 5201,
        last: 5204,
    });
    let app60 = ProtocolSpec::Tcp {
        src: PortSpec::single(60),
        dst: PortSpec::Any,
    };
    let icmp = ProtocolSpec::Icmp {
        icmp_type: None,
        code: None,
    };
    let rule = |name: &str, to, protocol, action: FilterAction, connect| FilterRule {
        name: format!("{prefix}-{name}"),
        log: log_ipsec && action.is_ipsec(),
        conditions: Conditions {
            connect,
            ..Conditions::local(AddrSpec::host(dvipa), to, protocol)
        },
        action,
    };
    let inbound = Some(TcpConnect::Inbound);
    vec![
        rule(
            "ike",
            AddrSpec::Any,
            udp_from(500),
            FilterAction::Permit,
            None,
        ),
        rule(
            "natt",
            AddrSpec::Any,
            udp_from(4500),
            FilterAction::Permit,
            None,
        ),
        rule("icmp", AddrSpec::Any, icmp, FilterAction::Permit, None),
        rule("web", clients, web, esp_tunnel(), inbound),
        rule("iperf", clients, iperf, esp_tunnel(), inbound),
        rule("app60", AddrSpec::Any, app60, FilterAction::Permit, inbound),
    ]
}

/// figure4's `IpDynVpnAction esp-tunnel`: the five ESP tunnel offers,
/// refreshed after 60 minutes.
fn esp_tunnel() -> FilterAction {
    let offer = |encryption, integrity| DataOffer {
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        encryption: Some(encryption),
        integrity,
        lifetime_secs: 3600,
        lifesize_bytes: None,
    };
    FilterAction::Ipsec(DynVpnAction {
        name: "esp-tunnel".into(),
        offers: vec![
            offer(EncAlg::AesGcm16_128, IntegAlg::None),
            offer(EncAlg::AesGcm16_256, IntegAlg::None),
            offer(EncAlg::AesCbc128, IntegAlg::HmacSha256_128),
            offer(EncAlg::AesCbc256, IntegAlg::HmacSha256_128),
            offer(EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
        ],
        initiation: Initiation::Either,
        pfs_group: None,
    })
}
