//! What `plexnet netstat` and `plexnet ipsec` show, as data: the daemons
//! answer these structures over the control socket, `--json` prints them,
//! and the tables are rendered from them, so both always agree. Named after
//! z/OS NETSTAT reports (VIPADCFG, VDPT, VCRT, CONN) and `ipsec -y display`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::ipsec::filter::FilterRow;
use crate::ipsec::sa::{Sa, SaConfig};
use crate::ipsec::wireshark::esp_sa_uat;
use crate::sysplex::dct::ConnState;
use crate::sysplex::routing::{connection_key, ReportCounters, RoutingStack};
use crate::sysplex::target::TargetStack;
use crate::topology::{DestRole, IpSecurity, Moveable, Topology};

/// Which NETSTAT report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Report {
    /// The VIPADYNAMIC configuration of the image.
    Vipadcfg,
    /// Distribution port table: targets per DVIPA port, ready or not.
    Vdpt,
    /// Connection routing table: each distributed connection and its target.
    Vcrt,
    /// The image's own TCP connections.
    Conn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaDefineRow {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub moveable: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaBackupRow {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
    pub rank: u8,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaDistributeRow {
    pub dvipa: Ipv4Addr,
    pub port: u16,
    pub dest_xcf: Ipv4Addr,
    pub dest_image: String,
    pub method: String,
    pub role: String,
    /// From this image's VIPABACKUP: applies after a takeover.
    pub backup: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vipadcfg {
    pub image: String,
    pub defines: Vec<VipaDefineRow>,
    pub backups: Vec<VipaBackupRow>,
    pub distributes: Vec<VipaDistributeRow>,
    /// Who holds each DVIPA this image defines or backs up, now.
    #[serde(default)]
    pub status: Vec<VipaStatusRow>,
}

/// The current holder of a DVIPA an image defines or backs up (z/OS's
/// NETSTAT VIPADYN: ACTIVE, BACKUP, MOVING), and the takeovers this image
/// made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VipaStatusRow {
    pub dvipa: Ipv4Addr,
    /// The stack that holds it, as this image knows.
    pub holder: Option<String>,
    /// `Active` here, `Backup` while another stack holds it.
    pub state: String,
    /// Takeovers of this DVIPA by this image.
    pub takeovers: u32,
    /// Who held it before this image's last takeover.
    pub took_from: Option<String>,
    /// How its owner's VIPADEFINE lets it move back: `Immediate` or
    /// `WhenIdle` (MOVEABLE IMMEDIATE / WHENIDLE).
    #[serde(default)]
    pub moveable: String,
    /// Givebacks of this DVIPA by this image (as its holder).
    #[serde(default)]
    pub givebacks: u32,
    /// A giveback under way here (`to MVS1: offered`, `from MVS5: taking
    /// back`, `to MVS1 when idle (3 connections)`).
    #[serde(default)]
    pub giveback: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VdptRow {
    pub dvipa: Ipv4Addr,
    pub port: u16,
    pub dest_xcf: Ipv4Addr,
    pub dest_image: String,
    /// A server listens there (registered): the target can be chosen.
    pub ready: bool,
    pub total_conn: u64,
    pub active_conn: u32,
    pub method: String,
    /// The DVIPA is MOVING here (given back to its owner): no new
    /// connection goes to this row's target through this stack.
    #[serde(default)]
    pub moving: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VcrtRow {
    pub dvipa: Ipv4Addr,
    pub port: u16,
    pub client: Ipv4Addr,
    pub client_port: u16,
    pub dest_xcf: Ipv4Addr,
    pub dest_image: String,
    pub state: String,
    pub packets: u64,
    pub bytes: u64,
    pub ipsec: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnRow {
    pub local: String,
    pub remote: String,
    pub state: String,
}

/// One NETSTAT answer; the rows of the report asked for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Netstat {
    pub image: String,
    pub report: Report,
    /// Whether this image distributes any DVIPA (VDPT and VCRT live there).
    pub routing: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vipadcfg: Option<Vipadcfg>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vdpt: Vec<VdptRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vcrt: Vec<VcrtRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conn: Vec<ConnRow>,
    /// VDPT and VCRT: the table's bound and what it did under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dct: Option<DctSummary>,
}

/// The DCT (VCRT) against its `[limits]`: how full it is, the half-open
/// timeout now (it shrinks as the table fills), and what the bound did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DctSummary {
    pub entries: usize,
    pub half_open: usize,
    pub max_entries: u32,
    pub half_open_timeout_ms: u64,
    /// SYNs refused: full, and no half-open entry to evict.
    pub full: u64,
    pub half_open_evicted: u64,
    pub half_open_expired: u64,
    pub peak: u64,
    /// The connections targets reported after a takeover or a giveback.
    #[serde(default)]
    pub reports: ReportCounters,
}

pub fn dct_summary(r: &RoutingStack) -> DctSummary {
    let dct = r.dct();
    let c = dct.counters();
    DctSummary {
        entries: dct.len(),
        half_open: dct.half_open(),
        max_entries: dct.limits().max_entries,
        half_open_timeout_ms: dct.syn_limit(&r.config().timeouts).as_millis() as u64,
        full: c.full,
        half_open_evicted: c.half_open_evicted,
        half_open_expired: c.half_open_expired,
        peak: c.peak,
        reports: r.counters().reports,
    }
}

fn render_dct(s: &mut String, d: &DctSummary) {
    let _ = writeln!(
        s,
        "VCRT: {} of {} entries ({} half-open, timeout now {} ms), peak {}; half-open evicted {}, expired {}; SYNs refused (table full) {}",
        d.entries,
        d.max_entries,
        d.half_open,
        d.half_open_timeout_ms,
        d.peak,
        d.half_open_evicted,
        d.half_open_expired,
        d.full
    );
    let r = &d.reports;
    if r.received > 0 {
        let _ = writeln!(
            s,
            "VCRT from target reports: {} connections reported; {} recovered (not in the CF), {} known, {} moved, {} refused",
            r.received, r.recovered, r.known, r.moved, r.refused
        );
    }
}

fn moveable(m: Moveable) -> String {
    match m {
        Moveable::Immediate => "Immediate".into(),
        Moveable::WhenIdle => "WhenIdle".into(),
    }
}

fn role(r: DestRole) -> String {
    match r {
        DestRole::Plain => String::new(),
        DestRole::Weight(w) => format!("weight {w}"),
        DestRole::Preferred => "preferred".into(),
        DestRole::Backup(rank) => format!("backup {rank}"),
    }
}

pub fn vipadcfg(topo: &Topology, image: &str) -> Vipadcfg {
    let img = topo.image(image);
    let vipa = img.map(|i| i.vipa.clone()).unwrap_or_default();
    let backed_up: Vec<Ipv4Addr> = vipa.backups.iter().map(|b| b.addr).collect();
    Vipadcfg {
        image: image.to_string(),
        defines: vipa
            .defines
            .iter()
            .map(|d| VipaDefineRow {
                addr: d.addr,
                mask: d.mask,
                moveable: moveable(d.moveable),
            })
            .collect(),
        backups: vipa
            .backups
            .iter()
            .map(|b| VipaBackupRow {
                addr: b.addr,
                mask: b.mask,
                rank: b.rank,
            })
            .collect(),
        distributes: vipa
            .distributes
            .iter()
            .flat_map(|d| {
                let backup = backed_up.contains(&d.addr);
                d.ports.iter().flat_map(move |p| {
                    d.dests.iter().map(move |t| VipaDistributeRow {
                        dvipa: d.addr,
                        port: *p,
                        dest_xcf: t.xcf_addr,
                        dest_image: t.image.clone(),
                        method: format!("{:?}", d.method),
                        role: role(t.role),
                        backup,
                    })
                })
            })
            .collect(),
        status: Vec::new(),
    }
}

pub fn vdpt(r: &RoutingStack) -> Vec<VdptRow> {
    let mut rows = Vec::new();
    for d in r.distributions() {
        let active = r.dct().active_by_target(d.config.addr);
        for port in &d.config.ports {
            for t in &d.config.dests {
                rows.push(VdptRow {
                    dvipa: d.config.addr,
                    port: *port,
                    dest_xcf: t.xcf_addr,
                    dest_image: t.image.clone(),
                    ready: r.listeners().has(&t.image, d.config.addr, *port),
                    total_conn: r
                        .counters()
                        .connections
                        .get(&connection_key(d.config.addr, *port, &t.image))
                        .copied()
                        .unwrap_or(0),
                    active_conn: active.get(&t.image).copied().unwrap_or(0),
                    method: format!("{:?}", d.config.method),
                    moving: r.is_moving(d.config.addr),
                });
            }
        }
    }
    rows
}

pub fn vcrt(r: &RoutingStack) -> Vec<VcrtRow> {
    r.dct()
        .sorted()
        .into_iter()
        .map(|(k, e)| VcrtRow {
            dvipa: k.dvipa,
            port: k.port,
            client: k.client,
            client_port: k.client_port,
            dest_xcf: e.target_xcf,
            dest_image: e.target.to_string(),
            state: match e.state {
                ConnState::SynSeen => "syn".into(),
                ConnState::Established => "established".into(),
                ConnState::Closing => "closing".into(),
            },
            packets: e.packets,
            bytes: e.bytes,
            ipsec: e.ipsec,
        })
        .collect()
}

/// One IPv4 TCP socket of the namespace, as /proc/net/tcp lists it.
#[derive(Debug, Clone, Copy)]
pub struct TcpSocket {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
    /// The kernel's TCP state number (`include/net/tcp_states.h`).
    pub state: usize,
}

/// The namespace's IPv4 TCP sockets (the reading thread's namespace).
pub fn proc_tcp() -> Vec<TcpSocket> {
    // "0100007F:0050": the address as the kernel's u32 in host order, hex.
    let addr = |s: &str| -> Option<SocketAddrV4> {
        let (a, p) = s.split_once(':')?;
        let ip = Ipv4Addr::from(u32::from_be(u32::from_str_radix(a, 16).ok()?));
        Some(SocketAddrV4::new(ip, u16::from_str_radix(p, 16).ok()?))
    };
    std::fs::read_to_string("/proc/net/tcp")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(TcpSocket {
                local: addr(f.get(1)?)?,
                remote: addr(f.get(2)?)?,
                state: usize::from_str_radix(f.get(3)?, 16).ok()?,
            })
        })
        .collect()
}

/// NETSTAT CONN: the namespace's TCP connections.
pub fn conn() -> Vec<ConnRow> {
    const STATES: [&str; 12] = [
        "",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
    ];
    proc_tcp()
        .into_iter()
        .map(|s| ConnRow {
            local: s.local.to_string(),
            remote: s.remote.to_string(),
            state: STATES.get(s.state).copied().unwrap_or("?").to_string(),
        })
        .collect()
}

/// An SA as `plexnet ipsec` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SaRow {
    pub dvipa: Ipv4Addr,
    /// `in` (client → DVIPA) or `out`.
    pub direction: String,
    pub spi: String,
    pub protocol: String,
    pub mode: String,
    pub suite: String,
    pub src: String,
    pub dst: String,
    pub udp_encap: bool,
    pub packets: u64,
    pub bytes: u64,
    pub drops: BTreeMap<String, u64>,
    /// Routing stack: peeks of this SA's packets. Target: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peeks: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<u64>,
    /// Inbound: the top of the replay window (routing stack: its pre-check
    /// window, moved only by authenticated numbers; target: the SA's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_top: Option<u64>,
    /// Target: the routing stack that installed this shadow SA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// In an AH+ESP bundle (RFC 4301 §4.3): the SPI of the other SA of the
    /// bundle in the same direction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundled_with: Option<String>,
    /// `dynamic` (negotiated by IKE) or `manual` (a `[[manual_sa]]`), as
    /// `ipsec -y` and `ipsec -m` split them.
    #[serde(default)]
    pub origin: String,
}

