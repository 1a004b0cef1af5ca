//! An image's IP security: its `profile` (PROFILE.TCPIP's IPCONFIG
//! IPSECURITY and IPSEC block, see [`profile`]) and its `ipsec_policy` (the
//! Policy Agent's statements, see [`policy`]), with their errors located in
//! the file.
//!
//! [`profile`]: super::super::profile
//! [`policy`]: super::super::policy

use super::super::error::{line_col, ErrorKind};
use super::super::file::ImageDef;
use super::super::model::*;
use super::super::source::StrMap;
use super::super::statement::RawError;
use super::super::{policy, profile};
use super::resolver::Resolver;
use toml::Spanned;

/// An image's `profile` and `ipsec_policy`, with their errors located in
/// the file. `None` without a `profile`.
pub(super) fn parse_image_security(r: &mut Resolver<'_>, def: &ImageDef) -> Option<IpSecurity> {
    let profile = def
        .profile
        .as_ref()
        .map(|text| parse_located(r, text, profile::parse));
    let policy = def.ipsec_policy.as_ref().map(|text| {
        let p = parse_located(r, text, policy::parse);
        if !profile.as_ref().is_some_and(|p| p.ipsecurity) {
            r.err(text.span().start, ErrorKind::PolicyWithoutIpsecurity);
        }
        IpSecPolicy {
            filter_rules: p.filter_rules,
            key_exchange_rules: p.key_exchange_rules,
        }
    });
    let profile = profile?;
    let block = profile.ipsec.unwrap_or_default();
    Some(IpSecurity {
        ipsecurity: profile.ipsecurity,
        dvipsec: block.dvipsec,
        dvlocalfltr: block.dvlocalfltr,
        log_enable: block.log_enable,
        log_implicit: block.log_implicit,
        default_rules: block.rules,
        policy,
    })
}

/// The parser's signature for a text whose messages may cite lines of the
/// file (`line_of` maps an offset in the text to a line of the file).
type Parser<T> = fn(&str, &dyn Fn(usize) -> usize) -> (T, Vec<RawError>);

/// Parses a string of the file with `parse`, reporting its errors at their
/// places in the file.
fn parse_located<T>(r: &mut Resolver<'_>, text: &Spanned<String>, parse: Parser<T>) -> T {
    let map = StrMap::new(r.src, text.span(), text.get_ref());
    let src = r.src;
    let (parsed, errors) = parse(text.get_ref(), &|at| line_col(src, map.file_offset(at)).0);
    for (at, kind) in errors {
        r.err(map.file_offset(at), kind);
    }
    parsed
}
