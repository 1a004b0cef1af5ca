//! The SPIs of manual SAs: the fields that give them, the directions and
//! slots (the AH SA of `ah+esp`) they key, and the defaults of the module
//! documentation.

use super::super::error::{line_col, ErrorKind};
use super::super::file::ManualSaDef;
use super::super::model::ManualProtocol;
use super::super::resolve::Resolver;
use super::{KeyUsage, DEFAULT_SPI_BASE};
use plexnet_core::ipsec::Spi;
use std::collections::HashMap;
use toml::Spanned;

/// Which SAs a manual SA has per direction, and their SPI fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// The ESP SA, or the AH SA of protocol `ah`.
    Main,
    /// The AH SA of `ah+esp`.
    BundleAh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dir {
    ToDvipa,
    ToClient,
}

impl Dir {
    pub(super) const BOTH: [Dir; 2] = [Dir::ToDvipa, Dir::ToClient];

    pub(super) fn spi_field(self, slot: Slot) -> &'static str {
        match (self, slot) {
            (Dir::ToDvipa, Slot::Main) => "spi_to_dvipa",
            (Dir::ToClient, Slot::Main) => "spi_to_client",
            (Dir::ToDvipa, Slot::BundleAh) => "ah_spi_to_dvipa",
            (Dir::ToClient, Slot::BundleAh) => "ah_spi_to_client",
        }
    }

    pub(super) fn key_field(self, usage: KeyUsage) -> &'static str {
        match (self, usage) {
            (Dir::ToDvipa, KeyUsage::Enc) => "enc_key_to_dvipa",
            (Dir::ToDvipa, KeyUsage::Integ) => "integ_key_to_dvipa",
            (Dir::ToClient, KeyUsage::Enc) => "enc_key_to_client",
            (Dir::ToClient, KeyUsage::Integ) => "integ_key_to_client",
        }
    }

    pub(super) fn key_what(self, usage: KeyUsage) -> &'static str {
        match (self, usage) {
            (Dir::ToDvipa, KeyUsage::Enc) => "encryption client to DVIPA",
            (Dir::ToDvipa, KeyUsage::Integ) => "integrity client to DVIPA",
            (Dir::ToClient, KeyUsage::Enc) => "encryption DVIPA to client",
            (Dir::ToClient, KeyUsage::Integ) => "integrity DVIPA to client",
        }
    }

    /// The default SPI offset `k` of the module documentation.
    fn spi_offset(self, slot: Slot) -> u32 {
        match (self, slot) {
            (Dir::ToDvipa, Slot::Main) => 1,
            (Dir::ToClient, Slot::Main) => 2,
            (Dir::ToDvipa, Slot::BundleAh) => 3,
            (Dir::ToClient, Slot::BundleAh) => 4,
        }
    }
}

fn spi_def(def: &ManualSaDef, dir: Dir, slot: Slot) -> Option<&Spanned<i64>> {
    match (dir, slot) {
        (Dir::ToDvipa, Slot::Main) => def.spi_to_dvipa.as_ref(),
        (Dir::ToClient, Slot::Main) => def.spi_to_client.as_ref(),
        (Dir::ToDvipa, Slot::BundleAh) => def.ah_spi_to_dvipa.as_ref(),
        (Dir::ToClient, Slot::BundleAh) => def.ah_spi_to_client.as_ref(),
    }
}

pub(super) fn key_def(def: &ManualSaDef, dir: Dir, usage: KeyUsage) -> Option<&Spanned<String>> {
    match (dir, usage) {
        (Dir::ToDvipa, KeyUsage::Enc) => def.enc_key_to_dvipa.as_ref(),
        (Dir::ToDvipa, KeyUsage::Integ) => def.integ_key_to_dvipa.as_ref(),
        (Dir::ToClient, KeyUsage::Enc) => def.enc_key_to_client.as_ref(),
        (Dir::ToClient, KeyUsage::Integ) => def.integ_key_to_client.as_ref(),
    }
}

