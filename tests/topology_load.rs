//! Loads the shipped topologies and every bad fixture under
//! `tests/data/topology/`, checking the resolved model and the located errors.

use plexnet::ipsec::{
    AddrSpec, DataOffer, Direction, EncAlg, FilterAction, IntegAlg, ManVpnAction, Mode, PortSpec,
    Protocol, ProtocolSpec, Routing, TcpConnect,
};
use plexnet::topology::{self, DestRole, DistMethod, Moveable, Topology};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn load(rel: &str) -> Topology {
    match topology::load(&repo(rel)) {
        Ok(t) => t,
        Err(e) => {
            let all: Vec<String> = e.errors().iter().map(|d| d.to_string()).collect();
            panic!("{rel} does not load:\n{}", all.join("\n"))
        }
    }
}

fn dest_names(d: &topology::VipaDistribute) -> Vec<&str> {
    d.dests.iter().map(|d| d.image.as_str()).collect()
}

#[test]
fn figure4_nodes_and_addresses() {
    let t = load("topologies/figure4.toml");
    assert_eq!(t.name, "figure4");
    let names: Vec<&str> = t.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["MVS1", "MVS2", "MVS3", "MVS4", "MVS5"]);
    for (k, image) in t.images.iter().enumerate() {
        let k = k as u8 + 1;
        assert_eq!(
            image.ext_addr,
            Ipv4Addr::new(198, 18, 0, 10 + k),
            "{}",
            image.name
        );
        assert_eq!(
            image.xcf_addr,
            Ipv4Addr::new(198, 19, 0, k),
            "{}",
            image.name
        );
    }
    let ike: Vec<&str> = t
        .images
        .iter()
        .filter(|i| i.ike)
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(ike, ["MVS1", "MVS5"]);
    assert_eq!(t.external_lan.subnet.to_string(), "198.18.0.0/24");
    assert_eq!(t.external_lan.gateway, ip("198.18.0.1"));
    assert_eq!(t.router.name, "net");
    assert_eq!(t.cf.name, "CF");
    assert_eq!(t.cf.addr, ip("198.19.255.254"));
    assert_eq!(t.clients.len(), 2);
    let c = &t.clients[0];
    assert_eq!((c.name.as_str(), c.addr), ("client1", ip("198.18.1.2")));
    assert_eq!(c.ipsec, topology::ClientIpsec::Strongswan);
    assert_eq!(c.ike, [ip("198.18.0.100")]);
    let lan = t.client_lan(&c.lan).expect("client1's LAN");
    assert_eq!(lan.subnet.to_string(), "198.18.1.0/24");
    assert_eq!(lan.gateway, ip("198.18.1.1"));
    let c2 = &t.clients[1];
    assert_eq!((c2.name.as_str(), c2.addr), ("client2", ip("198.18.2.2")));
    assert_eq!(c2.ipsec, topology::ClientIpsec::Plexnet);
    assert_eq!(c2.ike, [ip("198.18.0.100")]);
    assert_eq!(t.lans().count(), 3);
    // IKE from MVS1's (and MVS5's) Policy Agent policy: the SharedKey, the
    // KeyExchangeOffers and the IpDataOffers, in strongSwan's syntax.
    let ike = t.ike.as_ref().expect("IKE settings from the policy");
    assert_eq!(ike.psk, "plexnet-figure4");
    assert_eq!(
        ike.proposals,
        "aes128-sha256-prfsha256-ecp256,aes256-sha256-prfsha256-modp2048,aes256-sha384-prfsha384-ecp384,aes128-sha1-prfsha1-modp2048"
    );
    assert_eq!(
        ike.esp_proposals,
        "aes128gcm16,aes256gcm16,aes128-sha256,aes256-sha256,aes128-sha1"
    );
    assert_eq!(
        (ike.rekey_time, ike.ike_rekey_time),
        (Some(3600), Some(14400))
    );
    assert!(t.manual_sas.is_empty());
}