/// An IKE SA as `ipsec -k display` lists it (from the IKE's status).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IkeTunnelRow {
    pub dvipa: String,
    pub id: String,
    pub state: String,
    pub remote: String,
    pub spi_i: String,
    pub spi_r: String,
    pub initiator: bool,
    pub nat: bool,
    #[serde(default)]
    pub children: Vec<serde_json::Value>,
}

/// The IKE SAs of an IKE status (`status["ike"]`).
pub fn ike_tunnels(ike_status: &serde_json::Value) -> Vec<IkeTunnelRow> {
    serde_json::from_value(ike_status["sas"].clone()).unwrap_or_default()
}

/// Marks each SA row `manual` when its SPI is one of `manual_spis` (the
/// topology's manually keyed SAs), else `dynamic`.
pub fn mark_origins(d: &mut IpsecDisplay, manual_spis: &[String]) {
    for r in d.owned.iter_mut().chain(d.shadow.iter_mut()) {
        r.origin = if manual_spis.contains(&r.spi) {
            "manual".into()
        } else {
            "dynamic".into()
        };
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IpsecDisplay {
    pub image: String,
    /// SAs of DVIPAs this image owns (routing stack): peeked, never opened here.
    pub owned: Vec<SaRow>,
    /// Copies in this image's shadow SA caches (target stack).
    pub shadow: Vec<SaRow>,
    /// Routing-stack drops by reason.
    pub routing_drops: BTreeMap<String, u64>,
    /// Target-stack drops by reason.
    pub target_drops: BTreeMap<String, u64>,
    /// Full decryptions and seals done here.
    pub opened: u64,
    pub sealed: u64,
    /// Peeks done here and the AES blocks they decrypted.
    pub peeks: u64,
    pub peek_blocks: u64,
    /// tshark `esp_sa` UAT lines, one per ESP SA this image knows.
    pub wireshark_keys: Vec<String>,
    /// tshark `ikev2_decryption_table` UAT lines, one per IKE SA of this
    /// image's IKE (routing stacks with `ike = true`).
    #[serde(default)]
    pub ike_wireshark_keys: Vec<String>,
    /// `ipsec -f display`: the image's IP filter table.
    #[serde(default)]
    pub filters: FilterDisplay,
    /// `ipsec -k display`: the IKE SAs of this image's IKE.
    #[serde(default)]
    pub ike_tunnels: Vec<IkeTunnelRow>,
}

/// `plexnet ipsec NODE -f`, after z/OS's `ipsec -f display`: the IP filter
/// table in order (policy or default rules, dynamic filters,
/// SYSDEFAULTDENYRULE) with hit counts, and what was denied by which rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FilterDisplay {
    /// `IPCONFIG IPSECURITY`.
    pub ipsecurity: bool,
    /// IPSEC `DVIPSEC`: the DVIPA's tunnels are distributed and move with it.
    pub dvipsec: bool,
    /// `Stack Policy` (the Policy Agent's rules) or `Stack Profile` (the
    /// IPSECRULEs), as z/OS's `Source:` field.
    pub source: String,
    /// Whether this image filters now: its routing stack does, for every
    /// clear packet to the DVIPAs it owns.
    pub active: bool,
    pub rows: Vec<FilterRow>,
    /// Packets denied, by `RULE reason`.
    pub denied: BTreeMap<String, u64>,
    /// Packets this image's target stack denied with the anchors and
    /// dynamic filters its routing stacks sent (Fig. 9 block 152, Fig. 10
    /// block 160), by `RULE reason`; a target with no IPSECURITY of its
    /// own filters its DVIPAs' traffic too.
    #[serde(default)]
    pub target_denied: BTreeMap<String, u64>,
}

/// The filter display of an image with `sec` (its profile's IP security,
/// if any), routing stack `routing` and target stack `target`.
pub fn filters(
    sec: Option<&IpSecurity>,
    routing: Option<&RoutingStack>,
    target: &TargetStack,
) -> FilterDisplay {
    let table = routing.and_then(RoutingStack::filter);
    FilterDisplay {
        ipsecurity: sec.is_some_and(|s| s.ipsecurity),
        dvipsec: sec.is_some_and(|s| s.dvipsec),
        source: if sec.is_some_and(|s| s.policy.is_some()) {
            "Stack Policy".into()
        } else {
            "Stack Profile".into()
        },
        active: table.is_some(),
        rows: table.map(|t| t.snapshot()).unwrap_or_default(),
        denied: routing
            .map(|r| r.counters().filter_denied.clone())
            .unwrap_or_default(),
        target_denied: target.counters().filter_denied.clone(),
    }
}

/// The text form of `plexnet ipsec NODE -f`.
pub fn render_filters(image: &str, f: &FilterDisplay) -> String {
    let yes = |b: bool| if b { "Yes" } else { "No" };
    let mut s = String::new();
    let _ = writeln!(s, "ipsec -f display  Stack Name: {image}");
    let _ = writeln!(
        s,
        "IPSecurity: {}   Source: {}   DVIPSec: {}   Active: {}",
        yes(f.ipsecurity),
        f.source,
        yes(f.dvipsec),
        yes(f.active)
    );
    if !f.target_denied.is_empty() {
        let d: Vec<String> = f
            .target_denied
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let _ = writeln!(s, "Denied at the target stack: {}", d.join(", "));
    }
    if !f.active {
        let why = if f.ipsecurity {
            "this image owns no DVIPA now; its routing stack filters when it does"
        } else {
            "no IPCONFIG IPSECURITY: only the anchors and dynamic filters sent with the SAs filter"
        };
        let _ = writeln!(s, "  ({why})");
        return s;
    }
    let _ = writeln!(
        s,
        "  {:<22} {:<11} {:<7} {:>8}  Conditions",
        "FilterName", "Type", "Action", "Hits"
    );
    for r in &f.rows {
        let what = match (&r.conditions, &r.selector) {
            (Some(c), _) => c.to_string(),
            (None, Some(sel)) => format!(
                "{:?} SA {} {:?}",
                r.direction.map_or(String::new(), |d| format!("{d:?}")),
                r.sa.map_or(String::new(), |sa| sa.spi.to_string()),
                sel
            ),
            (None, None) => "everything else".into(),
        };
        let _ = writeln!(
            s,
            "  {:<22} {:<11} {:<7} {:>8}  {what}{}",
            r.name,
            format!("{:?}", r.filter_type),
            r.action,
            r.hits,
            if r.log { " LOG" } else { "" }
        );
    }
    if f.denied.is_empty() {
        let _ = writeln!(s, "Denied: none");
    } else {
        let d: Vec<String> = f.denied.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(s, "Denied: {}", d.join(", "));
    }
    s
}

fn sa_row(dvipa: Ipv4Addr, direction: &str, cfg: &SaConfig) -> SaRow {
    SaRow {
        dvipa,
        direction: direction.into(),
        spi: format!("{:#010x}", cfg.spi.0),
        protocol: format!("{:?}", cfg.protocol).to_uppercase(),
        mode: format!("{:?}", cfg.mode).to_lowercase(),
        suite: Sa::new(cfg.clone())
            .map(|s| s.suite_name())
            .unwrap_or_default(),
        src: cfg.src.to_string(),
        dst: cfg.dst.to_string(),
        udp_encap: cfg.udp_encap.is_some(),
        packets: 0,
        bytes: 0,
        drops: BTreeMap::new(),
        peeks: None,
        forwarded: None,
        replay_top: None,
        owner: None,
        bundled_with: None,
        origin: String::new(),
    }
}

/// The rows of one direction of a pair: the SA, and the AH SA outside it
/// when the pair is an AH+ESP bundle, each naming the other.
fn direction_rows(
    dvipa: Ipv4Addr,
    direction: &str,
    sa: &SaConfig,
    bundle_ah: Option<&SaConfig>,
) -> Vec<SaRow> {
    let mut row = sa_row(dvipa, direction, sa);
    let Some(ah) = bundle_ah else {
        return vec![row];
    };
    let mut ah_row = sa_row(dvipa, direction, ah);
    row.bundled_with = Some(ah_row.spi.clone());
    ah_row.bundled_with = Some(row.spi.clone());
    vec![row, ah_row]
}

/// Packets, bytes and drops of an SA into its row.
fn with_counters(mut row: SaRow, c: &crate::ipsec::counters::SaCounters, owner: &str) -> SaRow {
    (row.packets, row.bytes, row.drops) = (c.packets, c.bytes, drops_of(c));
    row.owner = Some(owner.to_string());
    row
}

fn drops_of(c: &crate::ipsec::counters::SaCounters) -> BTreeMap<String, u64> {
    c.drops
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.as_str().to_string(), n))
        .collect()
}