/// Every SPI the file gives, checked: only with `ah+esp` for the AH slots,
/// in range, and once among all manual SAs (reported at the later one).
/// Returns each with where it is written, for the defaults to avoid.
pub(super) fn explicit_spis(r: &mut Resolver<'_>, defs: &[ManualSaDef]) -> HashMap<u32, usize> {
    let mut used: HashMap<u32, usize> = HashMap::new();
    for def in defs {
        let protocol = def
            .protocol
            .as_ref()
            .and_then(|p| parse_protocol(p.get_ref()));
        for dir in Dir::BOTH {
            for slot in [Slot::Main, Slot::BundleAh] {
                if let Some(v) = spi_def(def, dir, slot) {
                    explicit_spi(r, v, dir, slot, protocol, &mut used);
                }
            }
        }
    }
    used
}

/// One SPI field of the file.
fn explicit_spi(
    r: &mut Resolver<'_>,
    v: &Spanned<i64>,
    dir: Dir,
    slot: Slot,
    protocol: Option<ManualProtocol>,
    used: &mut HashMap<u32, usize>,
) {
    let at = v.span().start;
    if slot == Slot::BundleAh && protocol != Some(ManualProtocol::AhEsp) {
        r.err(
            at,
            ErrorKind::AhSpiWithoutBundle {
                field: dir.spi_field(slot),
                protocol: protocol.unwrap_or(ManualProtocol::Esp).as_str(),
            },
        );
        return;
    }
    let value = *v.get_ref();
    let Some(spi) = spi_value(value) else {
        r.err(at, ErrorKind::SpiOutOfRange { value });
        return;
    };
    if let Some(&first) = used.get(&spi) {
        let first_line = line_col(r.src, first).0;
        r.err(at, ErrorKind::DuplicateSpi { spi, first_line });
        return;
    }
    used.insert(spi, at);
}

/// The SPIs of manual SA `index` per direction: the main SA's, and with
/// `ah+esp` the AH SA's; given or default.
pub(super) fn sa_spis(
    def: &ManualSaDef,
    used: &mut HashMap<u32, usize>,
    index: usize,
    protocol: ManualProtocol,
) -> Vec<(Dir, Spi, Option<Spi>)> {
    let mut spi_of = |dir: Dir, slot: Slot| -> Spi {
        match spi_def(def, dir, slot).and_then(|v| spi_value(*v.get_ref())) {
            Some(s) => Spi(s),
            None => Spi(default_spi(used, index, dir, slot)),
        }
    };
    Dir::BOTH
        .iter()
        .map(|&dir| {
            let main = spi_of(dir, Slot::Main);
            let ah = (protocol == ManualProtocol::AhEsp).then(|| spi_of(dir, Slot::BundleAh));
            (dir, main, ah)
        })
        .collect()
}

/// `protocol`: esp, ah or ah+esp.
pub(super) fn parse_protocol(s: &str) -> Option<ManualProtocol> {
    match s {
        "esp" => Some(ManualProtocol::Esp),
        "ah" => Some(ManualProtocol::Ah),
        "ah+esp" => Some(ManualProtocol::AhEsp),
        _ => None,
    }
}

/// An SPI a file may give: 256 to 2^32 - 1 (RFC 4303 §2.1).
fn spi_value(v: i64) -> Option<u32> {
    u32::try_from(v).ok().filter(|s| *s >= 256)
}

/// The default SPI of manual SA `index` (0-based), moved up past used values.
fn default_spi(used: &mut HashMap<u32, usize>, index: usize, dir: Dir, slot: Slot) -> u32 {
    let n = (index as u32).wrapping_add(1);
    let mut spi = DEFAULT_SPI_BASE
        .wrapping_add(n.wrapping_mul(16))
        .wrapping_add(dir.spi_offset(slot));
    while spi < 256 || used.contains_key(&spi) {
        spi = spi.wrapping_add(0x0100_0000);
    }
    used.insert(spi, 0);
    spi
}