#[test]
fn figure4_dvipas_owners_and_backup() {
    let t = load("topologies/figure4.toml");
    let (dva1, dvb1) = (ip("198.18.0.100"), ip("198.18.0.101"));
    assert_eq!(t.dvipas(), [dva1, dvb1]);
    assert_eq!(t.owner_of(dva1).map(|i| i.name.as_str()), Some("MVS1"));
    assert_eq!(t.owner_of(dvb1).map(|i| i.name.as_str()), Some("MVS5"));

    let mvs1 = t.image("mvs1").expect("MVS1");
    assert_eq!(mvs1.vipa.defines.len(), 1);
    assert_eq!(mvs1.vipa.defines[0].moveable, Moveable::Immediate);
    assert_eq!(mvs1.vipa.defines[0].mask, ip("255.255.255.0"));
    // The patent's distribution, and one for iperf3 ports with affinity.
    assert_eq!(mvs1.vipa.distributes.len(), 2);
    let iperf = &mvs1.vipa.distributes[1];
    assert_eq!(
        (iperf.ports.clone(), iperf.timed_affinity),
        (vec![5201, 5202, 5203, 5204], Some(30))
    );
    let d = &mvs1.vipa.distributes[0];
    assert_eq!(d.timed_affinity, None);
    assert_eq!(
        (d.addr, d.method, d.all),
        (dva1, DistMethod::RoundRobin, false)
    );
    assert_eq!(d.ports, [60, 80]);
    assert_eq!(dest_names(d), ["MVS1", "MVS2", "MVS4"]);
    let xcf: Vec<Ipv4Addr> = d.dests.iter().map(|d| d.xcf_addr).collect();
    assert_eq!(xcf, [ip("198.19.0.1"), ip("198.19.0.2"), ip("198.19.0.4")]);
    assert!(d.dests.iter().all(|d| d.role == DestRole::Plain));

    let mvs5 = t.image("MVS5").expect("MVS5");
    assert_eq!(mvs5.vipa.backups.len(), 1);
    let b = &mvs5.vipa.backups[0];
    assert_eq!(
        (b.addr, b.rank, b.moveable),
        (dva1, 100, Moveable::Immediate)
    );
    assert_eq!(mvs5.vipa.distributes.len(), 2);
    let dvb = &mvs5.vipa.distributes[0];
    assert_eq!((dvb.addr, dvb.all), (dvb1, true));
    assert_eq!(dest_names(dvb), ["MVS1", "MVS2", "MVS3", "MVS4", "MVS5"]);
    let after_takeover = &mvs5.vipa.distributes[1];
    assert_eq!(after_takeover.addr, dva1);
    assert_eq!(after_takeover.ports, [60, 80]);
    assert_eq!(dest_names(after_takeover), ["MVS2", "MVS3", "MVS4"]);

    for name in ["MVS2", "MVS3", "MVS4"] {
        let i = t.image(name).expect("target image");
        assert!(
            i.vipa.defines.is_empty() && i.vipa.backups.is_empty() && i.vipa.distributes.is_empty()
        );
    }
}

#[test]
fn figure4_hosts_table() {
    let t = load("topologies/figure4.toml");
    let hosts: Vec<(&str, Ipv4Addr)> = t.hosts.iter().map(|h| (h.name.as_str(), h.addr)).collect();
    assert_eq!(
        hosts,
        [
            ("net", ip("198.18.0.1")),
            ("CF", ip("198.19.255.254")),
            ("MVS1", ip("198.18.0.11")),
            ("MVS2", ip("198.18.0.12")),
            ("MVS3", ip("198.18.0.13")),
            ("MVS4", ip("198.18.0.14")),
            ("MVS5", ip("198.18.0.15")),
            ("client1", ip("198.18.1.2")),
            ("client2", ip("198.18.2.2")),
            ("DVA1", ip("198.18.0.100")),
            ("DVB1", ip("198.18.0.101")),
        ]
    );
}

#[test]
fn minimal_topology() {
    let t = load("topologies/minimal.toml");
    assert_eq!(t.name, "minimal");
    let names: Vec<&str> = t.images.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["SYS1", "SYS2", "SYS3"]);
    let dva1 = ip("198.18.0.100");
    assert_eq!(t.dvipas(), [dva1]);
    let owner = t.owner_of(dva1).expect("an owner");
    assert_eq!(owner.name, "SYS1");
    assert!(owner.ike);
    let d = &owner.vipa.distributes[0];
    assert_eq!(d.ports, [80]);
    assert_eq!(dest_names(d), ["SYS2", "SYS3"]);
    assert_eq!(t.clients.len(), 1);
    assert_eq!(t.clients[0].addr, ip("198.18.1.2"));
    assert_eq!(t.cf.addr, ip("198.19.255.254"));
}