pub fn ipsec(image: &str, routing: Option<&RoutingStack>, target: &TargetStack) -> IpsecDisplay {
    let mut keys: Vec<String> = Vec::new();
    let mut add_key = |cfg: &SaConfig| {
        if let Some(line) = Sa::new(cfg.clone()).ok().as_ref().and_then(esp_sa_uat) {
            if !keys.contains(&line) {
                keys.push(line);
            }
        }
    };
    let mut owned = Vec::new();
    if let Some(r) = routing {
        for p in r.pairs() {
            let ah = p.ah.as_ref().map(|a| &a.bundle);
            let d = p.install.dvipa;
            // A bundle is peeked through its AH into its ESP: both count.
            let tops = [
                Some(p.precheck_top()),
                p.ah.as_ref().map(|a| a.precheck_top()),
            ];
            let inb = direction_rows(d, "in", &p.install.inbound, ah.map(|a| &a.inbound));
            for (mut inb, top) in inb.into_iter().zip(tops) {
                inb.peeks = Some(p.peeks);
                inb.forwarded = Some(p.forwarded);
                inb.replay_top = top;
                owned.push(inb);
            }
            owned.extend(direction_rows(
                d,
                "out",
                &p.install.outbound,
                ah.map(|a| &a.outbound),
            ));
            add_key(&p.install.inbound);
            add_key(&p.install.outbound);
        }
    }
    let mut shadow = Vec::new();
    for p in target.shadow() {
        let d = p.install.dvipa;
        let ah = p.ah.as_ref();
        let inb = direction_rows(d, "in", &p.install.inbound, ah.map(|a| &a.bundle.inbound));
        let counters = [Some(&p.inbound), ah.map(|a| &a.inbound)];
        for (row, sa) in inb.into_iter().zip(counters.into_iter().flatten()) {
            let mut row = with_counters(row, sa.counters(), &p.owner);
            row.replay_top = Some(sa.replay().top());
            shadow.push(row);
        }
        let out = direction_rows(
            d,
            "out",
            &p.install.outbound,
            ah.map(|a| &a.bundle.outbound),
        );
        let counters = [
            Some(p.outbound.counters()),
            ah.map(|a| a.outbound.counters()),
        ];
        for (row, c) in out.into_iter().zip(counters.into_iter().flatten()) {
            shadow.push(with_counters(row, c, &p.owner));
        }
        add_key(&p.install.inbound);
        add_key(&p.install.outbound);
    }
    let rc = routing.map(|r| r.counters().clone()).unwrap_or_default();
    IpsecDisplay {
        image: image.to_string(),
        owned,
        shadow,
        routing_drops: rc.drops.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        target_drops: target.counters().drops.clone(),
        opened: target.counters().opened,
        sealed: target.counters().sealed,
        peeks: rc.peeks,
        peek_blocks: rc.peek_blocks,
        wireshark_keys: keys,
        ike_wireshark_keys: Vec::new(),
        filters: FilterDisplay::default(),
        ike_tunnels: Vec::new(),
    }
}

