//! The data path's TUN device, with the kernel's offloads on (a virtio-net
//! header in front of every packet, `IFF_VNET_HDR` + `TUNSETOFFLOAD`).
//!
//! Why: a TUN without offloads costs one system call and one pass through
//! the kernel's IP and TCP layers per 1400-byte packet, and that, not the
//! crypto, is what limited the data path. With offloads:
//! - a read may return a TCP super-segment of up to 64 KiB that the
//!   kernel's TCP handed over unsegmented (TSO); it is split here into
//!   wire-sized packets with their own checksums, so sealing still sees
//!   packets that fit the path MTU;
//! - a burst of writes is coalesced: consecutive in-order segments of one
//!   TCP flow become one super-segment (GRO), which the kernel's TCP takes
//!   in one pass and acknowledges once, not once per two segments.
//!
//! Splitting and coalescing are tun-rs's (the algorithms of wireguard-go's
//! `tun/offload_linux.go`); this module owns the buffers and the batching.
//! Coalescing trusts the segments it joins (the kernel recomputes the TCP
//! checksum of a super-segment): they come out of an authenticated SA, or,
//! for plain distributed TCP, over the trusted XCF link.

use std::io;

use anyhow::{Context, Result};
use tun_rs::{AsyncDevice, GROTable, VIRTIO_NET_HDR_LEN};

/// The largest packet a segment buffer holds: the TUN's MTU is 1500, and
/// GRE-delivered inner packets are smaller still.
const SEGMENT: usize = 2048;
/// One read may carry a 64 KiB super-segment: that many MTU-sized pieces.
const SEGMENTS_PER_READ: usize = 64;
/// Reads gathered into one burst before it is processed.
const READS_PER_BURST: usize = 8;

/// Creates the TUN `name` with offloads, up to the caller to bring up.
pub fn create(name: &str, mtu: u16, tx_queue_len: u32) -> Result<AsyncDevice> {
    tun_rs::DeviceBuilder::new()
        .name(name)
        .mtu(mtu)
        .tx_queue_len(tx_queue_len)
        .offload(true)
        .build_async()
        .with_context(|| format!("creating TUN {name} (with IFF_VNET_HDR offloads)"))
}

/// Buffers for reading bursts from a TUN; allocated once per reader.
pub struct RxBurst {
    raw: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    count: usize,
}

impl Default for RxBurst {
    fn default() -> Self {
        let slots = SEGMENTS_PER_READ * READS_PER_BURST;
        Self {
            raw: vec![0; VIRTIO_NET_HDR_LEN + 65535],
            bufs: vec![vec![0; SEGMENT]; slots],
            sizes: vec![0; slots],
            count: 0,
        }
    }
}

impl RxBurst {
    /// Waits for the TUN, then takes what else is already queued (up to
    /// [`READS_PER_BURST`] reads), every super-segment split into packets.
    pub async fn recv(&mut self, tun: &AsyncDevice) -> io::Result<()> {
        self.count = tun
            .recv_multiple(&mut self.raw, &mut self.bufs, &mut self.sizes, 0)
            .await?;
        for _ in 1..READS_PER_BURST {
            if self.bufs.len() - self.count < SEGMENTS_PER_READ {
                break;
            }
            let (bufs, sizes) = (&mut self.bufs[self.count..], &mut self.sizes[self.count..]);
            match tun.try_recv_multiple(&mut self.raw, bufs, sizes, 0) {
                Ok(n) => self.count += n,
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// The packets of the last burst.
    pub fn packets(&self) -> impl Iterator<Item = &[u8]> {
        self.bufs[..self.count]
            .iter()
            .zip(&self.sizes)
            .map(|(b, n)| &b[..*n])
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Packets handed to one coalescing call: tun-rs joins segments only into
/// a buffer that already has room for the whole super-segment, so every
/// queued packet sits in a buffer of [`COALESCE_ROOM`], and a writer
/// flushes when this many are queued ([`TxBurst::is_full`]).
pub const PACKETS_PER_WRITE: usize = 64;
/// A 64 KiB super-segment behind two virtio-net headers' worth of room
/// (tun-rs asks for that much capacity before it joins).
const COALESCE_ROOM: usize = 2 * VIRTIO_NET_HDR_LEN + 65_535;

/// Packets gathered for one coalescing write to a TUN.
#[derive(Default)]
pub struct TxBurst {
    /// Queued packets, each behind room for the virtio-net header, in
    /// buffers with room to join; allocated as first needed, reused after
    /// ([`PACKETS_PER_WRITE`] × [`COALESCE_ROOM`] for a writer that
    /// flushes when full).
    bufs: Vec<Vec<u8>>,
    used: usize,
    gro: GROTable,
}

impl TxBurst {
    /// Queues a copy of `packet` (an IPv4 packet) behind room for the
    /// virtio-net header. A writer flushes when [`Self::is_full`]; one
    /// that does not just gets more buffers.
    pub fn push(&mut self, packet: &[u8]) {
        if packet.is_empty() {
            return;
        }
        if self.used == self.bufs.len() {
            self.bufs.push(Vec::with_capacity(COALESCE_ROOM));
        }
        let buf = &mut self.bufs[self.used];
        buf.clear();
        buf.resize(VIRTIO_NET_HDR_LEN, 0);
        buf.extend_from_slice(packet);
        self.used += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.used == 0
    }

    /// One coalescing call's worth is queued: time to flush.
    pub fn is_full(&self) -> bool {
        self.used >= PACKETS_PER_WRITE
    }

    /// Coalesces and writes everything queued, returning how many packets
    /// went in; empty afterwards, also on error (a write the TUN refused
    /// is not retried: TCP resends).
    pub async fn flush(&mut self, tun: &AsyncDevice) -> io::Result<usize> {
        let packets = std::mem::take(&mut self.used);
        if packets == 0 {
            return Ok(0);
        }
        tun.send_multiple(&mut self.gro, &mut self.bufs[..packets], VIRTIO_NET_HDR_LEN)
            .await
            .map(|_| packets)
    }
}

impl std::fmt::Debug for RxBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxBurst")
            .field("packets", &self.count)
            .finish()
    }
}

impl std::fmt::Debug for TxBurst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TxBurst")
            .field("queued", &self.used)
            .finish()
    }
}
