//! One IKE SA and its child SAs: the exchanges after the responder's
//! IKE_SA_INIT (which [`Ike`](crate::ike::Ike) handles statelessly until it
//! commits to state), driven by messages, timers and commands.
//!
//! States are named by what they expect next and taken by value
//! (`mem::replace` with [`State::Dead`]) when a message moves them on.
//!
//! One submodule per exchange (RFC 7296 §1): [`init`] (IKE_SA_INIT,
//! initiator), [`auth`] (IKE_AUTH), [`child`] and [`install`] (child SAs by
//! IKE_AUTH or CREATE_CHILD_SA), [`rekey`] (CREATE_CHILD_SA rekeying child
//! SAs and the IKE SA) and [`informational`] (delete, liveness). Around
//! them: [`dispatch`] (sending, retransmitted requests, routing a message
//! to its exchange), [`tasks`] (the requests we start, one at a time) and
//! [`timers`], the one table of every deadline the SA keeps.

mod auth;
mod child;
mod context;
mod dispatch;
mod informational;
mod init;
mod install;
mod payloads;
mod rekey;
mod state;
mod tasks;
mod timers;

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};

use crate::ike::api::{ChildSaId, DeleteReason, Direction, IkeSaId, TraceRecord, Transmit};
use crate::ike::config::PeerConfig;
use crate::ike::ident::Identity;
use crate::ike::natt::udp_payload;
use crate::wire::ike::{ExchangeType, Flags, Header, Payload};

pub(crate) use context::{Ctx, Outputs};
pub(crate) use init::stateless_init_response;
pub(crate) use payloads::{find_ke, find_nonce, find_notifies, find_sa, unknown_critical};
pub(crate) use state::{
    Child, ChildRequest, ChildState, ExpectAuth, ExpectAuthResponse, ExpectInitResponse, IkeCrypto,
    IkeRekeyRequest, Negotiated, Pending, Request, State, Task,
};
pub(crate) use timers::{ChildTimer, Timer, Timers};

/// Nonce length we send: 32 octets, at least half the PRF key size of
/// every PRF we have (RFC 7296 §2.10).
pub(crate) const NONCE_LEN: usize = 32;
/// Nonce lengths we accept (RFC 7296 §3.9: 16 to 256 octets).
pub(crate) const NONCE_RANGE: core::ops::RangeInclusive<usize> = 16..=256;
/// How long an IKE SA that was rekeyed waits for the DELETE of the peer
/// before it is dropped anyway.
const REKEYED_LINGER: Duration = Duration::from_secs(30);

/// Outcome of processing a request: the payloads of the response.
type Response = Vec<Payload>;

pub(crate) struct IkeSa {
    pub id: IkeSaId,
    /// Whether we are the original initiator (the I flag, §3.1).
    pub initiator: bool,
    pub spi_i: u64,
    pub spi_r: u64,
    pub local_port: u16,
    pub remote: SocketAddrV4,
    pub nat_local: bool,
    pub nat_remote: bool,
    pub peer: Option<PeerConfig>,
    pub remote_id: Option<Identity>,
    pub state: State,
    pub crypto: Option<IkeCrypto>,
    pub next_send_id: u32,
    pub next_recv_id: u32,
    /// Our last response, for retransmitted requests (§2.1).
    pub cached: Option<(u32, Vec<u8>)>,
    pub pending: Option<Pending>,
    pub queue: VecDeque<Task>,
    pub children: BTreeMap<ChildSaId, Child>,
    /// Every deadline of this SA and its children.
    pub timers: Timers,
    /// Set when the endpoint must remove this SA; the reason is `None` for
    /// a silent removal (half-open, superseded).
    pub remove: Option<Option<DeleteReason>>,
    /// The IKE_SA_INIT request index key (responder).
    pub init_key: Option<(SocketAddrV4, u64)>,
}

impl IkeSa {
    /// A new SA with nothing negotiated.
    pub fn new(
        id: IkeSaId,
        initiator: bool,
        spi_i: u64,
        remote: SocketAddrV4,
        local_port: u16,
        state: State,
    ) -> IkeSa {
        IkeSa {
            id,
            initiator,
            spi_i,
            spi_r: 0,
            local_port,
            remote,
            nat_local: false,
            nat_remote: false,
            peer: None,
            remote_id: None,
            state,
            crypto: None,
            next_send_id: 0,
            next_recv_id: 0,
            cached: None,
            pending: None,
            queue: VecDeque::new(),
            children: BTreeMap::new(),
            timers: Timers::default(),
            remove: None,
            init_key: None,
        }
    }

    /// Our SPI: the one incoming messages are looked up by.
    pub fn local_spi(&self) -> u64 {
        if self.initiator {
            self.spi_i
        } else {
            self.spi_r
        }
    }

    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established)
    }

    fn local_addr(&self, ctx: &Ctx<'_>) -> SocketAddrV4 {
        SocketAddrV4::new(ctx.local_ip, self.local_port)
    }

    fn header(&self, exchange: ExchangeType, response: bool, message_id: u32) -> Header {
        let mut flags = 0;
        if self.initiator {
            flags |= Flags::INITIATOR;
        }
        if response {
            flags |= Flags::RESPONSE;
        }
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            major_version: 2,
            minor_version: 0,
            exchange_type: exchange,
            flags: Flags(flags),
            message_id,
        }
    }

    /// Removes the SA when the current call returns.
    fn finish(&mut self, reason: Option<DeleteReason>) {
        self.state = State::Dead;
        self.take_pending();
        self.queue.clear();
        self.remove = Some(reason);
    }

    fn transmit(&self, ctx: &mut Ctx<'_>, to: SocketAddrV4, local_port: u16, ike: &[u8]) {
        ctx.out.transmits.push_back(Transmit {
            remote: to,
            local_port,
            payload: udp_payload(local_port, ike),
        });
    }

    fn trace(&self, ctx: &mut Ctx<'_>, dir: Direction, remote: SocketAddrV4, summary: String) {
        let (at, local) = (ctx.now, self.local_addr(ctx));
        ctx.out.trace(|| TraceRecord {
            at,
            direction: dir,
            local,
            remote,
            summary,
        });
    }
}
