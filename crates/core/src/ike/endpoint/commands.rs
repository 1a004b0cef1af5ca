//! Commands: initiating an IKE SA (RFC 7296 §1.2), rekeying (§1.3.2,
//! §1.3.3) and deleting (§1.4.1) SAs, liveness checks (§1.4), and the
//! lifesize counts that rekey or expire child SAs (§2.8).

use core::net::SocketAddrV4;

use rand_core::{CryptoRng, RngCore};

use super::Ike;
use crate::ike::api::{ChildSaId, CommandError, IkeSaId};
use crate::ike::config::PeerConfig;
use crate::ike::dh::DhGroup;
use crate::ike::natt::IKE_PORT;
use crate::ike::sa::{Ctx, ExpectInitResponse, IkeSa, State, Task};
use crate::time::Instant;

impl Ike {
    /// Starts an IKE SA with `remote` (port 500) for `peer` (§1.2); its
    /// first child SA comes with IKE_AUTH.
    pub fn initiate<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        remote: SocketAddrV4,
        peer: PeerConfig,
        rng: &mut R,
    ) -> IkeSaId {
        let id = IkeSaId(self.next_ike);
        self.next_ike = self.next_ike.wrapping_add(1);
        let config = &self.config;
        let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
        let spi = ctx.ike_spi();
        let group = config
            .ike_proposals
            .iter()
            .find_map(|p| p.dh.first().copied())
            .unwrap_or(DhGroup::Curve25519);
        let init = Box::new(ExpectInitResponse {
            dh: ctx.dh(group),
            ni: ctx.nonce(),
            cookie: None,
            request: Vec::new(),
        });
        let mut sa = IkeSa::new(id, true, spi, remote, remote.port(), State::Dead);
        sa.local_port = IKE_PORT;
        sa.peer = Some(peer);
        sa.send_init_request(&mut ctx, init);
        self.sas.insert(spi, sa);
        self.settle(spi);
        id
    }

    fn command<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        spi: u64,
        rng: &mut R,
        f: impl FnOnce(&mut IkeSa, &mut Ctx<'_>),
    ) {
        let config = &self.config;
        if let Some(sa) = self.sas.get_mut(&spi) {
            let mut ctx = Self::ctx(config, &mut self.out, rng, now, self.local_ip);
            f(sa, &mut ctx);
            sa.kick(&mut ctx);
        }
        self.settle(spi);
    }

    /// Queues `task` on the IKE SA `spi` and lets it start (the commands
    /// below).
    fn enqueue<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        spi: u64,
        task: Task,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        self.command(now, spi, rng, |sa, _| sa.enqueue(task));
        Ok(())
    }

    fn established_spi(&self, id: IkeSaId) -> Result<u64, CommandError> {
        let spi = self.current_spi(id).ok_or(CommandError::UnknownIkeSa)?;
        match self.sas.get(&spi) {
            Some(sa) if sa.is_established() => Ok(spi),
            _ => Err(CommandError::NotEstablished),
        }
    }

    /// Rekeys a child SA (CREATE_CHILD_SA with REKEY_SA, §1.3.3).
    pub fn rekey_child<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        child: ChildSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self
            .child_spi_owner(child)
            .ok_or(CommandError::UnknownChildSa)?;
        self.enqueue(now, spi, Task::RekeyChild(child), rng)
    }

    /// Deletes a child SA (INFORMATIONAL with Delete, §1.4.1).
    pub fn delete_child<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        child: ChildSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self
            .child_spi_owner(child)
            .ok_or(CommandError::UnknownChildSa)?;
        self.enqueue(now, spi, Task::DeleteChild(child), rng)
    }

    /// Rekeys the IKE SA (§1.3.2); the handle stays.
    pub fn rekey_ike<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        id: IkeSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self.established_spi(id)?;
        self.enqueue(now, spi, Task::RekeyIke, rng)
    }

    /// Deletes the IKE SA and with it its children (§1.4.1).
    pub fn delete_ike<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        id: IkeSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self.established_spi(id)?;
        self.enqueue(now, spi, Task::DeleteIke, rng)
    }

    /// A liveness check: an empty INFORMATIONAL request (§1.4).
    pub fn dpd<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        id: IkeSaId,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self.established_spi(id)?;
        self.enqueue(now, spi, Task::Dpd, rng)
    }

    /// Bytes and packets a child SA carried (both directions, as targets
    /// report them); rekeys or deletes it at its lifesize limits.
    pub fn child_bytes_processed<R: RngCore + CryptoRng>(
        &mut self,
        now: Instant,
        child: ChildSaId,
        bytes: u64,
        packets: u64,
        rng: &mut R,
    ) -> Result<(), CommandError> {
        let spi = self
            .child_spi_owner(child)
            .ok_or(CommandError::UnknownChildSa)?;
        self.command(now, spi, rng, |sa, ctx| {
            sa.child_traffic(ctx, child, bytes, packets);
        });
        Ok(())
    }
}
