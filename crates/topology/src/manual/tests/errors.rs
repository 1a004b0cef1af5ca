//! Manual SAs that do not load: combinations, SPIs, keys, limits.

use super::*;

#[test]
fn combinations() {
    check(
        &with("protocol = \"ah\"\nencryption = ‸\"aes128-cbc\""),
        "protocol ah does not encrypt, but encryption = \"aes128-cbc\" is given; allowed: no `encryption` with protocol = \"ah\"; protocol = \"esp\" or \"ah+esp\" to encrypt",
    );
    check(
        &with("encryption = \"aes128-gcm16\"\nintegrity = ‸\"hmac-sha1-96\""),
        "aes128-gcm16 carries its own ICV, but integrity = \"hmac-sha1-96\" is given; allowed: no `integrity` (or \"none\") with AES-GCM",
    );
    check(
        &with("encryption = \"aes256-cbc\"\nintegrity = ‸\"none\""),
        "ESP with aes256-cbc and no integrity accepts forged packets; allowed: an integrity algorithm, or AES-GCM encryption",
    );
    check(
        &with("protocol = \"ah+esp\"\nencryption = ‸\"null\""),
        "ah+esp with null encryption adds nothing to AH; allowed: an encrypting algorithm with ah+esp, or protocol = \"ah\"",
    );
    check(
        &with("protocol = \"ah\"\nintegrity = ‸\"none\""),
        "AH needs integrity, but integrity = \"none\" is given; allowed: an HMAC integrity algorithm with ah and ah+esp",
    );
    check(
        &with("protocol = \"ah+esp\"\nudp_encap = ‸true"),
        "udp_encap = true with protocol ah+esp; allowed: udp_encap only with protocol = \"esp\" (RFC 3948 encapsulates ESP only)",
    );
}

#[test]
fn spis() {
    let range = "allowed: 256 to 4294967295 (0x100 to 0xffffffff; 0 is never sent and 1 to 255 are reserved, RFC 4303 §2.1)";
    check(
        &with("spi_to_dvipa = ‸255"),
        &format!("SPI 255 is out of range; {range}"),
    );
    check(
        &with("spi_to_client = ‸0x100000000"),
        &format!("SPI 4294967296 is out of range; {range}"),
    );
    check(
        &with("spi_to_dvipa = 0x1000\nspi_to_client = ‸4096"),
        "SPI 0x00001000 is used twice (first at line 21); allowed: every manual SPI unique, in both directions",
    );
    // Across manual SAs too.
    let text = format!(
        "{}[[manual_sa]]\nclient = \"client1\"\ndvipa = \"198.18.0.101\"\nsecret = \"x\"\nspi_to_client = ‸0x1000\n",
        with("spi_to_dvipa = 0x1000")
    );
    check(
        &text,
        "SPI 0x00001000 is used twice (first at line 21); allowed: every manual SPI unique, in both directions",
    );
    check(
        &with("ah_spi_to_dvipa = ‸0x1000"),
        "`ah_spi_to_dvipa` is only used with protocol = \"ah+esp\"; allowed: `spi_to_dvipa` and `spi_to_client` for protocol esp",
    );
}

#[test]
fn keys() {
    check(
        &with("enc_key_to_dvipa = ‸\"00112233445566778899aabbccddeeff0\""),
        "`enc_key_to_dvipa` is not hex; allowed: an even number of hex digits, optionally after 0x",
    );
    check(
        &with("integ_key_to_client = ‸\"00112233445566778899aabbccddeeff\""),
        "`integ_key_to_client` is 16 bytes, hmac-sha1-96 needs 20; allowed: 40 hex digits",
    );
    check(
        &with("encryption = \"aes128-gcm16\"\nenc_key_to_client = ‸\"00112233445566778899aabbccddeeff\""),
        "`enc_key_to_client` is 16 bytes, aes128-gcm16 needs 20; allowed: 40 hex digits",
    );
    check(
        &with("encryption = \"aes128-gcm16\"\ninteg_key_to_dvipa = ‸\"0011\""),
        "`integ_key_to_dvipa` is given, but integrity none takes no key; allowed: keys only for the algorithms in use",
    );
    check(
        &with("protocol = \"ah\"\nenc_key_to_dvipa = ‸\"0011\""),
        "`enc_key_to_dvipa` is given, but protocol ah does not encrypt; allowed: keys only for the algorithms in use",
    );
    check(
        &BASE.replace("secret = \"s3cret\"", "secret = ‸\"\""),
        "the secret is empty; allowed: a non-empty string",
    );
    check(
        &BASE
            .replace("secret = \"s3cret\"\n", "")
            .replace("client = \"client1\"", "client = ‸\"client1\""),
        "no key for encryption client to DVIPA; allowed: `secret = \"...\"` to derive every key, or `enc_key_to_dvipa` in hex",
    );
}

#[test]
fn keys_without_secret_when_all_given() {
    let text = BASE.replace("secret = \"s3cret\"\n", "")
        + "protocol = \"ah\"\ninteg_key_to_dvipa = \"0000000000000000000000000000000000000001\"\ninteg_key_to_client = \"0000000000000000000000000000000000000002\"\n";
    let t = load(&text).expect("loads");
    let m = only(&t);
    assert_eq!(m.to_client.ah.as_ref().map(|a| a.integ_key.0[19]), Some(2));
}

#[test]
fn replay_window_and_lifetimes() {
    check(
        &with("replay_window = ‸0"),
        "replay_window 0 is out of range; allowed: 1 to 1048576 packets",
    );
    check(
        &with("lifetime = { hard_packets = ‸5000000000 }"),
        "hard_packets = 5000000000 is out of range; allowed: 1 to 4294967295 (leave it out for no limit)",
    );
    check(
        &with("lifetime = { soft_seconds = ‸-1 }"),
        "soft_seconds = -1 is out of range; allowed: 1 to 9223372036854775807 (leave it out for no limit)",
    );
    check(
        &with("lifetime = { soft_bytes = ‸200, hard_bytes = 100 }"),
        "soft_bytes = 200 is above hard_bytes = 100; allowed: a soft limit at or below the hard one",
    );
    check(
        &with("lifetime = { hard_packets = 10, soft_packets = ‸11 }"),
        "soft_packets = 11 is above hard_packets = 10; allowed: a soft limit at or below the hard one",
    );
}

#[test]
fn unknown_keys_are_located() {
    check(
        &with("‸spi_out = 1"),
        "unknown field `spi_out`, expected one of `client`, `dvipa`, `protocol`, `mode`, `encryption`, `integrity`, `udp_encap`, `spi_to_dvipa`, `spi_to_client`, `ah_spi_to_dvipa`, `ah_spi_to_client`, `secret`, `enc_key_to_dvipa`, `integ_key_to_dvipa`, `enc_key_to_client`, `integ_key_to_client`, `replay_window`, `lifetime`",
    );
}
