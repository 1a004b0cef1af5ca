//! The `ipsec` layer: see the layer map in `lib.rs`.

pub mod ah;
pub mod counters;
pub(crate) mod crypto;
pub mod esp;
pub mod filter;
mod gcm;
mod outer;
pub mod peek;
pub mod policy;
pub mod replay;
pub mod sa;
pub mod sad;
pub mod wireshark;

pub use ah::{open_ah, open_bundle, seal_ah, seal_bundle};
pub use counters::{DropCounters, DropReason, SaCounters};
pub use esp::{make_iv, open_esp, seal_esp, seal_esp_with_iv, OpenError, Opened, SealError};
pub use filter::{
    DenyReason, DynamicFilter, FilterLog, FilterOptions, FilterPacket, FilterRow, FilterTable,
    FilterType, InstallError, PacketDirection, PacketRouting, SaPair, Verdict,
};
pub use outer::OuterView;
pub use peek::{
    locate, locate_in, peek, peek_bundle, peek_bundle_in, peek_in, BundlePeek, PeekError,
    PeekResult, SaLocator,
};
pub use policy::{
    AddrSpec, Conditions, DataOffer, Direction, DynVpnAction, FilterAction, FilterRule, Initiation,
    ManVpnAction, PolicyError, PortSpec, ProtocolSpec, Routing, RuleSet, RuleSetError, TcpConnect,
};
pub use replay::{ReplayError, ReplayWindow};
pub use sa::{
    AddrRange, EncAlg, IntegAlg, Key, Lifetime, Lifetimes, Mode, PortRange, Protocol, Sa, SaConfig,
    SaError, Spi, TrafficSelector, UdpEncap,
};
pub use sad::{
    open_bundle_counted, seal_bundle_counted, Expiry, InboundSa, InboundSad, OutboundSa, SaId,
};
pub use wireshark::esp_sa_uat;
