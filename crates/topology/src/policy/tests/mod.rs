//! Unit tests of the Policy Agent parser: every statement, and every
//! located error with its line and column.

use super::super::error::line_col;
use super::super::test_support::{only_error, word_at};
use super::*;
use std::net::Ipv4Addr;

/// Parses `text` with lines counted in `text` itself.
fn parse(text: &str) -> (ParsedPolicy, Vec<RawError>) {
    super::parse(text, &|at| line_col(text, at).0)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("test address")
}

/// A small complete policy: one rule requiring IPsec, one permit, one
/// deny, and a key-exchange rule. Tests replace pieces of it.
const BASE: &str = "\
IpFilterRule web
{
  IpSourceAddr 198.18.0.100
  IpDestAddr 198.18.1.0/24
  IpService
  {
    Protocol Tcp
    SourcePortRange 80
    DestinationPortRange 1024 65535
    Direction Bidirectional InboundConnect
    Routing Local
  }
  IpGenericFilterActionRef ipsec
  IpDynVpnActionRef esp
}
IpFilterRule ike
{
  IpSourceAddr 198.18.0.100
  IpServiceRef ike
  IpGenericFilterActionRef permit
}
IpFilterRule rest
{
  IpServiceRef all
  IpGenericFilterActionRef deny
}
IpService ike
{
  Protocol udp
  SourcePortRange 500
}
IpService all
{
  Protocol All
}
IpGenericFilterAction ipsec
{
  IpFilterAction IpSec
}
IpGenericFilterAction permit
{
  IpFilterAction Permit
}
IpGenericFilterAction deny
{
  IpFilterAction Deny
  IpFilterLogging Yes
}
IpDynVpnAction esp
{
  Initiation Either
  IpDataOfferRef cbc
  IpDataOffer
  {
    HowToEncrypt AES_GCM_16 KeyLength 128
    HowToAuth ESP Null
  }
}
IpDataOffer cbc
{
  HowToEncap Tunnel
  HowToEncrypt AES_CBC KeyLength 128
  HowToAuth ESP HMAC_SHA1
  RefreshLifetimeProposed 60
  RefreshLifesizeProposed 1000
}
KeyExchangeRule clients
{
  LocalSecurityEndpoint
  {
    Identity IpAddr 198.18.0.100
    Location 198.18.0.100
  }
  RemoteSecurityEndpointRef net1
  KeyExchangeActionRef ikev2
  SharedKey Ascii plexnet-figure4
}
RemoteSecurityEndpoint net1
{
  Identity IpAddr 198.18.1.0/24
  Location 198.18.1.0/24
}
KeyExchangeAction ikev2
{
  HowToInitiate IKEv2
  HowToRespond Either
  HowToAuthMe PresharedKey
  KeyExchangeOfferRef ike1
}
KeyExchangeOffer ike1
{
  HowToEncrypt AES_CBC KeyLength 128
  HowToVerifyMsgs HMAC_SHA1_96
  PseudoRandomFunction HMAC_SHA1
  HowToAuthPeers PresharedKey
  DHGroup Group14
  RefreshLifetimeProposed 240
}
";

fn ok(text: &str) -> ParsedPolicy {
    let (p, e) = parse(text);
    assert!(e.is_empty(), "unexpected errors {e:?}");
    p
}

/// BASE with `from` replaced by `to`.
fn base_with(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} not in BASE");
    BASE.replacen(from, to, 1)
}

/// The single error of `text`: the word it points at, its line and
/// column, and its message.
fn err(text: &str) -> (String, usize, usize, String) {
    let (at, kind) = only_error(parse(text).1);
    let (line, col) = line_col(text, at);
    (word_at(text, at), line, col, kind.to_string())
}

/// The error of BASE with `from` replaced by `to`, which must point at
/// the first word of `to` that is marked with `‸` (the mark is removed).
fn check(from: &str, to: &str, message: &str) {
    let mark = to.find('‸').expect("a mark");
    let text = base_with(from, &to.replacen('‸', "", 1));
    let at = BASE.find(from).expect("in BASE") + mark;
    let (_, line, col, m) = err(&text);
    assert_eq!(m, message);
    assert_eq!((line, col), line_col(&text, at), "position of: {message}");
}

/// BASE with a manual tunnel: rule `ike` becomes an IpSec rule with an
/// IpManVpnActionRef, and the IpManVpnAction is `action`.
fn manual(action: &str) -> String {
    let rule = base_with(
        "  IpServiceRef ike\n  IpGenericFilterActionRef permit\n",
        "  IpServiceRef ike\n  IpGenericFilterActionRef ipsec\n  IpManVpnActionRef man\n",
    );
    format!("{rule}{action}")
}

const MAN: &str = "\
IpManVpnAction man
{
  Active No
  LocalSecurityEndpointAddr 198.18.0.100
  RemoteSecurityEndpointAddr 198.18.1.2
}
";

/// The single error of `manual(action)`, which must point at the word
/// after `‸` in `action` (the mark is removed).
fn check_manual(action: &str, message: &str) {
    let text = manual(&action.replacen('‸', "", 1));
    let at = text.len() - action.len() + 3 + action.find('‸').expect("a mark");
    let (_, line, col, m) = err(&text);
    assert_eq!(m, message);
    assert_eq!((line, col), line_col(&text, at), "position of: {message}");
}

mod actions;
mod filters;
mod key_exchange;
