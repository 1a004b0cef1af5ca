//! Known-answer tests of the groups (RFC 5903, RFC 7748, RFC 3526), key
//! agreement in every group, and refusal of bad peer and private values.

use super::*;
use crate::ike::prf::tests::hex;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

fn vector(group: DhGroup, i: &str, gi: &str, r: &str, gr: &str, shared: &str) {
    let a = DhPrivate::from_private_bytes(group, &hex(i)).unwrap();
    let b = DhPrivate::from_private_bytes(group, &hex(r)).unwrap();
    assert_eq!(a.public_value(), hex(gi).as_slice());
    assert_eq!(b.public_value(), hex(gr).as_slice());
    assert_eq!(*a.shared_secret(&hex(gr)).unwrap(), hex(shared));
    assert_eq!(*b.shared_secret(&hex(gi)).unwrap(), hex(shared));
}

/// RFC 5903 §8.1, 256-bit random ECP group.
#[test]
fn ecp256_rfc5903() {
    vector(
        DhGroup::Ecp256,
        "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
        "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180
         5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
        "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
        "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63
         56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
        "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE",
    );
}

/// RFC 5903 §8.2, 384-bit random ECP group.
#[test]
fn ecp384_rfc5903() {
    vector(
        DhGroup::Ecp384,
        "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655
         E35B5380 41E649EE 3FAEF896 783AB194",
        "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6
         DE3AC808 ACB4BDB4 C88732AE E95F41AA
         9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E
         EB9FCFF3 C2C947DA E69B4C63 4573A81C",
        "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942
         E0308312 916B8ED2 960E4BD5 5A7448FC",
        "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D
         0D1AC43A 0336DEF9 6FDA41D0 774A3571
         DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF
         F83FA401 42209DFF 5EAAD96D B9E6386C",
        "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4
         D6031355 69B9E9D0 9CF5D4A2 70F59746",
    );
}

/// RFC 7748 §6.1.
#[test]
fn x25519_rfc7748() {
    vector(
        DhGroup::Curve25519,
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
        "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
    );
}

/// Known answer for group 14: strongSwan 5.9.8's generated vector
/// (src/libstrongswan/plugins/test_vectors/test_vectors/modp.c,
/// `modp2048`), re-checked here with python3: pow(2, a, p) and
/// pow(pub_b, a, p) with p from RFC 3526 §3 reproduce every value.
#[test]
fn modp2048_known_answer() {
    vector(
        DhGroup::Modp2048,
        "af3bfd3862caa11774ce2b74840807c1de5cd6a7619bb3a0c7af39eedaa6eb89e2e9c144b3625b2731879cb58fa3766d",
        "1a27c5a7237ae8fe0a71c0af6494faeccdd4a5031d47a1a6b7162dfcdf03bb17b7bb089bd652a5f31b3661bb114d7c48
         d83d244f46db64870c9c8327f1a830abf531e518dd521a2e94e7061e944209ba5331012b3dff00849eaab58c7c7af152
         65210fbcf0f87b9dd932f8ba4e9a9f91b63294530a1200b88b3a03e1a0c7fd34deec6fad501ede06ce7ec9e291d47b69
         b3a4b61bb08763b6d46bfbdab97bdecea0ff09a872221fb4b6ccca6b5c6faad8eb873b9a2f39b63e62cfadd47607e68e
         2c290583f7268fb43fc00a7dc8810ecdac1a59bd1b477aaf41cb4b24ada3e5f7b8cb986f1ae476afc7677aa62570a1b1
         838dda26be7863ee2f40b5e538a4e181",
        "77a48e4772e23e284ce4af81399dcd589beb7cefbcc9d196f06dcfdfc3a88e3b4c1c82befec0e64ba495ccde329936ce",
        "667282318d65cb05cd323c25091e664cc75a3a20c014b2f6389d3b27f5c1e908e0d40ff8552bd587752550302285b49f
         75f8ffaec937fb2e69c8150f88d6508bf0fb1f16e9676f5ecf718f874f3d8de3c8688749dbcf1affd4d62ff9ea5d9e30
         35b2ce4a6eae281c408fc8084ae235d998a037610a8cb48c878cd0635fa1369fc90b864c532367384597fdeefdb6742b
         006adedae2015bc4ce2f9c5451c9636a16ed7d10b4e40d825b50aa7633a0e8fb813bebc049f7ff6a71ecfb14e880f509
         d38b571a809808a496b451b5b5567a3608b01a22e4998355f181b879de262304f29de142ff5e52cc564f3a2d1e84a0c3
         3d8f3da7bf6412b3f018e00d90fa5b94",
        "26f9e8457cf2d7d56dd819c2a867d7c3a90aa2b944e20b8bded3a5bf91aa1ff81a7ea89d524c365f3823510835cd8644
         c4d5dacf893e610d2c1a140616d1c8c1d35f46de2c5faad9aecec6b677acd984098142a8aa0c8542e9ac98b3bc7b577c
         59b8ec53346e1567a90039ac92b224635ab216731b06353925642c330a201ba4b31284a9515860f35e9308f5515a7799
         84fbd9f5ce4177db78d1cb0384b63c739c6d744ad7a700b95a531b29f3b744ed38e69aee67072c45a91cee6b14215e04
         f27c31358c86dce448d60a223bdc554edaa3e4072ef603a0f4619f8db39cec291c860174155d8abf9e1082931df58ed9
         ee9c1215dd2393de02f5c1767f070e28",
    );
}