#[test]
fn generated_topologies_load() {
    for n in [2, 5, 32, 64, 128] {
        let text = topology::generate(n).expect("in range");
        let path = PathBuf::from(format!("gen{n}.toml"));
        let t = match topology::load_str(&text, &path) {
            Ok(t) => t,
            Err(e) => panic!("generate({n}) does not load: {e}\n{text}"),
        };
        assert_eq!(t.images.len(), n);
        assert_eq!(t.images[0].name, "SYS1");
        assert_eq!(t.images[n - 1].name, format!("SYS{n}"));
        let dvipa = t.dvipas();
        assert_eq!(dvipa.len(), 1);
        let owner = t.owner_of(dvipa[0]).expect("an owner");
        assert_eq!(owner.name, "SYS1");
        let d = &owner.vipa.distributes[0];
        assert!(d.all);
        assert_eq!(d.method, DistMethod::RoundRobin);
        assert_eq!(d.ports, [80]);
        assert_eq!(d.dests.len(), n);
        // figure4's roles: SYS2 backs DVA1 up, both run IKE with
        // IPSECURITY, strongSwan in client1, the plexnet client in client2.
        assert!(t.images[1].vipa.backups.iter().any(|b| b.addr == dvipa[0]));
        assert!(t.images[..2]
            .iter()
            .all(|i| i.ike && i.ip_security.is_some()));
        assert_eq!(t.xcf_forwarding, topology::XcfForwarding::GreInUdp);
        let ipsec: Vec<_> = t
            .clients
            .iter()
            .map(|c| (c.name.as_str(), c.ipsec))
            .collect();
        assert_eq!(
            ipsec,
            [
                ("client1", topology::ClientIpsec::Strongswan),
                ("client2", topology::ClientIpsec::Plexnet)
            ]
        );
        assert!(t.hosts.iter().any(|h| h.name == "DVA1"));
    }
    for n in [0, 1, 129, 300] {
        let e = topology::generate(n).expect_err("out of range").to_string();
        assert!(e.contains("2 to 128"), "generate({n}): {e}");
    }
}