/// The text form of a NETSTAT answer.
pub fn render_netstat(n: &Netstat) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "MVS TCP/IP NETSTAT {}  image {}",
        format!("{:?}", n.report).to_uppercase(),
        n.image
    );
    match n.report {
        Report::Vipadcfg => render_vipadcfg(&mut s, n.vipadcfg.as_ref()),
        Report::Vdpt => {
            if !n.routing {
                s.push_str("  (not a distributing stack: no VIPADISTRIBUTE of an owned DVIPA)\n");
            }
            let _ = writeln!(s, "Dynamic VIPA Destination Port Table:");
            let _ = writeln!(
                s,
                "{:<15} {:>5} {:<15} {:<8} {:>3} {:>9} {:>6} Flg",
                "Dest IPaddr", "DPort", "DestXCF Addr", "Image", "Rdy", "TotalConn", "Active"
            );
            for r in &n.vdpt {
                let _ = writeln!(
                    s,
                    "{:<15} {:>5} {:<15} {:<8} {:>3} {:>9} {:>6} {}{}",
                    r.dvipa,
                    r.port,
                    r.dest_xcf,
                    r.dest_image,
                    u8::from(r.ready),
                    r.total_conn,
                    r.active_conn,
                    r.method,
                    if r.moving { " Moving" } else { "" }
                );
            }
        }
        Report::Vcrt => {
            if !n.routing {
                s.push_str("  (not a distributing stack: no VIPADISTRIBUTE of an owned DVIPA)\n");
            }
            let _ = writeln!(s, "Dynamic VIPA Connection Routing Table:");
            let _ = writeln!(
                s,
                "{:<15} {:>5} {:<15} {:>5} {:<15} {:<8} {:<11} {:>7} IPsec",
                "Dest IPaddr",
                "DPort",
                "Src IPaddr",
                "SPort",
                "DestXCF Addr",
                "Image",
                "State",
                "Packets"
            );
            for r in &n.vcrt {
                let _ = writeln!(
                    s,
                    "{:<15} {:>5} {:<15} {:>5} {:<15} {:<8} {:<11} {:>7} {}",
                    r.dvipa,
                    r.port,
                    r.client,
                    r.client_port,
                    r.dest_xcf,
                    r.dest_image,
                    r.state,
                    r.packets,
                    if r.ipsec { "yes" } else { "no" }
                );
            }
            let _ = writeln!(
                s,
                "{} connection{}",
                n.vcrt.len(),
                if n.vcrt.len() == 1 { "" } else { "s" }
            );
            if let Some(d) = &n.dct {
                render_dct(&mut s, d);
            }
        }
        Report::Conn => {
            let _ = writeln!(s, "{:<22} {:<22} State", "Local Socket", "Foreign Socket");
            for r in &n.conn {
                let _ = writeln!(s, "{:<22} {:<22} {}", r.local, r.remote, r.state);
            }
        }
    }
    s
}

