//! Interoperability with a real strongSwan 5.9.8 charon.
//!
//! Two namespaces of its own, `plxk-client` (charon with kernel-libipsec
//! and the host-to-host settings of DESIGN.md) and `plxk-resp` (our `Ike`
//! responder behind a small UDP loop on 500/4500), joined by a veth with
//! 198.18.250.1/24 and .2/24. For each proposal set of the issue:
//! `swanctl --initiate`, the ESP keys we derived equal the ones charon logs
//! (`chd = 4`) and so do SK_ei/SK_er (`ike = 4`), `swanctl --rekey --child`
//! and `--rekey --ike`, our own child rekey, IKE rekey and liveness check
//! towards charon, then `swanctl --terminate`. A wrong PSK must produce
//! AUTHENTICATION_FAILED on the charon side.
//!
//! Needs root and strongSwan; without root it prints a message and passes,
//! unless `CI` is set. Run alone:
//! `cargo test --test ike_charon_interop -- --nocapture`.

use core::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use core::time::Duration;
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use plexnet::ike::natt::{classify_4500, Udp4500};
use plexnet::ike::{
    ChildSaInfo, DeleteReason, Identity, Ike, IkeConfig, IkeEvent, IkeSaId, PeerConfig, Role,
};
use plexnet::lab::{netlink::NsLinks, netns};
use plexnet::time;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const NS_CLIENT: &str = "plxk-client";
const NS_RESP: &str = "plxk-resp";
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 1);
const RESP: Ipv4Addr = Ipv4Addr::new(198, 18, 250, 2);
const PSK: &str = "plexnet-charon-psk";
const CHARON: &str = "/usr/lib/ipsec/charon";

/// The proposal sets of the issue: (IKE, ESP); and one with PFS, so
/// charon's child rekey carries a KE.
const CASES: [(&str, &str); 5] = [
    ("aes128-sha256-x25519", "aes128-sha1"),
    ("aes256-sha256-modp2048", "aes256-sha256"),
    ("aes128-sha256-ecp256", "aes128gcm16"),
    ("default", "default"),
    ("aes256-sha384-ecp384", "aes256gcm16-ecp384"),
];

fn may_run() -> bool {
    let missing = if !nix::unistd::geteuid().is_root() {
        Some("root")
    } else if !Path::new(CHARON).exists() {
        Some(CHARON)
    } else if !Path::new("/dev/net/tun").exists() {
        Some("/dev/net/tun")
    } else {
        None
    };
    match missing {
        None => true,
        Some(what) if std::env::var_os("CI").is_some() => {
            panic!("ike_charon_interop needs {what}, and CI must run it")
        }
        Some(what) => {
            eprintln!("SKIPPED ike_charon_interop: needs {what}");
            false
        }
    }
}

type Cmd = Box<dyn FnOnce(&mut Ike, time::Instant, &mut ChaCha20Rng) + Send>;

/// Our responder in `plxk-resp`: a UDP loop feeding the sans-IO endpoint.
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    cmds: Sender<Cmd>,
    events: Receiver<IkeEvent>,
    /// Every event seen so far.
    log: Vec<IkeEvent>,
}