/// Public values of every MODP group for x = 0x0102..30 (48 octets),
/// as SHA-256 of the padded value. Computed independently with python3:
/// `hashlib.sha256(pow(2, x, p).to_bytes(N // 8, "big")).hexdigest()`,
/// p from RFC 3526 (itself derived from the RFC's formula with pi and
/// checked against strongSwan's table).
#[test]
fn modp_public_known_answers() {
    let x: Vec<u8> = (1..=48).collect();
    for (group, digest) in [
        (
            DhGroup::Modp2048,
            "c6bb6f5e574450b6ea4b3222e84df62562628476d37f4457509691d76012e1dc",
        ),
        (
            DhGroup::Modp3072,
            "3c53bf83dcbc85226c6a2b4509813df904976739b71df58a85386ee4b369bf8a",
        ),
        (
            DhGroup::Modp4096,
            "98c3085677538ebfdd402b16495acba6e957e790870ccdca22443050c2fe4768",
        ),
    ] {
        let a = DhPrivate::from_private_bytes(group, &x).unwrap();
        assert_eq!(a.public_value().len(), group.public_len());
        assert_eq!(
            Sha256::digest(a.public_value()).to_vec(),
            hex(digest),
            "{group:?}"
        );
    }
}

#[test]
fn generated_pairs_agree_in_every_group() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for group in DhGroup::ALL {
        let a = DhPrivate::generate(group, &mut rng);
        let b = DhPrivate::generate(group, &mut rng);
        assert_eq!(a.public_value().len(), group.public_len());
        let s1 = a.shared_secret(b.public_value()).unwrap();
        let s2 = b.shared_secret(a.public_value()).unwrap();
        assert_eq!(*s1, *s2, "{group:?}");
        assert_eq!(s1.len(), group.shared_len());
        assert_ne!(a.public_value(), b.public_value());
        assert_eq!(DhGroup::from_id(group.id()), Some(group));
    }
    assert_eq!(DhGroup::from_id(DhId::Modp1024), None);
}

#[test]
fn rejects_bad_peer_values() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let modp = DhPrivate::generate(DhGroup::Modp2048, &mut rng);
    let p = DhGroup::Modp2048.modp_prime().unwrap();
    let one = BigUint::from(1u8);
    for y in [BigUint::from(0u8), one.clone(), p - &one, p.clone()] {
        assert_eq!(
            modp.shared_secret(&pad_be(&y, 256)),
            Err(DhError::InvalidPublic(DhGroup::Modp2048))
        );
    }
    assert_eq!(
        modp.shared_secret(&[2; 255]),
        Err(DhError::BadLength {
            group: DhGroup::Modp2048,
            got: 255,
            expected: 256
        })
    );

    let ecp = DhPrivate::generate(DhGroup::Ecp256, &mut rng);
    let mut off_curve = ecp.public_value().to_vec();
    off_curve[63] ^= 1;
    assert_eq!(
        ecp.shared_secret(&off_curve),
        Err(DhError::InvalidPublic(DhGroup::Ecp256))
    );
    // The SEC1 form with its 0x04 prefix is not the RFC 5903 encoding.
    assert!(matches!(
        ecp.shared_secret(&sec1_uncompressed(ecp.public_value())),
        Err(DhError::BadLength { got: 65, .. })
    ));
    let ecp384 = DhPrivate::generate(DhGroup::Ecp384, &mut rng);
    assert_eq!(
        ecp384.shared_secret(&[0; 96]),
        Err(DhError::InvalidPublic(DhGroup::Ecp384))
    );

    // u = 0 and u = 1 are small-order points: the result is all zero.
    let x = DhPrivate::generate(DhGroup::Curve25519, &mut rng);
    let mut u1 = [0u8; 32];
    u1[0] = 1;
    assert_eq!(
        x.shared_secret(&[0; 32]),
        Err(DhError::ZeroSharedSecret(DhGroup::Curve25519))
    );
    assert_eq!(
        x.shared_secret(&u1),
        Err(DhError::ZeroSharedSecret(DhGroup::Curve25519))
    );
}

#[test]
fn rejects_bad_private_values() {
    for (group, bytes) in [
        (DhGroup::Modp2048, vec![0u8; 48]),
        (DhGroup::Modp2048, vec![1u8]),
        (DhGroup::Ecp256, vec![0u8; 32]),
        (DhGroup::Ecp256, vec![1u8; 31]),
        (DhGroup::Ecp384, vec![0xffu8; 48]),
        (DhGroup::Curve25519, vec![1u8; 31]),
    ] {
        assert_eq!(
            DhPrivate::from_private_bytes(group, &bytes).map(|_| ()),
            Err(DhError::InvalidPrivate(group))
        );
    }
}

#[test]
fn modp_primes_are_the_rfc3526_ones() {
    for (group, bits) in [
        (DhGroup::Modp2048, 2048),
        (DhGroup::Modp3072, 3072),
        (DhGroup::Modp4096, 4096),
    ] {
        let p = group.modp_prime().unwrap();
        assert_eq!(p.bits(), bits);
        // RFC 3526: the top and bottom 64 bits are all ones...
        let bytes = p.to_bytes_be();
        assert!(bytes[..8]
            .iter()
            .chain(&bytes[bytes.len() - 8..])
            .all(|&b| b == 0xff));
        // ...and p is a safe prime with 2 generating the subgroup of
        // order q = (p-1)/2 (Fermat/Euler check, not a primality proof).
        let q = (p - 1u8) >> 1;
        assert_eq!(BigUint::from(2u8).modpow(&q, p), BigUint::from(1u8));
    }
}