fn render_vipadcfg(s: &mut String, c: Option<&Vipadcfg>) {
    let Some(c) = c else { return };
    let _ = writeln!(s, "Dynamic VIPA Information:");
    if !c.backups.is_empty() {
        let _ = writeln!(
            s,
            "  VIPA Backup:\n    {:<15} {:<15} Rank",
            "IP Address", "AddressMask"
        );
        for b in &c.backups {
            let _ = writeln!(s, "    {:<15} {:<15} {:>4}", b.addr, b.mask, b.rank);
        }
    }
    if !c.defines.is_empty() {
        let _ = writeln!(
            s,
            "  VIPA Define:\n    {:<15} {:<15} Moveable",
            "IP Address", "AddressMask"
        );
        for d in &c.defines {
            let _ = writeln!(s, "    {:<15} {:<15} {}", d.addr, d.mask, d.moveable);
        }
    }
    if !c.distributes.is_empty() {
        let _ = writeln!(
            s,
            "  VIPA Distribute:\n    {:<21} {:<15} {:<8} {:<14} Role",
            "Dest", "DestXCF", "Image", "Method"
        );
        for d in &c.distributes {
            let dest = format!("{}..{}", d.dvipa, d.port);
            let role = if d.backup {
                format!("{} (after takeover)", d.role).trim().to_string()
            } else {
                d.role.clone()
            };
            let _ = writeln!(
                s,
                "    {:<21} {:<15} {:<8} {:<14} {role}",
                dest, d.dest_xcf, d.dest_image, d.method
            );
        }
    }
    if !c.status.is_empty() {
        let _ = writeln!(
            s,
            "  VIPA Status:\n    {:<15} {:<8} {:<8} {:<9} Takeovers Givebacks",
            "IP Address", "Status", "Holder", "Moveable"
        );
        for r in &c.status {
            let from = r
                .took_from
                .as_deref()
                .map(|f| format!(" (last from {f})"))
                .unwrap_or_default();
            let moving = r
                .giveback
                .as_deref()
                .map(|g| format!(" giveback {g}"))
                .unwrap_or_default();
            let holder = r.holder.as_deref().unwrap_or("none");
            let _ = writeln!(
                s,
                "    {:<15} {:<8} {:<8} {:<9} {:<9} {}{from}{moving}",
                r.dvipa, r.state, holder, r.moveable, r.takeovers, r.givebacks
            );
        }
    }
    if c.defines.is_empty() && c.backups.is_empty() && c.distributes.is_empty() {
        let _ = writeln!(s, "  (no VIPADYNAMIC statements)");
    }
}