impl Responder {
    fn start(config: IkeConfig) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let (cmd_tx, cmd_rx) = mpsc::channel::<Cmd>();
        let (ev_tx, ev_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let sockets = {
                let _inside = netns::Inside::enter(NS_RESP).expect("enter responder namespace");
                [500u16, 4500].map(|p| {
                    let s = UdpSocket::bind(SocketAddrV4::new(RESP, p)).expect("bind");
                    s.set_nonblocking(true).expect("nonblocking");
                    (p, s)
                })
            };
            ready_tx.send(()).expect("ready");
            let mut rng = ChaCha20Rng::seed_from_u64(0x504c_584b);
            let mut ike = Ike::new(config, RESP, &mut rng);
            let start = Instant::now();
            let mut buf = vec![0u8; 65536];
            while !flag.load(Ordering::Relaxed) {
                let now = time::Instant::from_elapsed(start.elapsed());
                let mut idle = true;
                while let Ok(cmd) = cmd_rx.try_recv() {
                    cmd(&mut ike, now, &mut rng);
                }
                for (port, sock) in &sockets {
                    match sock.recv_from(&mut buf) {
                        Ok((n, SocketAddr::V4(from))) => {
                            idle = false;
                            let data = &buf[..n];
                            if *port == 4500 && matches!(classify_4500(data), Udp4500::Esp(_)) {
                                continue;
                            }
                            if let Err(e) = ike.handle_datagram(now, from, *port, data, &mut rng) {
                                eprintln!("responder: dropped from {from}: {e}");
                            }
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => panic!("recv: {e}"),
                    }
                }
                if ike.next_timeout().is_some_and(|t| t <= now) {
                    ike.handle_timeout(now, &mut rng);
                }
                while let Some(t) = ike.poll_transmit() {
                    let sock = &sockets
                        .iter()
                        .find(|(p, _)| *p == t.local_port)
                        .expect("socket for port")
                        .1;
                    sock.send_to(&t.payload, t.remote).expect("send");
                }
                while let Some(e) = ike.poll_event() {
                    let _ = ev_tx.send(e);
                }
                if idle {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("responder started");
        Responder {
            stop,
            thread: Some(thread),
            cmds: cmd_tx,
            events: ev_rx,
            log: Vec::new(),
        }
    }

    fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Ike, time::Instant, &mut ChaCha20Rng) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = mpsc::channel();
        self.cmds
            .send(Box::new(move |ike, now, rng| {
                let _ = tx.send(f(ike, now, rng));
            }))
            .expect("responder alive");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("command ran")
    }

    /// Waits for an event matching `pred` (among new ones).
    fn wait(&mut self, what: &str, pred: impl Fn(&IkeEvent) -> bool) -> IkeEvent {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => {
                    self.log.push(e.clone());
                    if pred(&e) {
                        return e;
                    }
                }
                Err(_) => panic!("no {what}; events: {:#?}", self.log),
            }
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Removes the namespaces and stops charon, also when the test fails.
struct Lab {
    dir: PathBuf,
    charon: Option<Child>,
}

impl Lab {
    fn cleanup() {
        for ns in [NS_CLIENT, NS_RESP] {
            let _ = netns::delete(ns);
        }
    }

    fn up() -> Lab {
        Lab::cleanup();
        netns::create(NS_CLIENT).expect("create client namespace");
        netns::create(NS_RESP).expect("create responder namespace");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let c = NsLinks::open(NS_CLIENT).expect("netlink client");
            let r = NsLinks::open(NS_RESP).expect("netlink responder");
            c.add_veth("veth-c", &r, "veth-r").await.expect("veth");
            c.add_addr("veth-c", CLIENT, 24).await.expect("addr");
            r.add_addr("veth-r", RESP, 24).await.expect("addr");
            for (l, n) in [(&c, "veth-c"), (&c, "lo"), (&r, "veth-r"), (&r, "lo")] {
                l.up(n).await.expect("link up");
            }
        });
        let dir = std::env::temp_dir().join(format!("plxk-charon-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).expect("dir");
        Lab { dir, charon: None }
    }

    fn conf(&self) -> PathBuf {
        self.dir.join("strongswan.conf")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("charon.log")).unwrap_or_default()
    }

    fn start_charon(&mut self) {
        let d = self.dir.display();
        let conf = include_str!("../netns/strongswan/strongswan.conf.in")
            .replace("@SWANCTL_DIR@", &d.to_string())
            .replace("@DIR@", &d.to_string());
        std::fs::write(self.conf(), conf).expect("strongswan.conf");
        sh(&format!(
            "ip netns exec {NS_CLIENT} sysctl -qw net.ipv4.conf.all.rp_filter=2"
        ));
        let child = Command::new("ip")
            .args(["netns", "exec", NS_CLIENT, "sh", "-c"])
            .arg(format!(
                "mount --bind {d}/run /run && STRONGSWAN_CONF={} exec {CHARON}",
                self.conf().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start charon");
        self.charon = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.dir.join("charon.vici").exists() {
            assert!(
                Instant::now() < deadline,
                "charon did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn swanctl(&self, args: &[&str]) -> Output {
        Command::new("swanctl")
            .args(args)
            .env("STRONGSWAN_CONF", self.conf())
            .output()
            .expect("swanctl")
    }

    fn swanctl_ok(&self, args: &[&str]) -> String {
        let out = self.swanctl(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "swanctl {args:?} failed:\n{text}\n--- charon.log tail:\n{}",
            tail(&self.log(), 60)
        );
        text
    }

    /// swanctl.conf with one connection per case (`cN`, child
    /// `cN-child`), and `bad` whose identity has a PSK our responder does
    /// not share; each from `netns/strongswan/swanctl.conf.in`.
    fn load_connections(&self) {
        let conn = |name: &str, ike: &str, esp: &str, id: &str, psk: &str| {
            include_str!("../netns/strongswan/swanctl.conf.in")
                .replace("@CHILD@", &format!("{name}-child"))
                .replace("@NAME@", name)
                .replace("@LOCAL_ADDR@", &CLIENT.to_string())
                .replace("@REMOTE_ADDR@", &RESP.to_string())
                .replace("@IKE_PROPOSALS@", ike)
                .replace("@ESP_PROPOSALS@", esp)
                .replace("@LOCAL_ID@", id)
                .replace("@REMOTE_ID@", &RESP.to_string())
                .replace("@PSK@", psk)
        };
        let mut conf = String::new();
        for (i, (ike, esp)) in CASES.iter().enumerate() {
            conf.push_str(&conn(&format!("c{i}"), ike, esp, "client1.plex", PSK));
        }
        conf.push_str(&conn(
            "bad",
            "default",
            "default",
            "bad.plex",
            "this-is-not-the-psk",
        ));
        let path = self.dir.join("swanctl.conf");
        std::fs::write(&path, conf).expect("swanctl.conf");
        self.swanctl_ok(&["--load-all", "--file", &path.display().to_string()]);
        let conns = self.swanctl_ok(&["--list-conns"]);
        for i in 0..CASES.len() {
            assert!(conns.contains(&format!("c{i}-child")), "{conns}");
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.charon.take() {
            if let Ok(pid) = i32::try_from(c.id()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        Lab::cleanup();
        if std::env::var_os("PLXK_KEEP_LOG").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().expect("sh");
    assert!(st.success(), "{cmd}");
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last chunk charon logged after `label` (`label => N bytes @ 0x...`
/// then hex dump lines `   0: 17 04 DD ...  ascii`).
fn logged_chunk(log: &str, label: &str) -> Option<Vec<u8>> {
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .rposition(|l| l.contains(&format!("{label} =>")))?;
    let mut out = Vec::new();
    for l in &lines[at + 1..] {
        // `hh:mm:ss NN[CHD] <conn|n>    0: 7F 93 ...  ascii`
        let Some((_, rest)) = l.split_once('>') else {
            break;
        };
        let Some((offset, dump)) = rest.trim_start().split_once(": ") else {
            break;
        };
        if offset.is_empty() || !offset.chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        let hex: Vec<u8> = dump
            .split(' ')
            .take_while(|t| t.len() == 2)
            .map_while(|t| u8::from_str_radix(t, 16).ok())
            .collect();
        if hex.is_empty() {
            break;
        }
        out.extend(hex);
    }
    Some(out)
}

/// charon's ESP keys equal ours. In the exchange that made the SA, charon
/// was the initiator if we were the responder.
fn check_child_keys(log: &str, c: &ChildSaInfo) {
    let (from_i, from_r) = match c.role {
        Role::Responder => (&c.inbound, &c.outbound),
        Role::Initiator => (&c.outbound, &c.inbound),
    };
    let want = [
        ("encryption initiator key", from_i.enc_key.as_bytes()),
        ("encryption responder key", from_r.enc_key.as_bytes()),
        ("integrity initiator key", from_i.integ_key.as_bytes()),
        ("integrity responder key", from_r.integ_key.as_bytes()),
    ];
    for (label, ours) in want {
        if ours.is_empty() {
            continue;
        }
        let theirs = logged_chunk(log, label).unwrap_or_else(|| panic!("charon logged no {label}"));
        assert_eq!(theirs, ours, "{label} differs ({:?})", c.outbound.enc);
    }
}

/// charon's SK_ei and SK_er equal ours (from our Wireshark key line).
fn check_ike_keys(log: &str, line: &str) {
    let f: Vec<&str> = line.split(',').collect();
    for (label, hex) in [("Sk_ei secret", f[2]), ("Sk_er secret", f[3])] {
        let ours = plexnet::ipsec::Key::from_hex(hex).expect("hex").0;
        assert_eq!(
            logged_chunk(log, label).as_deref(),
            Some(&ours[..]),
            "{label}"
        );
    }
}

fn responder_config() -> IkeConfig {
    let mut c = IkeConfig::new(
        Identity::Ipv4(RESP),
        "default",
        "default,aes256gcm16-ecp384",
    )
    .expect("config");
    c.peers.push(PeerConfig::new(
        Identity::Fqdn("client1.plex".into()),
        PSK.as_bytes(),
    ));
    c.peers.push(PeerConfig::new(
        Identity::Fqdn("bad.plex".into()),
        &b"our-psk-for-bad"[..],
    ));
    c
}

#[test]
fn parses_charon_chunk_dumps() {
    let log = "03:41:01 14[CHD] <c0|1> encryption initiator key => 20 bytes @ 0x5601
03:41:01 14[CHD] <c0|1>    0: 7F 93 BF 18 E8 50 E2 B9 97 DC 61 43 E8 3A 20 77  .....P....aC.: w
03:41:01 14[CHD] <c0|1>   16: AC 2D 12 C5                                      .-..
03:41:01 14[CHD] <c0|1> encryption responder key => 16 bytes @ 0x5602";
    let k = logged_chunk(log, "encryption initiator key").unwrap();
    assert_eq!(k.len(), 20);
    assert_eq!(&k[16..], &[0xac, 0x2d, 0x12, 0xc5]);
    assert_eq!(logged_chunk(log, "integrity initiator key"), None);
}

#[test]
fn charon_interop() {
    if !may_run() {
        return;
    }
    let mut lab = Lab::up();
    let mut resp = Responder::start(responder_config());
    lab.start_charon();
    lab.load_connections();

    for (i, (ike, esp)) in CASES.iter().enumerate() {
        let (conn, child) = (format!("c{i}"), format!("c{i}-child"));
        eprintln!("case {i}: {ike} / {esp}");
        lab.swanctl_ok(&["--initiate", "--child", &child, "--timeout", "20"]);
        let IkeEvent::IkeSaEstablished { ike_sa, .. } =
            resp.wait("IKE SA", |e| matches!(e, IkeEvent::IkeSaEstablished { .. }))
        else {
            unreachable!()
        };
        let IkeEvent::ChildSaEstablished(c0) =
            resp.wait("child SA", |e| matches!(e, IkeEvent::ChildSaEstablished(_)))
        else {
            unreachable!()
        };
        // kernel-libipsec fakes a NAT: ESP in UDP on 4500.
        assert_eq!(
            c0.udp_encap.map(|e| (e.src_port, e.dst_port)),
            Some((4500, 4500))
        );
        let sas = lab.swanctl_ok(&["--list-sas", "--ike", &conn]);
        assert!(
            sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
            "{sas}"
        );
        check_child_keys(&lab.log(), &c0);
        let line = resp
            .run(move |ike, _, _| ike.wireshark_ike_keys(ike_sa))
            .expect("keys");
        check_ike_keys(&lab.log(), &line);

        // charon rekeys the child: new pair first, then the old one goes.
        lab.swanctl_ok(&["--rekey", "--child", &child]);
        let IkeEvent::ChildSaRekeyed { old, new: c1, .. } = resp.wait("child rekey", |e| {
            matches!(e, IkeEvent::ChildSaRekeyed { .. })
        }) else {
            unreachable!()
        };
        assert_eq!(old, c0.child);
        resp.wait(
            "old child deleted",
            |e| matches!(e, IkeEvent::ChildSaDeleted { child, .. } if *child == c0.child),
        );
        std::thread::sleep(Duration::from_millis(200));
        check_child_keys(&lab.log(), &c1);

        // charon rekeys the IKE SA; the handle and the child stay.
        lab.swanctl_ok(&["--rekey", "--ike", &conn]);
        resp.wait(
            "IKE rekey",
            |e| matches!(e, IkeEvent::IkeSaRekeyed { ike_sa: id, .. } if *id == ike_sa),
        );
        std::thread::sleep(Duration::from_millis(300));
        let line = resp
            .run(move |ike, _, _| ike.wireshark_ike_keys(ike_sa))
            .expect("keys");
        check_ike_keys(&lab.log(), &line);

        // We rekey the child, the IKE SA, and check liveness.
        let id1 = c1.child;
        resp.run(move |ike, now, rng| ike.rekey_child(now, id1, rng))
            .expect("rekey_child");
        let IkeEvent::ChildSaRekeyed { new: c2, .. } = resp.wait(
            "our child rekey",
            |e| matches!(e, IkeEvent::ChildSaRekeyed { old, .. } if *old == id1),
        ) else {
            unreachable!()
        };
        resp.wait(
            "our delete of the old child",
            |e| matches!(e, IkeEvent::ChildSaDeleted { child, .. } if *child == id1),
        );
        assert_eq!(c2.role, Role::Initiator);
        std::thread::sleep(Duration::from_millis(200));
        check_child_keys(&lab.log(), &c2);
        resp.run(move |ike, now, rng| ike.rekey_ike(now, ike_sa, rng))
            .expect("rekey_ike");
        resp.wait(
            "our IKE rekey",
            |e| matches!(e, IkeEvent::IkeSaRekeyed { ike_sa: id, .. } if *id == ike_sa),
        );
        std::thread::sleep(Duration::from_millis(300));
        let line = resp
            .run(move |ike, _, _| ike.wireshark_ike_keys(ike_sa))
            .expect("keys");
        check_ike_keys(&lab.log(), &line);
        resp.run(move |ike, now, rng| ike.dpd(now, ike_sa, rng))
            .expect("dpd");
        std::thread::sleep(Duration::from_millis(300));
        let sas = lab.swanctl_ok(&["--list-sas", "--ike", &conn]);
        assert!(
            sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
            "{sas}"
        );

        // Both child rekeys (charon's and ours) carried a KE exactly when
        // the ESP proposal has a PFS group.
        let log = lab.log();
        let rekeys: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("<{conn}|")) && l.contains("CREATE_CHILD_SA request"))
            .filter(|l| l.contains("N(REKEY_SA)"))
            .collect();
        assert_eq!(rekeys.len(), 2, "{rekeys:#?}");
        let pfs = esp.contains("ecp");
        assert!(
            rekeys.iter().all(|l| l.contains(" KE ") == pfs),
            "{rekeys:#?}"
        );

        // charon terminates: the child, then the IKE SA.
        lab.swanctl_ok(&["--terminate", "--child", &child, "--timeout", "10"]);
        resp.wait(
            "child deleted",
            |e| matches!(e, IkeEvent::ChildSaDeleted { child, .. } if *child == c2.child),
        );
        lab.swanctl_ok(&["--terminate", "--ike", &conn, "--timeout", "10"]);
        resp.wait("IKE SA deleted", |e| {
            *e == IkeEvent::IkeSaDeleted {
                ike_sa,
                reason: DeleteReason::Peer,
            }
        });
        assert_eq!(resp.run(|ike, _, _| ike.ike_sa_count()), 0);
    }

    // A wrong PSK: AUTHENTICATION_FAILED at charon, no SA anywhere.
    let out = lab.swanctl(&["--initiate", "--child", "bad-child", "--timeout", "20"]);
    assert!(!out.status.success(), "initiate with a wrong PSK succeeded");
    resp.wait("auth failure", |e| {
        matches!(e, IkeEvent::AuthFailed { local: true, id: Some(Identity::Fqdn(f)), .. }
            if f == "bad.plex")
    });
    let log = lab.log();
    assert!(
        log.contains("received AUTHENTICATION_FAILED notify error"),
        "{}",
        tail(&log, 40)
    );
    assert_eq!(resp.run(|ike, _, _| ike.ike_sa_count()), 0);
    let sas = lab.swanctl_ok(&["--list-sas"]);
    assert!(!sas.contains("ESTABLISHED"), "{sas}");
    let no_sa_id: IkeSaId = IkeSaId(u32::MAX);
    assert!(resp
        .run(move |ike, _, _| ike.wireshark_ike_keys(no_sa_id))
        .is_none());
    drop(resp);
}