/// tests/data/ipsec/figure4.toml: Figure 4 with z/OS IP security on DVA1's
/// owner (MVS1) and backup (MVS5).
#[test]
fn figure4_ip_security() {
    let t = load("tests/data/ipsec/figure4.toml");
    let (dva1, dvb1) = (ip("198.18.0.100"), ip("198.18.0.101"));
    for name in ["MVS2", "MVS3", "MVS4"] {
        assert!(t.image(name).expect("target").ip_security.is_none());
    }
    let sec = t
        .image("MVS1")
        .and_then(|i| i.ip_security.as_ref())
        .expect("MVS1's IP security");
    assert!(sec.ipsecurity && sec.dvipsec && sec.log_enable);
    assert!(!sec.dvlocalfltr && !sec.log_implicit);
    let names: Vec<&str> = sec.default_rules.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        ["SYSDEFAULTRULE.1", "SYSDEFAULTRULE.2", "SYSDEFAULTRULE.3"]
    );
    let ike = &sec.default_rules[0];
    assert_eq!(ike.action, FilterAction::Permit);
    assert_eq!(ike.conditions.source, AddrSpec::host(dva1));
    assert_eq!(
        ike.conditions.protocol,
        ProtocolSpec::Udp {
            src: PortSpec::single(500),
            dst: PortSpec::Any
        }
    );
    assert!(sec.default_rules[2].log);

    let policy = sec.policy.as_ref().expect("MVS1's policy");
    let names: Vec<&str> = policy
        .filter_rules
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "ike-clients",
            "natt-clients",
            "web-client1",
            "web-client2",
            "iperf-clients",
            "port60-clear",
            "deny-all"
        ]
    );
    let rule = |name: &str| {
        policy
            .filter_rules
            .iter()
            .find(|r| r.name == name)
            .expect("a rule")
    };
    let clients = AddrSpec::Range {
        first: ip("198.18.1.0"),
        last: ip("198.18.2.255"),
    };
    let natt = rule("natt-clients");
    assert_eq!(
        (natt.conditions.destination, natt.action.clone()),
        (clients, FilterAction::Permit)
    );
    assert_eq!(
        natt.conditions.protocol,
        ProtocolSpec::Udp {
            src: PortSpec::single(4500),
            dst: PortSpec::Any
        }
    );

    // Ports 80 and 5201-5204 need IPsec: an ESP tunnel, AES-CBC/SHA1 or
    // AES-GCM, from both client LANs.
    let web1 = rule("web-client1");
    assert_eq!(
        web1.conditions.destination,
        AddrSpec::Prefix {
            addr: ip("198.18.1.0"),
            len: 24
        }
    );
    assert_eq!(
        rule("web-client2").conditions.destination,
        AddrSpec::Prefix {
            addr: ip("198.18.2.0"),
            len: 24
        }
    );
    assert_eq!(
        web1.conditions.protocol,
        ProtocolSpec::Tcp {
            src: PortSpec::single(80),
            dst: PortSpec::Range {
                first: 1024,
                last: 65535
            }
        }
    );
    assert_eq!(
        (
            web1.conditions.direction,
            web1.conditions.connect,
            web1.conditions.routing
        ),
        (
            Direction::Bidirectional,
            Some(TcpConnect::Inbound),
            Routing::Local
        )
    );
    let esp = |enc, integrity| DataOffer {
        protocol: Protocol::Esp,
        mode: Mode::Tunnel,
        encryption: Some(enc),
        integrity,
        lifetime_secs: 3600,
        lifesize_bytes: None,
    };
    for name in ["web-client1", "web-client2", "iperf-clients"] {
        let FilterAction::Ipsec(vpn) = &rule(name).action else {
            panic!("{name} does not require IPsec")
        };
        assert_eq!(vpn.name, "dva1-esp");
        assert_eq!(vpn.pfs_group, None);
        assert_eq!(
            vpn.offers,
            [
                esp(EncAlg::AesCbc128, IntegAlg::HmacSha1_96),
                esp(EncAlg::AesGcm16_128, IntegAlg::None)
            ]
        );
    }
    let iperf = rule("iperf-clients");
    assert_eq!(iperf.conditions.destination, clients);
    assert_eq!(
        iperf.conditions.protocol,
        ProtocolSpec::Tcp {
            src: PortSpec::Range {
                first: 5201,
                last: 5204
            },
            dst: PortSpec::Range {
                first: 1024,
                last: 65535
            }
        }
    );
    let clear = rule("port60-clear");
    assert_eq!(clear.action, FilterAction::Permit);
    assert_eq!(clear.conditions.destination, AddrSpec::Any);
    let deny = rule("deny-all");
    assert_eq!(
        (
            deny.action.clone(),
            deny.log,
            deny.conditions.source,
            deny.conditions.protocol
        ),
        (FilterAction::Deny, true, AddrSpec::Any, ProtocolSpec::Any)
    );
    let set = plexnet::ipsec::RuleSet::new(policy.filter_rules.clone());
    set.validate().expect("the filter engine accepts the rules");

    assert_eq!(policy.key_exchange_rules.len(), 1);
    let k = &policy.key_exchange_rules[0];
    assert_eq!(k.name, "clients-dva1");
    assert_eq!(
        (k.local.identity, k.local.location),
        (AddrSpec::host(dva1), AddrSpec::host(dva1))
    );
    assert_eq!((k.remote.identity, k.remote.location), (clients, clients));
    // The IKE settings come from this rule.
    assert_eq!(
        k.shared_key,
        t.ike.as_ref().expect("IKE settings").psk.as_bytes()
    );
    assert!(k.action.initiate);
    let proposals: Vec<&str> = k
        .action
        .offers
        .iter()
        .map(|o| o.proposal.as_str())
        .collect();
    assert_eq!(
        proposals,
        [
            "aes128-sha1-prfsha1-modp2048",
            "aes256-sha256-prfsha256-ecp256"
        ]
    );
    for o in &k.action.offers {
        o.proposal_config()
            .expect("an IKE proposal plexnet implements");
        assert_eq!(o.lifetime_secs, 4 * 3600);
    }

    // The backup: the same DVA1 policy, and DVB1 in clear.
    let mvs5 = t
        .image("MVS5")
        .and_then(|i| i.ip_security.as_ref())
        .expect("MVS5's IP security");
    assert!(mvs5.dvipsec);
    let p5 = mvs5.policy.as_ref().expect("MVS5's policy");
    let dvb: Vec<&str> = p5
        .filter_rules
        .iter()
        .filter(|r| r.conditions.source == AddrSpec::host(dvb1))
        .map(|r| r.name.as_str())
        .collect();
    assert_eq!(dvb, ["dvb1-port60", "dvb1-port80"]);
    assert_eq!(p5.filter_rules.len(), 9);

    // The whole model survives the JSON the daemons receive it in.
    let json = serde_json::to_string(&t).expect("serializes");
    let back: Topology = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back.images[0].ip_security, t.images[0].ip_security);
}