/// One table of SA rows: peeks and forwards for a routing stack's owned
/// SAs, packets and bytes for shadow SAs.
fn sa_table(s: &mut String, title: &str, rows: &[SaRow], routing: bool) {
    let _ = writeln!(s, "{title}:");
    if rows.is_empty() {
        let _ = writeln!(s, "  (none)");
        return;
    }
    let (a, b) = if routing {
        ("Peeks", "Fwd")
    } else {
        ("Packets", "Bytes")
    };
    let _ = writeln!(
        s,
        "  {:<14} {:<3} {:<10} {:<4} {:<7} {:<24} {:>8} {:>10}  Drops",
        "DVIPA", "Dir", "SPI", "Prot", "Mode", "Suite", a, b
    );
    for r in rows {
        let (x, y) = if routing {
            (r.peeks.unwrap_or(0), r.forwarded.unwrap_or(0))
        } else {
            (r.packets, r.bytes)
        };
        let suite = match (&r.bundled_with, r.udp_encap) {
            (Some(other), _) => format!("{} +{other}", r.suite),
            (None, true) => format!("{} udp", r.suite),
            (None, false) => r.suite.clone(),
        };
        let drops: Vec<String> = r.drops.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            s,
            "  {:<14} {:<3} {:<10} {:<4} {:<7} {:<24} {:>8} {:>10}  {}",
            r.dvipa,
            r.direction,
            r.spi,
            r.protocol,
            r.mode,
            suite,
            x,
            y,
            drops.join(" ")
        );
    }
}

