//! Sending requests and responses, and dispatching received messages to
//! the exchange they belong to (RFC 7296 §2.1, §2.2).

use core::net::SocketAddrV4;

use crate::ike::api::{DeleteReason, Direction, DropReason};
use crate::ike::sk::OpenError;
use crate::ike::trace::describe;
use crate::wire::ike::{ExchangeType, Header, IkeMessage, Notify, NotifyType, Payload};

use super::payloads::{notify, unknown_critical};
use super::{Ctx, IkeSa, Pending, Request, Response, State, Timer};

impl IkeSa {
    /// Makes `pending` our outstanding request and starts its
    /// retransmission timer (§2.1).
    pub(super) fn await_response(&mut self, ctx: &Ctx<'_>, pending: Pending) {
        self.timers
            .set(Timer::Retransmit, ctx.now + ctx.config.retransmit_timeout);
        self.pending = Some(pending);
    }

    /// Takes our outstanding request: it needs no retransmission any more.
    pub(super) fn take_pending(&mut self) -> Option<Pending> {
        self.timers.cancel(Timer::Retransmit);
        self.pending.take()
    }

    /// Encrypts and sends a request; it becomes the pending one.
    pub(super) fn send_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        exchange: ExchangeType,
        payloads: &[Payload],
        what: Request,
    ) {
        let msg_id = self.next_send_id;
        let header = self.header(exchange, false, msg_id);
        let Some(crypto) = &self.crypto else {
            return;
        };
        let Ok(bytes) = crypto.send.seal(&header, payloads, &mut ctx.rng) else {
            return;
        };
        self.trace(
            ctx,
            Direction::Sent,
            self.remote,
            describe(&header, payloads),
        );
        self.transmit(ctx, self.remote, self.local_port, &bytes);
        self.await_response(
            ctx,
            Pending {
                msg_id,
                datagram: bytes,
                tries: 0,
                what,
            },
        );
    }

    /// Encrypts and sends a response to the request `msg_id` from `to`,
    /// and keeps it for retransmissions.
    fn send_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        to: SocketAddrV4,
        local_port: u16,
        exchange: ExchangeType,
        msg_id: u32,
        payloads: &[Payload],
    ) {
        let header = self.header(exchange, true, msg_id);
        let Some(crypto) = &self.crypto else {
            return;
        };
        let Ok(bytes) = crypto.send.seal(&header, payloads, &mut ctx.rng) else {
            return;
        };
        self.trace(ctx, Direction::Sent, to, describe(&header, payloads));
        self.transmit(ctx, to, local_port, &bytes);
        self.cached = Some((msg_id, bytes));
    }

    // ---------------------------------------------------------------
    // Dispatch
    // ---------------------------------------------------------------

    /// Handles a message for this SA (not a responder's IKE_SA_INIT).
    pub fn on_message(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        local_port: u16,
        raw: &[u8],
        header: Header,
    ) -> Result<(), DropReason> {
        // The I flag names the original initiator (§3.1): it must be the peer.
        if header.flags.initiator() == self.initiator {
            return Err(DropReason::Unexpected("I flag"));
        }
        let r = if header.flags.response() {
            self.on_response(ctx, from, raw, header)
        } else {
            self.on_request(ctx, from, local_port, raw, header)
        };
        self.kick(ctx);
        r
    }

    fn on_response(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        raw: &[u8],
        header: Header,
    ) -> Result<(), DropReason> {
        match &self.pending {
            Some(p) if p.msg_id == header.message_id => {}
            _ => {
                return Err(DropReason::MessageId {
                    got: header.message_id,
                })
            }
        }
        if header.exchange_type == ExchangeType::IkeSaInit {
            let msg = IkeMessage::parse(raw)?;
            self.trace(
                ctx,
                Direction::Received,
                from,
                describe(&header, &msg.payloads),
            );
            return self.on_init_response(ctx, raw, msg);
        }
        let crypto = self.crypto.as_ref().ok_or(DropReason::Unexpected("SK"))?;
        let payloads = match crypto.recv.open(raw) {
            Ok((_, p)) => p,
            // An authentic response that does not parse: treat as an
            // empty one (§2.21.1 lets us give up on the exchange).
            Err(OpenError::Inner(_)) => Vec::new(),
            Err(e) => return Err(DropReason::Sk(e)),
        };
        self.trace(ctx, Direction::Received, from, describe(&header, &payloads));
        self.heard(ctx, from);
        let Some(pending) = self.take_pending() else {
            return Ok(());
        };
        self.next_send_id = self.next_send_id.wrapping_add(1);
        match pending.what {
            Request::Init => {}
            Request::Auth => self.on_auth_response(ctx, &payloads),
            Request::CreateChild(req) => self.on_child_response(ctx, *req, &payloads),
            Request::RekeyIke(req) => self.on_ike_rekey_response(ctx, *req, &payloads),
            Request::DeleteChildren(ids) => {
                for id in ids {
                    self.remove_child(ctx, id);
                }
            }
            Request::DeleteIke => {
                let reason = match self.state {
                    State::Rekeyed => None,
                    _ => Some(DeleteReason::Local),
                };
                self.finish(reason);
            }
            Request::Dpd => {}
        }
        Ok(())
    }

    /// Notes an authenticated message: liveness, and the peer's address
    /// when a NAT may have changed it (§2.23).
    fn heard(&mut self, ctx: &mut Ctx<'_>, from: SocketAddrV4) {
        if let Some(i) = ctx.config.dpd_interval {
            self.timers.set(Timer::Liveness, ctx.now + i);
        }
        if (self.nat_local || self.nat_remote) && from != self.remote {
            self.remote = from;
        }
    }

    /// A request from the peer (§1.4, §2.1, §2.2): a retransmission is
    /// answered from the cache, a new one by its exchange.
    fn on_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        local_port: u16,
        raw: &[u8],
        header: Header,
    ) -> Result<(), DropReason> {
        let id = header.message_id;
        if self.resend_cached(ctx, from, local_port, id) {
            return Ok(());
        }
        if id != self.next_recv_id {
            return Err(DropReason::MessageId { got: id });
        }
        let Some(payloads) = self.open_request(ctx, from, local_port, raw, &header)? else {
            return Ok(());
        };
        if local_port != self.local_port
            && (matches!(self.state, State::ExpectAuth(_)) || self.nat_local || self.nat_remote)
        {
            // The initiator moved to 4500 after NAT detection (§2.23).
            self.local_port = local_port;
        }
        self.trace(ctx, Direction::Received, from, describe(&header, &payloads));
        self.heard(ctx, from);
        self.next_recv_id = id.wrapping_add(1);
        let exchange = header.exchange_type;
        let Some(response) = self.answer(ctx, from, exchange, &payloads) else {
            self.next_recv_id = id;
            return Err(DropReason::Unexpected("exchange in this state"));
        };
        self.send_response(ctx, from, local_port, exchange, id, &response);
        Ok(())
    }

    /// Sends our cached response again if request `id` is a
    /// retransmission of the last one (§2.1).
    fn resend_cached(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        local_port: u16,
        id: u32,
    ) -> bool {
        let Some((cached_id, bytes)) = &self.cached else {
            return false;
        };
        if *cached_id != id || id.wrapping_add(1) != self.next_recv_id {
            return false;
        }
        let bytes = bytes.clone();
        let summary = format!("retransmit response {id}");
        self.trace(ctx, Direction::Sent, from, summary);
        self.transmit(ctx, from, local_port, &bytes);
        true
    }

    /// Decrypts a request; `None` when it was authentic but malformed
    /// inside and got INVALID_SYNTAX (§2.21.2).
    fn open_request(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        local_port: u16,
        raw: &[u8],
        header: &Header,
    ) -> Result<Option<Vec<Payload>>, DropReason> {
        let crypto = self.crypto.as_ref().ok_or(DropReason::Unexpected("SK"))?;
        match crypto.recv.open(raw) {
            Ok((_, p)) => Ok(Some(p)),
            Err(OpenError::Inner(_)) => {
                let id = header.message_id;
                let summary = "malformed inner payloads".into();
                self.trace(ctx, Direction::Received, from, summary);
                self.next_recv_id = id.wrapping_add(1);
                let resp = [notify(NotifyType::InvalidSyntax)];
                self.send_response(ctx, from, local_port, header.exchange_type, id, &resp);
                if matches!(self.state, State::ExpectAuth(_)) {
                    self.finish(None);
                }
                Ok(None)
            }
            Err(e) => Err(DropReason::Sk(e)),
        }
    }

    /// The response to a request by exchange and state; `None` for an
    /// exchange this state does not take.
    fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        from: SocketAddrV4,
        exchange: ExchangeType,
        payloads: &[Payload],
    ) -> Option<Response> {
        if let Some(t) = unknown_critical(payloads) {
            // §2.5: reject the whole message.
            if matches!(self.state, State::ExpectAuth(_)) {
                self.finish(None);
            }
            let n = Notify::new(NotifyType::UnsupportedCriticalPayload, vec![t]);
            return Some(vec![Payload::Notify(n)]);
        }
        let response = match (exchange, &self.state) {
            (ExchangeType::IkeAuth, State::ExpectAuth(_)) => {
                self.on_auth_request(ctx, from, payloads)
            }
            (ExchangeType::CreateChildSa, State::Established) => {
                self.on_create_child_request(ctx, payloads)
            }
            (ExchangeType::CreateChildSa, State::Rekeyed) => {
                vec![notify(NotifyType::TemporaryFailure)]
            }
            (ExchangeType::Informational, State::Established | State::Rekeyed) => {
                self.on_informational_request(ctx, from, payloads)
            }
            _ => return None,
        };
        Some(response)
    }
}