/// The Figure 4 example's rules in the filter engine: IKE and port 60 pass
/// in clear, HTTP and iperf3 in clear are refused as clear text, anything
/// else meets the deny rule.
#[test]
fn figure4_ip_security_in_the_filter_table() {
    use plexnet::ipsec::filter::{
        DenyReason, FilterOptions, FilterPacket, FilterTable, PacketDirection, Verdict,
    };
    use plexnet::ipsec::RuleSet;
    let t = load("tests/data/ipsec/figure4.toml");
    let sec = t
        .image("MVS1")
        .and_then(|i| i.ip_security.clone())
        .expect("MVS1's IP security");
    let options = FilterOptions {
        logging: sec.log_enable,
        log_implicit: sec.log_implicit,
        ..FilterOptions::default()
    };
    let mut table =
        FilterTable::new(RuleSet::new(sec.default_rules.clone()), options).expect("default rules");
    let (dva1, client1) = (ip("198.18.0.100"), ip("198.18.1.2"));
    let inbound = PacketDirection::Inbound;
    let ike = FilterPacket::udp(inbound, (client1, 500), (dva1, 500));
    let web = FilterPacket::tcp(inbound, (client1, 40000), (dva1, 80));
    // Before the policy: the profile's default rules let IKE in, not HTTP.
    assert!(table.evaluate(&ike).passes());
    assert!(!table.evaluate(&web).passes());

    let policy = sec.policy.expect("MVS1's policy");
    table
        .install_policy(RuleSet::new(policy.filter_rules))
        .expect("the policy installs");
    assert!(table.evaluate(&ike).passes());
    let natt = FilterPacket::udp(inbound, (client1, 4500), (dva1, 4500));
    assert!(table.evaluate(&natt).passes());
    let port60 = FilterPacket::tcp(inbound, (ip("198.18.2.2"), 40000), (dva1, 60));
    assert!(table.evaluate(&port60).passes());
    for port in [80, 5201, 5204] {
        let clear = FilterPacket::tcp(inbound, (client1, 40000), (dva1, port));
        assert!(
            matches!(
                table.evaluate(&clear),
                Verdict::Deny {
                    reason: DenyReason::ClearText,
                    ..
                }
            ),
            "port {port} in clear"
        );
    }
    let ssh = FilterPacket::tcp(inbound, (client1, 40000), (dva1, 22));
    assert!(matches!(
        table.evaluate(&ssh),
        Verdict::Deny {
            reason: DenyReason::DenyRule,
            ..
        }
    ));
    let reply = FilterPacket::tcp(PacketDirection::Outbound, (dva1, 80), (client1, 40000));
    assert!(matches!(table.evaluate(&reply), Verdict::NeedsSa { .. }));
}