/// `plexnet ipsec NODE -y` (dynamic tunnels, negotiated by IKE), with `-s`
/// the shadows on this image's target stack, and `-m` (manual tunnels):
/// the SAs of `origin`, after z/OS's `ipsec -y display` / `-m display`.
pub fn render_tunnels(d: &IpsecDisplay, origin: &str, shadow: bool) -> String {
    let pick = |rows: &[SaRow]| -> Vec<SaRow> {
        rows.iter()
            .filter(|r| r.origin == origin)
            .cloned()
            .collect()
    };
    let (kind, flag) = if origin == "manual" {
        ("Manual", "m")
    } else {
        ("Dynamic", "y")
    };
    let mut s = String::new();
    if shadow {
        let _ = writeln!(s, "ipsec -{} display -s  Stack Name: {}", flag, d.image);
        sa_table(&mut s, &format!("{kind} shadow tunnels (target stack: copies from the routing stack, decrypted and sealed here)"), &pick(&d.shadow), false);
    } else {
        let _ = writeln!(s, "ipsec -{} display  Stack Name: {}", flag, d.image);
        sa_table(
            &mut s,
            &format!("{kind} tunnels owned here (routing stack: peeked and forwarded)"),
            &pick(&d.owned),
            true,
        );
    }
    s
}

