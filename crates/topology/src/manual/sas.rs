//! The SA pair of a manual SA: per direction the ESP SA, the AH SA or
//! both (`ah+esp`), with their keys, and the engine's own checks on them.

use super::super::error::ErrorKind;
use super::super::file::ManualSaDef;
use super::super::model::{ManualProtocol, SaBundle};
use super::super::resolve::Resolver;
use super::algorithms::Algs;
use super::spis::{key_def, Dir};
use super::{derive_key, enc_name, integ_name, KeyUsage, NAT_T_PORT};
use plexnet_core::ipsec::{
    EncAlg, IntegAlg, Key, Lifetimes, Protocol, Sa, SaConfig, Spi, TrafficSelector, UdpEncap,
};
use std::net::{IpAddr, Ipv4Addr};

/// What every SA of one manual SA shares.
pub(super) struct SaParts<'a> {
    pub(super) def: &'a ManualSaDef,
    /// `secret`, from which keys not given in hex are derived.
    pub(super) secret: Option<&'a str>,
    pub(super) algs: Algs,
    pub(super) replay_window: u32,
    pub(super) lifetimes: Lifetimes,
    pub(super) client_addr: Ipv4Addr,
    pub(super) dvipa: Ipv4Addr,
}

impl SaParts<'_> {
    /// The SAs of direction `dir` with its main SPI and, for `ah+esp`, the
    /// AH SA's; `None` after a key error.
    pub(super) fn bundle(
        &self,
        r: &mut Resolver<'_>,
        dir: Dir,
        main_spi: Spi,
        ah_spi: Option<Spi>,
    ) -> Option<SaBundle> {
        let algs = self.algs;
        let base = self.base(dir, main_spi);
        // Which SA carries encryption and which integrity.
        let (esp_spi, integ_spi, integ_on_ah) = match algs.protocol {
            ManualProtocol::Esp => (Some(main_spi), main_spi, false),
            ManualProtocol::Ah => (None, main_spi, true),
            ManualProtocol::AhEsp => (Some(main_spi), ah_spi.unwrap_or(main_spi), true),
        };
        let enc_key = match esp_spi {
            Some(spi) => self.key(
                r,
                dir,
                (KeyUsage::Enc, enc_name(algs.enc)),
                algs.enc.key_len(),
                spi,
            ),
            None => self.unused_enc_key(r, dir),
        };
        let integ_key = self.key(
            r,
            dir,
            (KeyUsage::Integ, integ_name(algs.integ)),
            algs.integ.key_len(),
            integ_spi,
        );
        let (Some(enc_key), Some(integ_key)) = (enc_key, integ_key) else {
            return None;
        };
        let esp = esp_spi.map(|spi| SaConfig {
            spi,
            enc: algs.enc,
            enc_key: enc_key.clone(),
            integ: if integ_on_ah {
                IntegAlg::None
            } else {
                algs.integ
            },
            integ_key: if integ_on_ah {
                Key::default()
            } else {
                integ_key.clone()
            },
            ..base.clone()
        });
        let ah = integ_on_ah.then(|| SaConfig {
            spi: integ_spi,
            protocol: Protocol::Ah,
            enc: EncAlg::Null,
            enc_key: Key::default(),
            integ: algs.integ,
            integ_key: integ_key.clone(),
            udp_encap: None,
            ..base.clone()
        });
        Some(SaBundle { esp, ah })
    }

    /// What the SAs of direction `dir` share: ends, mode, limits, UDP
    /// encapsulation; no algorithms yet.
    fn base(&self, dir: Dir, spi: Spi) -> SaConfig {
        let (src, dst) = match dir {
            Dir::ToDvipa => (self.client_addr, self.dvipa),
            Dir::ToClient => (self.dvipa, self.client_addr),
        };
        SaConfig {
            spi,
            protocol: Protocol::Esp,
            mode: self.algs.mode,
            src: IpAddr::V4(src),
            dst: IpAddr::V4(dst),
            enc: EncAlg::Null,
            enc_key: Key::default(),
            integ: IntegAlg::None,
            integ_key: Key::default(),
            esn: false,
            replay_window: self.replay_window,
            lifetimes: self.lifetimes,
            udp_encap: self.algs.udp_encap.then_some(UdpEncap {
                src_port: NAT_T_PORT,
                dst_port: NAT_T_PORT,
            }),
            selector: TrafficSelector::hosts(IpAddr::V4(src), IpAddr::V4(dst)),
        }
    }

    /// Protocol `ah` has no encryption: an encryption key is an error.
    fn unused_enc_key(&self, r: &mut Resolver<'_>, dir: Dir) -> Option<Key> {
        match key_def(self.def, dir, KeyUsage::Enc) {
            Some(v) => {
                r.err(
                    v.span().start,
                    ErrorKind::UnusedKey {
                        field: dir.key_field(KeyUsage::Enc),
                        why: "protocol ah does not encrypt".to_owned(),
                    },
                );
                None
            }
            None => Some(Key::default()),
        }
    }

    /// The key for one algorithm of one direction: hex from the file, else
    /// derived from the secret. `None` after an error; an empty key when the
    /// algorithm needs none.
    fn key(
        &self,
        r: &mut Resolver<'_>,
        dir: Dir,
        (usage, alg): (KeyUsage, &'static str),
        len: usize,
        spi: Spi,
    ) -> Option<Key> {
        let field = dir.key_field(usage);
        let given = key_def(self.def, dir, usage);
        if len == 0 {
            if let Some(v) = given {
                let why = match usage {
                    KeyUsage::Enc => format!("encryption {alg} takes no key"),
                    KeyUsage::Integ => format!("integrity {alg} takes no key"),
                };
                r.err(v.span().start, ErrorKind::UnusedKey { field, why });
                return None;
            }
            return Some(Key::default());
        }
        match (given, self.secret) {
            (Some(v), _) => {
                let Some(k) = Key::from_hex(v.get_ref()) else {
                    r.err(v.span().start, ErrorKind::BadKeyHex { field });
                    return None;
                };
                if k.0.len() != len {
                    r.err(
                        v.span().start,
                        ErrorKind::KeyLength {
                            field,
                            alg,
                            got: k.0.len(),
                            want: len,
                        },
                    );
                    return None;
                }
                Some(k)
            }
            (None, Some(secret)) => Some(derive_key(secret, spi, usage, len)),
            (None, None) => {
                r.err(
                    self.def.client.span().start,
                    ErrorKind::MissingKey {
                        what: dir.key_what(usage),
                        field,
                    },
                );
                None
            }
        }
    }
}

/// Every SA must also pass the engine's own checks; the rules of this
/// module make this hold, and a failure is reported rather than shipped.
pub(super) fn engine_accepts(
    r: &mut Resolver<'_>,
    def: &ManualSaDef,
    bundles: &[SaBundle],
) -> bool {
    let Some(e) = bundles
        .iter()
        .flat_map(|b| b.sas())
        .find_map(|c| Sa::new(c.clone()).err())
    else {
        return true;
    };
    r.err(
        def.client.span().start,
        ErrorKind::Combination {
            problem: e.to_string(),
            allowed: "algorithms and keys the IPsec engine accepts",
        },
    );
    false
}