/// Every fixture under `tests/data/topology/` carries its expected first
/// error in a `# expect: LINE:COL: message` line; loading must fail with
/// exactly `PATH:LINE:COL: message`.
#[test]
fn bad_fixtures_fail_with_located_messages() {
    let dir = repo("tests/data/topology");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/data/topology exists")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    entries.sort();
    assert!(entries.len() >= 20, "fixtures missing: {entries:?}");
    let mut failures = Vec::new();
    for path in &entries {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
        let want = format!("{}:{expect}", path.display());
        match topology::load(path) {
            Ok(_) => failures.push(format!("{} loaded; expected\n  {want}", path.display())),
            Err(e) => {
                let got = e.to_string();
                if got != want {
                    failures.push(format!("got  {got}\nwant {want}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

#[test]
fn unreadable_file_is_reported_with_its_path() {
    let path = repo("tests/data/topology/does-not-exist.toml");
    let e = topology::load(&path).expect_err("no such file");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "{}: cannot read the topology file: ",
            path.display()
        )),
        "{msg}"
    );
    assert!(e.errors().is_empty());
}

/// IPSEC without DVIPSEC on a DVIPA's owner: its IPsec is not distributed
/// (z/OS IPSEC statement), the routing stack decrypts itself, and
/// `plexnet check` says so.
#[test]
fn without_dvipsec_the_owner_does_not_distribute_ipsec() {
    let text = std::fs::read_to_string("topologies/figure4.toml")
        .expect("figure4")
        .replacen("IPSEC DVIPSEC LOGENABLE", "IPSEC LOGENABLE", 1);
    let t = topology::load_str(&text, std::path::Path::new("f.toml")).expect("loads");
    let mvs1 = t.image("MVS1").expect("MVS1");
    assert!(!mvs1.dvipsec_allows_distribution());
    assert!(!mvs1.routing_config().distribute_crypto);
    assert!(t.image("MVS5").expect("MVS5").dvipsec_allows_distribution());
    let notes = topology::notes(&t);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(
            "MVS1 owns DVA1 (198.18.0.100) with IPCONFIG IPSECURITY but no IPSEC DVIPSEC"
        ),
        "{notes:?}"
    );
    let full = load("topologies/figure4.toml");
    assert!(topology::notes(&full).is_empty());
}

/// The manual topologies in z/OS syntax: every image that routes the
/// manual SA's DVIPA (owner, and backup where there is one) filters with
/// IPCONFIG IPSECURITY and DVIPSEC, and its first rule sends client1's
/// traffic with DVA1 into the manual tunnel the [[manual_sa]] keys; the
/// rest is ICMP in clear (and port 60, and DVB1, in figure4-manual) or
/// denied and logged.
#[test]
fn manual_topologies_use_ip_man_vpn_action() {
    for (file, routers) in [
        ("topologies/minimal.toml", &["SYS1"][..]),
        ("topologies/figure4-manual.toml", &["MVS1", "MVS5"][..]),
        ("topologies/bundle-manual.toml", &["MVS1", "MVS2"][..]),
    ] {
        let t = load(file);
        let sa = &t.manual_sas[0];
        for name in routers {
            let image = t.images.iter().find(|i| i.name == *name).expect(name);
            let sec = image.ip_security.as_ref().expect("a profile");
            assert!(sec.ipsecurity && sec.dvipsec, "{file} {name}");
            let rules = &sec.policy.as_ref().expect("a policy").filter_rules;
            let tunnel = rules
                .iter()
                .find(|r| r.action.is_ipsec())
                .expect("an IPsec rule");
            assert_eq!(
                tunnel.action,
                FilterAction::Manual(ManVpnAction {
                    name: "client1-tunnel".into(),
                    active: true,
                    local: sa.dvipa,
                    remote: sa.client_addr,
                }),
                "{file} {name}"
            );
            let last = rules.last().expect("rules");
            assert_eq!((last.action.clone(), last.log), (FilterAction::Deny, true));
        }
    }
}

/// `[limits]` reaches every image's routing stack (the DCT bound and its
/// half-open timeouts), the NEWCONN hold queue, the CF and XCF; without
/// the table, the defaults hold.
#[test]
fn limits_reach_the_routing_stack_and_default_when_absent() {
    let t = load("topologies/figure4.toml");
    assert_eq!(t.limits, plexnet::sysplex::limits::SysplexLimits::default());
    let dir = std::env::temp_dir().join(format!("plxbound-limits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("limits.toml");
    let text = "name = \"limits\"\n[limits]\ndct_max_entries = 4096\nhalf_open_timeout_ms = 3000\nhalf_open_pressure_ms = 200\nnewconn_hold_max = 8\ncf_max_entries_per_image = 100\n\n[[image]]\nname = \"MVS1\"\n";
    std::fs::write(&path, text).expect("write");
    let t = topology::load(&path).expect("loads");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        (t.limits.newconn_hold_max, t.limits.cf_max_entries_per_image),
        (8, 100)
    );
    let rc = t.images[0].routing_config();
    assert_eq!(
        (rc.limits.max_entries, rc.limits.syn_pressure_ms),
        (4096, 200)
    );
    assert_eq!(rc.timeouts.syn_ms, 3000);
}