/// `plexnet ipsec NODE -k`: the IKE SAs, after z/OS's `ipsec -k display`.
pub fn render_ike_tunnels(d: &IpsecDisplay) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "ipsec -k display  Stack Name: {}", d.image);
    if d.ike_tunnels.is_empty() {
        let _ = writeln!(
            s,
            "  (no IKE tunnels: this image runs no IKE, or none is up)"
        );
        return s;
    }
    let _ = writeln!(
        s,
        "  {:<14} {:<6} {:<12} {:<20} {:<16} {:<16} {:<9} {:>8}",
        "DVIPA", "ID", "State", "Remote", "SPI-i", "SPI-r", "Initiator", "Children"
    );
    for t in &d.ike_tunnels {
        let _ = writeln!(
            s,
            "  {:<14} {:<6} {:<12} {:<20} {:<16} {:<16} {:<9} {:>8}",
            t.dvipa,
            t.id,
            t.state,
            t.remote,
            t.spi_i,
            t.spi_r,
            if t.initiator { "local" } else { "remote" },
            t.children.len()
        );
    }
    s
}

/// The text form of `plexnet ipsec`.
pub fn render_ipsec(d: &IpsecDisplay) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "IPsec on image {}", d.image);
    sa_table(
        &mut s,
        "Owned SAs (routing stack: peeked and forwarded, never decrypted here)",
        &d.owned,
        true,
    );
    sa_table(
        &mut s,
        "Shadow SAs (target stack: decrypted and sealed here)",
        &d.shadow,
        false,
    );
    let _ = writeln!(
        s,
        "Work here: {} peeks ({} AES blocks), {} packets opened, {} sealed",
        d.peeks, d.peek_blocks, d.opened, d.sealed
    );
    let drops = |m: &BTreeMap<String, u64>| {
        if m.is_empty() {
            "none".to_string()
        } else {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let _ = writeln!(
        s,
        "Drops: routing stack {}; target stack {}",
        drops(&d.routing_drops),
        drops(&d.target_drops)
    );
    s
}
