//! The `plexnet` command line: a thin layer over `lab`, `runtime` and `topology`.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plexnet::lab::{self, state};
use plexnet::runtime::control::Request;
use plexnet::runtime::{daemon, display};
use plexnet::topology::{self, ClientIpsec, Topology};

const DEFAULT_TOPOLOGY: &str = "topologies/figure4.toml";

#[derive(Parser, Debug)]
#[command(
    name = "plexnet",
    version,
    about = "A simulated z/OS Sysplex with distributed IPsec for a shared DVIPA"
)]
struct Cli {
    /// Namespace prefix; tests use their own so they never meet a user's lab.
    #[arg(long, global = true, env = "PLEXNET_PREFIX", default_value = state::DEFAULT_PREFIX)]
    prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Bring a topology up: namespaces, links, image and CF daemons.
    Up {
        /// Topology file (default topologies/figure4.toml); a bare name such
        /// as `minimal` means topologies/minimal.toml.
        file: Option<PathBuf>,
    },
    /// Stop a topology's processes and remove its namespaces (all with --all or no FILE).
    Down {
        file: Option<PathBuf>,
        #[arg(long)]
        all: bool,
    },
    /// Show every node of every running topology.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a node's namespace, e.g. `plexnet exec client1 -- ping -c 3 DVA1`.
    Exec {
        node: String,
        /// Which running topology, when several have a node of that name.
        #[arg(long)]
        topology: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// A z/OS-style NETSTAT report of an image: vipadcfg, vdpt, vcrt, conn.
    Netstat {
        node: String,
        report: plexnet::runtime::display::Report,
        #[arg(long)]
        json: bool,
        #[arg(long)]
        topology: Option<String>,
    },
    /// The SAs of an image (owned and shadow) with packet, byte and drop
    /// counters; with -f its IP filter table (z/OS `ipsec -f display`).
    Ipsec {
        node: String,
        #[arg(long)]
        json: bool,
        /// The IP filter table: default, policy and dynamic rules in order,
        /// SYSDEFAULTDENYRULE last, with hit counts and denials by rule.
        #[arg(short = 'f', long = "filters")]
        filters: bool,
        /// Dynamic tunnels (negotiated by IKE) owned here (z/OS `ipsec -y`).
        #[arg(short = 'y', long = "dynamic")]
        dynamic: bool,
        /// With -y (or -m): the shadow copies on this image's target stack.
        #[arg(short = 's', long = "shadow")]
        shadow: bool,
        /// IKE tunnels (z/OS `ipsec -k`).
        #[arg(short = 'k', long = "ike")]
        ike: bool,
        /// Manual tunnels (z/OS `ipsec -m`).
        #[arg(short = 'm', long = "manual")]
        manual: bool,
        /// Print tshark UAT lines to decrypt captures: first one per ESP SA
        /// (`-o "uat:esp_sa:LINE"` with `-o esp.enable_encryption_decode:TRUE`),
        /// then one per IKE SA (`-o "uat:ikev2_decryption_table:LINE"`).
        /// With DIR, write them as a Wireshark configuration directory
        /// instead (esp_sa, ikev2_decryption_table, and preferences that turn
        /// ESP decryption and ICV checks on), for
        /// `WIRESHARK_CONFIG_DIR=DIR tshark -r FILE`.
        #[arg(long, num_args = 0..=1, value_name = "DIR")]
        wireshark_keys: Option<Option<PathBuf>>,
        #[arg(long)]
        topology: Option<String>,
    },
    /// Take the link between NODE and PEER down or up again (both veth
    /// ends): an XCF link (image-image), an image's ext (image-net), a
    /// client's LAN (client-net) or an image's CF link (image-CF).
    /// docs/FAULTS.md says what the sysplex does then.
    Link {
        node: String,
        peer: String,
        #[arg(value_enum)]
        state: lab::fault::link::LinkState,
        #[arg(long)]
        topology: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Delay, jitter, loss or a rate limit on one interface of a node (tc
    /// netem); --clear removes it; without options, shows the interface's
    /// root qdisc.
    Netem {
        node: String,
        /// The interface, e.g. ext, x-mvs3, cf, lan (`plexnet link` lists a node's links).
        iface: String,
        /// Added delay in milliseconds.
        #[arg(long, value_name = "MS")]
        delay: Option<f64>,
        /// Random variation of the delay, in milliseconds (with --delay).
        #[arg(long, value_name = "MS")]
        jitter: Option<f64>,
        /// Random loss in percent.
        #[arg(long, value_name = "PCT")]
        loss: Option<f64>,
        /// Rate limit in tc's syntax: 10mbit, 500kbit, 1gbit.
        #[arg(long)]
        rate: Option<String>,
        /// Remove what was set.
        #[arg(long)]
        clear: bool,
        #[arg(long)]
        topology: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// SIGKILL a node's process as a crash would: an image's or the CF's
    /// daemon, a client's plexnet client or strongSwan charon.
    Kill {
        node: String,
        #[arg(long)]
        topology: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Start a node's process again as `up` does (stopping it first if it
    /// runs) and wait until it answers ready.
    Restart {
        node: String,
        #[arg(long)]
        topology: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Check a topology file without creating anything.
    Check {
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Check this host for what a topology needs (scripts/host-needs.list:
    /// packages, charon plugins and the algorithms its strongSwan clients
    /// may negotiate, kernel features); prints each missing thing with the
    /// command that fixes it, and exits 1 when something is missing.
    Doctor {
        /// Topology file (default topologies/figure4.toml).
        file: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Print topologies/figure4.toml's layout for N images (SYS1 owns DVA1
    /// and distributes it to ALL, SYS2 backs it up, client1 runs strongSwan
    /// and client2 the plexnet client), e.g. `plexnet generate --images 32 >
    /// gen32.toml`.
    Generate {
        /// How many images, 2 to 128.
        #[arg(long, default_value_t = 32)]
        images: usize,
    },
    /// The project's own IPsec client for a client namespace, with the
    /// client's manual SAs (`plexnet up` runs it for clients with ipsec =
    /// "plexnet"). With --as-peer it is the DVIPA end of those SAs instead:
    /// a reference peer.
    Client {
        /// Topology file with the client and its [[manual_sa]] tables.
        #[arg(long)]
        topology: PathBuf,
        /// The client's name in the topology.
        #[arg(long)]
        client: String,
        /// Run the DVIPA end of the client's manual SAs.
        #[arg(long)]
        as_peer: bool,
        /// Network namespace to run in (else the current one).
        #[arg(long)]
        netns: Option<String>,
        /// Unix socket answering status requests (JSON lines).
        #[arg(long)]
        control: Option<PathBuf>,
    },
    /// Run a command in a namespace by its name (what `up` uses to start
    /// charon): like `ip netns exec`.
    #[command(hide = true)]
    NsExec {
        namespace: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// The process of one image or of the CF (started by `up`).
    #[command(hide = true)]
    Daemon {
        #[arg(long)]
        run_dir: PathBuf,
        #[arg(long)]
        node: String,
        #[arg(long)]
        netns: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("plexnet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Up { file } => cmd_up(&resolve(file), &cli.prefix),
        Command::Down { file, all } => cmd_down(file, all, &cli.prefix),
        Command::Status { json } => cmd_status(json, &cli.prefix),
        Command::Exec {
            node,
            topology,
            command,
        } => {
            let ns = find_namespace(&node, topology.as_deref(), &cli.prefix)?;
            lab::exec::exec_in(&ns, &command)?;
            unreachable!("exec returned")
        }
        Command::Netstat {
            node,
            report,
            json,
            topology,
        } => {
            let reply = ask(
                &node,
                topology.as_deref(),
                &cli.prefix,
                &Request::Netstat { report },
            )?;
            if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                let n: display::Netstat =
                    serde_json::from_value(reply).context("reading the NETSTAT answer")?;
                print!("{}", display::render_netstat(&n));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Ipsec {
            node,
            json,
            filters,
            dynamic,
            shadow,
            ike,
            manual,
            wireshark_keys,
            topology,
        } => {
            let reply = ask(&node, topology.as_deref(), &cli.prefix, &Request::Ipsec)?;
            let d: display::IpsecDisplay =
                serde_json::from_value(reply.clone()).context("reading the IPsec answer")?;
            let view = IpsecView::of(filters, dynamic, ike, manual, shadow)?;
            if view != IpsecView::Summary {
                print_ipsec_view(view, &d, json)?;
            } else if let Some(Some(dir)) = wireshark_keys {
                write_wireshark_dir(&dir, &d)?;
            } else if wireshark_keys.is_some() {
                for line in d.wireshark_keys.iter().chain(&d.ike_wireshark_keys) {
                    println!("{line}");
                }
            } else if json {
                println!("{}", serde_json::to_string_pretty(&reply)?);
            } else {
                print!("{}", display::render_ipsec(&d));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Link {
            node,
            peer,
            state,
            topology,
            json,
        } => {
            let found = lab::fault::find(&node, topology.as_deref(), &cli.prefix)?;
            let r = lab::fault::link::set(&found, &peer, state, &progress(json))?;
            print_fault(json, &r, || {
                format!(
                    "{} link {} {} ({}) <-> {} ({}) is {}{}",
                    r.kind,
                    match r.state {
                        lab::fault::link::LinkState::Down => "down:",
                        lab::fault::link::LinkState::Up => "up:",
                    },
                    r.node,
                    r.node_if,
                    r.peer,
                    r.peer_if,
                    if r.state == lab::fault::link::LinkState::Down {
                        "down"
                    } else {
                        "up"
                    },
                    r.xcf_settled_ms
                        .map(|ms| format!("; both images saw it after {ms} ms"))
                        .unwrap_or_default()
                )
            })
        }
        Command::Netem {
            node,
            iface,
            delay,
            jitter,
            loss,
            rate,
            clear,
            topology,
            json,
        } => {
            let found = lab::fault::find(&node, topology.as_deref(), &cli.prefix)?;
            let shape = lab::fault::netem::Shape {
                delay_ms: delay,
                jitter_ms: jitter,
                loss_pct: loss,
                rate,
            };
            let r = lab::fault::netem::apply(&found, &iface, &shape, clear)?;
            print_fault(json, &r, || {
                format!(
                    "{} {}: {}; root qdisc now: {}",
                    r.node,
                    r.iface,
                    match (&r.qdisc, r.action) {
                        (Some(q), _) => format!("set {q}"),
                        (None, "cleared") => "cleared".to_string(),
                        (None, "unchanged") => "nothing to clear".to_string(),
                        _ => "shown".to_string(),
                    },
                    describe_qdisc(&r.current)
                ) + &match (&r.loss_at, r.loss_dropped) {
                    (Some(at), Some(n)) => format!("; loss classifier at {at}: {n} dropped"),
                    _ => String::new(),
                }
            })
        }
        Command::Kill {
            node,
            topology,
            json,
        } => {
            let found = lab::fault::find(&node, topology.as_deref(), &cli.prefix)?;
            let r = lab::fault::kill(&found)?;
            print_fault(json, &r, || {
                format!(
                    "killed {} ({}): {} pid {} ({}), gone after {} ms",
                    r.node,
                    r.kind.as_str(),
                    r.process.as_str(),
                    r.pid,
                    r.signal,
                    r.gone_after_ms
                )
            })
        }
        Command::Restart {
            node,
            topology,
            json,
        } => {
            let found = lab::fault::find(&node, topology.as_deref(), &cli.prefix)?;
            let r = lab::fault::restart(&found, &progress(json))?;
            print_fault(json, &r, || {
                format!(
                    "restarted {} ({}): {} pid {}, ready after {} ms{}",
                    r.node,
                    r.kind.as_str(),
                    r.process.as_str(),
                    r.pid,
                    r.ready_after_ms,
                    r.stopped_pid
                        .map(|p| format!(" (pid {p} was stopped first)"))
                        .unwrap_or_default()
                )
            })
        }
        Command::NsExec { namespace, command } => {
            lab::exec::exec_in(&namespace, &command)?;
            unreachable!("exec returned")
        }
        Command::Check { file, json } => {
            let topo = load(&resolve(file))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&topo)?);
            } else {
                for note in topology::notes(&topo) {
                    println!("note: {note}");
                }
                println!(
                    "{}: ok ({} images, {} DVIPAs, {} clients)",
                    topo.source.display(),
                    topo.images.len(),
                    topo.dvipas().len(),
                    topo.clients.len()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor { file, json } => cmd_doctor(&resolve(file), json),
        Command::Generate { images } => {
            print!("{}", topology::generate(images)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Client {
            topology,
            client,
            as_peer,
            netns,
            control,
        } => {
            plexnet::runtime::client::run_standalone(plexnet::runtime::client::StandaloneArgs {
                topology: resolve(Some(topology)),
                client,
                as_peer,
                netns,
                control,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Daemon {
            run_dir,
            node,
            netns,
        } => {
            daemon::run(daemon::DaemonArgs {
                run_dir,
                node,
                netns,
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Progress lines of a fault command while it waits: on stderr, so that
/// `--json` output stays one document.
fn progress(json: bool) -> impl Fn(&str) {
    move |line: &str| {
        if !json {
            eprintln!("{line}");
        }
    }
}

/// A fault command's report: JSON, or its one line.
fn print_fault<T: serde::Serialize>(
    json: bool,
    report: &T,
    line: impl FnOnce() -> String,
) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!("{}", line());
    }
    Ok(ExitCode::SUCCESS)
}

/// `tc -j qdisc show`'s root qdisc in a few words: `netem delay 20ms ...`.
fn describe_qdisc(current: &serde_json::Value) -> String {
    let Some(q) = current.as_array().and_then(|a| a.first()) else {
        return "none".into();
    };
    let kind = q.get("kind").and_then(|k| k.as_str()).unwrap_or("?");
    match q.get("options") {
        Some(o) if o.as_object().is_some_and(|m| !m.is_empty()) => format!("{kind} {o}"),
        _ => kind.to_string(),
    }
}

/// `figure4` → `topologies/figure4.toml`; paths are taken as they are.
fn resolve(file: Option<PathBuf>) -> PathBuf {
    let Some(file) = file else {
        return PathBuf::from(DEFAULT_TOPOLOGY);
    };
    let bare = file.components().count() == 1 && file.extension().is_none();
    let candidate = Path::new("topologies").join(&file).with_extension("toml");
    if bare && !file.exists() && candidate.exists() {
        candidate
    } else {
        file
    }
}

fn load(path: &Path) -> Result<Topology> {
    topology::load(path).map_err(|e| anyhow!("{e}"))
}

/// Which part of `plexnet ipsec NODE` to show, after z/OS's `ipsec`
/// command: `-f` filters, `-y` dynamic tunnels (`-s` shadows), `-k` IKE
/// tunnels, `-m` manual tunnels (`-s` shadows); none: the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IpsecView {
    Summary,
    Filters,
    Tunnels { manual: bool, shadow: bool },
    Ike,
}

impl IpsecView {
    fn of(
        filters: bool,
        dynamic: bool,
        ike: bool,
        manual: bool,
        shadow: bool,
    ) -> Result<IpsecView> {
        let picked = [filters, dynamic, ike, manual]
            .iter()
            .filter(|b| **b)
            .count();
        if picked > 1 {
            bail!("choose one of -f, -y, -k, -m");
        }
        if shadow && !(dynamic || manual) {
            bail!("-s goes with -y or -m (shadow copies of dynamic or manual tunnels)");
        }
        Ok(match (filters, dynamic, ike, manual) {
            (true, ..) => IpsecView::Filters,
            (_, true, ..) => IpsecView::Tunnels {
                manual: false,
                shadow,
            },
            (_, _, true, _) => IpsecView::Ike,
            (.., true) => IpsecView::Tunnels {
                manual: true,
                shadow,
            },
            _ => IpsecView::Summary,
        })
    }
}

fn print_ipsec_view(view: IpsecView, d: &display::IpsecDisplay, json: bool) -> Result<()> {
    let origin = |manual: bool| if manual { "manual" } else { "dynamic" };
    match (view, json) {
        (IpsecView::Filters, true) => println!("{}", serde_json::to_string_pretty(&d.filters)?),
        (IpsecView::Filters, false) => print!("{}", display::render_filters(&d.image, &d.filters)),
        (IpsecView::Ike, true) => println!("{}", serde_json::to_string_pretty(&d.ike_tunnels)?),
        (IpsecView::Ike, false) => print!("{}", display::render_ike_tunnels(d)),
        (IpsecView::Tunnels { manual, shadow }, true) => {
            let rows = if shadow { &d.shadow } else { &d.owned };
            let rows: Vec<_> = rows.iter().filter(|r| r.origin == origin(manual)).collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        (IpsecView::Tunnels { manual, shadow }, false) => {
            print!("{}", display::render_tunnels(d, origin(manual), shadow))
        }
        (IpsecView::Summary, _) => unreachable!("the summary is printed by the caller"),
    }
    Ok(())
}

/// Wireshark's personal configuration files for `dir` (wireshark(1),
/// WIRESHARK_CONFIG_DIR): the ESP SA table, the IKEv2 decryption table and
/// the ESP preferences that use them.
fn write_wireshark_dir(dir: &Path, d: &display::IpsecDisplay) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lines = |l: &[String]| l.iter().map(|x| format!("{x}\n")).collect::<String>();
    let files = [
        ("esp_sa", lines(&d.wireshark_keys)),
        ("ikev2_decryption_table", lines(&d.ike_wireshark_keys)),
        (
            "preferences",
            "esp.enable_encryption_decode: TRUE\nesp.enable_authentication_check: TRUE\n".into(),
        ),
    ];
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    println!(
        "{}: {} ESP SAs, {} IKE SAs; decrypt with WIRESHARK_CONFIG_DIR={} tshark -r FILE",
        dir.display(),
        d.wireshark_keys.len(),
        d.ike_wireshark_keys.len(),
        dir.display()
    );
    Ok(())
}

fn cmd_doctor(path: &Path, json: bool) -> Result<ExitCode> {
    let topo = load(path)?;
    let report = lab::doctor::check(Some(&topo), Some(path));
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(if report.missing() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_up(path: &Path, prefix: &str) -> Result<ExitCode> {
    lab::preflight()?;
    let topo = load(path)?;
    for note in topology::notes(&topo) {
        println!("note: {note}");
    }
    let report = lab::up(
        &topo,
        &lab::UpOptions {
            prefix: prefix.to_string(),
            verbose: true,
        },
    )?;
    println!(
        "{} is up in {} ms.\n",
        topo.name,
        report.elapsed.as_millis()
    );
    print_summary(&topo, prefix);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(topo: &Topology, prefix: &str) {
    println!(
        "  {:<8} {:<7} {:<14} {:<15} {:<13} VIPADYNAMIC",
        "NODE", "KIND", "NAMESPACE", "ADDRESS", "XCF"
    );
    let ns = |n: &str| lab::plan::ns_name(prefix, n);
    for i in &topo.images {
        let mut roles: Vec<String> = i
            .vipa
            .defines
            .iter()
            .map(|d| format!("owns {}", topo.label(d.addr)))
            .collect();
        roles.extend(
            i.vipa
                .backups
                .iter()
                .map(|b| format!("backs up {} rank {}", topo.label(b.addr), b.rank)),
        );
        let serves: Vec<String> = topo
            .distributed_to(&i.name)
            .iter()
            .map(|a| topo.label(*a))
            .collect();
        if !serves.is_empty() {
            roles.push(format!("target of {}", serves.join(", ")));
        }
        println!(
            "  {:<8} {:<7} {:<14} {:<15} {:<13} {}",
            i.name,
            "image",
            ns(&i.name),
            i.ext_addr.to_string(),
            i.xcf_addr.to_string(),
            roles.join(", ")
        );
    }
    println!(
        "  {:<8} {:<7} {:<14} {:<15}",
        topo.cf.name,
        "cf",
        ns(&topo.cf.name),
        topo.cf.addr.to_string()
    );
    println!(
        "  {:<8} {:<7} {:<14} {:<15}",
        topo.router.name,
        "router",
        ns(&topo.router.name),
        topo.external_lan.gateway.to_string()
    );
    for c in &topo.clients {
        println!(
            "  {:<8} {:<7} {:<14} {:<15}",
            c.name,
            "client",
            ns(&c.name),
            c.addr.to_string()
        );
    }
    let first = topo.dvipas().first().copied();
    let name = |a: std::net::Ipv4Addr| {
        topo.host_name(a)
            .map_or_else(|| a.to_string(), str::to_string)
    };
    let dvipa = first.map_or_else(|| "DVIPA".to_string(), name);
    let owner = first
        .and_then(|a| topo.owner_of(a))
        .map_or("MVS1", |i| i.name.as_str());
    println!("\nTry:");
    println!("  sudo plexnet status");
    for c in &topo.clients {
        let n = &c.name;
        match c.ipsec {
            ClientIpsec::Strongswan => {
                for d in &c.ike {
                    let conn = lab::strongswan::conn_name(topo, *d);
                    println!("  sudo plexnet exec {n} -- swanctl --initiate --child {conn}   # strongSwan: IKE with the routing stack");
                    println!(
                        "  sudo plexnet exec {n} -- curl http://{}/",
                        topo.label(*d).split(' ').next().unwrap_or(&dvipa)
                    );
                }
            }
            ClientIpsec::Plexnet => {
                println!("  sudo plexnet exec {n} -- curl http://{dvipa}/                 # plexnet client: ESP to the DVIPA");
            }
            ClientIpsec::None => println!("  sudo plexnet exec {n} -- ping -c 3 {dvipa}"),
        }
    }
    println!("  sudo plexnet netstat {owner} vcrt; sudo plexnet ipsec {owner}          # where connections went, what was decrypted where");
    println!("  sudo make down");
}

fn cmd_down(file: Option<PathBuf>, all: bool, prefix: &str) -> Result<ExitCode> {
    if !nix::unistd::geteuid().is_root() {
        bail!("plexnet down needs root: run it with sudo");
    }
    let report = match (file, all) {
        (Some(_), true) => bail!("give a topology FILE or --all, not both"),
        (Some(f), false) => lab::down_topology(&load(&resolve(Some(f)))?, prefix)?,
        (None, _) => lab::down_all(prefix)?,
    };
    if report.namespaces.is_empty() && report.stopped == 0 {
        println!("nothing to remove: no {prefix}* namespace or process was left");
    } else {
        println!(
            "stopped {} process{} ({} needed SIGKILL), removed {} namespace{}: {}",
            report.stopped,
            if report.stopped == 1 { "" } else { "es" },
            report.killed,
            report.namespaces.len(),
            if report.namespaces.len() == 1 {
                ""
            } else {
                "s"
            },
            report.namespaces.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_status(json: bool, prefix: &str) -> Result<ExitCode> {
    let all = lab::status::all(prefix);
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print!("{}", lab::status::render(&all));
    }
    let healthy = all.iter().all(|i| i.nodes.iter().all(|n| n.ready));
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The run directory and state of `node` among the running topologies
/// with this prefix.
fn find_node(
    node: &str,
    topology: Option<&str>,
    prefix: &str,
) -> Result<(PathBuf, state::NodeState)> {
    let matches: Vec<(String, PathBuf, state::NodeState)> = state::instances()
        .into_iter()
        .filter(|(_, lab)| lab.prefix == prefix)
        .filter(|(_, lab)| topology.is_none_or(|t| lab.topology == t))
        .filter_map(|(dir, lab)| {
            lab.node(node)
                .map(|n| (lab.topology.clone(), dir.clone(), n.clone()))
        })
        .collect();
    match matches.as_slice() {
        [] => bail!(
            "no running topology has a node {node}{} (see `plexnet status`)",
            topology.map(|t| format!(" in {t}")).unwrap_or_default()
        ),
        [(_, dir, n)] => Ok::<_, anyhow::Error>((dir.clone(), n.clone())),
        many => bail!(
            "node {node} exists in several running topologies ({}): choose one with --topology",
            many.iter()
                .map(|(t, _, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    .with_context(|| format!("finding node {node}"))
}

/// The namespace of `node` among the running topologies with this prefix.
fn find_namespace(node: &str, topology: Option<&str>, prefix: &str) -> Result<String> {
    Ok(find_node(node, topology, prefix)?.1.namespace)
}

/// Sends one request to a node's daemon; a daemon's `{"error": ...}` is an error.
fn ask(
    node: &str,
    topology: Option<&str>,
    prefix: &str,
    req: &Request,
) -> Result<serde_json::Value> {
    let (dir, n) = find_node(node, topology, prefix)?;
    if !n.runs_daemon() {
        bail!(
            "{} is a {} and has no daemon to ask",
            n.name,
            n.kind.as_str()
        );
    }
    let sock = state::socket_path(&dir, &n.name);
    let reply = plexnet::runtime::control::query(&sock, req, std::time::Duration::from_secs(3))?;
    if let Some(e) = reply.get("error").and_then(|e| e.as_str()) {
        bail!("{e}");
    }
    Ok(reply)
}
