//! IKE exchanges as the simulator's traces show them: a full exchange
//! (behind a faked NAT, as strongSwan's kernel-libipsec does), a child
//! rekey with PFS, an IKE SA rekey, and deletes, with seeded RNGs and a
//! virtual clock, so the rendering is byte-for-byte stable (insta
//! snapshot). The Wireshark key lines are part of it.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::fmt::Write;

use plexnet::ike::{ChildSaId, Identity, Ike, IkeConfig, PeerConfig};
use plexnet::time::Instant;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const DVIPA: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 100);

struct Sim {
    client: Ike,
    mvs: Ike,
    rng_c: ChaCha20Rng,
    rng_m: ChaCha20Rng,
    now: Instant,
    out: String,
}

impl Sim {
    fn step(&mut self, what: &str) {
        writeln!(self.out, "--- {what}").unwrap();
        for _ in 0..50 {
            let mut moved = false;
            while let Some(t) = self.client.poll_transmit() {
                moved = true;
                self.now += Duration::from_millis(1);
                let from = SocketAddrV4::new(CLIENT, t.local_port);
                let _ = self.mvs.handle_datagram(
                    self.now,
                    from,
                    t.remote.port(),
                    &t.payload,
                    &mut self.rng_m,
                );
            }
            while let Some(t) = self.mvs.poll_transmit() {
                moved = true;
                self.now += Duration::from_millis(1);
                let from = SocketAddrV4::new(DVIPA, t.local_port);
                let _ = self.client.handle_datagram(
                    self.now,
                    from,
                    t.remote.port(),
                    &t.payload,
                    &mut self.rng_c,
                );
            }
            if !moved {
                break;
            }
        }
        // The routing stack's view: its trace and its events.
        while let Some(t) = self.mvs.poll_trace() {
            writeln!(self.out, "{t}").unwrap();
        }
        while let Some(e) = self.mvs.poll_event() {
            writeln!(self.out, "  event: {e}").unwrap();
        }
        while self.client.poll_event().is_some() {}
    }

    fn child(&self) -> ChildSaId {
        self.client.status()[0].children[0]
    }
}

#[test]
fn full_exchange_rekey_delete() {
    let mut rng_c = ChaCha20Rng::seed_from_u64(2024);
    let mut rng_m = ChaCha20Rng::seed_from_u64(1987);
    let mut c = IkeConfig::new(
        Identity::Fqdn("client1.plex".into()),
        "aes128-sha256-x25519",
        "aes128-sha1-ecp256",
    )
    .unwrap();
    c.force_encap = true;
    let mut m = IkeConfig::new(
        Identity::Ipv4(DVIPA),
        "default",
        "default,aes128-sha1-ecp256",
    )
    .unwrap();
    m.peers.push(PeerConfig::new(
        Identity::Fqdn("client1.plex".into()),
        &b"psk"[..],
    ));
    let client = Ike::new(c, CLIENT, &mut rng_c);
    let mut mvs = Ike::new(m, DVIPA, &mut rng_m);
    mvs.enable_trace();
    let mut sim = Sim {
        client,
        mvs,
        rng_c,
        rng_m,
        now: Instant::from_secs(1),
        out: String::new(),
    };
    let id = sim.client.initiate(
        sim.now,
        SocketAddrV4::new(DVIPA, 500),
        PeerConfig::new(Identity::Ipv4(DVIPA), &b"psk"[..]),
        &mut sim.rng_c,
    );
    sim.step("initiate");
    let mvs_id = sim.mvs.status()[0].id;
    writeln!(
        sim.out,
        "ikev2_decryption_table: {}",
        sim.mvs.wireshark_ike_keys(mvs_id).unwrap()
    )
    .unwrap();

    let child = sim.child();
    sim.client
        .rekey_child(sim.now, child, &mut sim.rng_c)
        .unwrap();
    sim.step("client rekeys the child SA (PFS)");

    sim.client.rekey_ike(sim.now, id, &mut sim.rng_c).unwrap();
    sim.step("client rekeys the IKE SA");
    writeln!(
        sim.out,
        "ikev2_decryption_table: {}",
        sim.mvs.wireshark_ike_keys(mvs_id).unwrap()
    )
    .unwrap();

    let child = sim.child();
    sim.mvs.rekey_child(sim.now, child, &mut sim.rng_m).unwrap();
    sim.step("the routing stack rekeys the child SA");

    sim.mvs.dpd(sim.now, mvs_id, &mut sim.rng_m).unwrap();
    sim.step("liveness check");

    let child = sim.child();
    sim.client
        .delete_child(sim.now, child, &mut sim.rng_c)
        .unwrap();
    sim.step("client deletes the child SA");

    sim.client.delete_ike(sim.now, id, &mut sim.rng_c).unwrap();
    sim.step("client deletes the IKE SA");
    assert_eq!(sim.mvs.ike_sa_count(), 0);
    // Deterministic: a second run renders the same bytes (checked by the
    // snapshot across runs), and nothing is left.
    assert!(!sim.out.contains("dropped"), "{}", sim.out);
    insta::assert_snapshot!(sim.out);
}
