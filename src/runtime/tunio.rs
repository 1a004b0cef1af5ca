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
//! Coalescing and the generic split are tun-rs's (the algorithms of
//! wireguard-go's `tun/offload_linux.go`); this module owns the buffers and
//! the batching, and splits ESP in UDP itself: a routing stack reads the
//! clients' UDP-GSO bursts whole, and RFC 3948 lets their UDP checksums be
//! zero, so their payload is copied once and never summed.
//! Coalescing trusts the segments it joins (the kernel recomputes the TCP
//! checksum of a super-segment): they come out of an authenticated SA, or,
//! for plain distributed TCP, over the trusted XCF link.

use std::io;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tun_rs::{
    AsyncDevice, ExpandBuffer, GROTable, VirtioNetHdr, VIRTIO_NET_HDR_GSO_UDP_L4,
    VIRTIO_NET_HDR_LEN,
};

use super::udp_gso;
use crate::wire::checksum;

/// virtio-net `gso_type` of a read that holds one packet (`virtio_net.h`).
const GSO_NONE: u8 = 0;
/// virtio-net flag: the transport checksum is left to the reader, from
/// `csum_start`, with the pseudo-header's sum already at `csum_offset`.
const NEEDS_CSUM: u8 = 1;

/// Completes the transport checksum of a packet the kernel left
/// unchecksummed (checksum offload). ESP in UDP gets zero instead, which
/// RFC 3948 §2.1 asks for, so its payload is not summed.
fn complete_checksum(packet: &mut [u8], start: u16, offset: u16) -> io::Result<()> {
    let at = usize::from(start) + usize::from(offset);
    if at + 2 > packet.len() {
        return Err(io::Error::other("checksum field beyond the packet"));
    }
    if udp_gso::is_nat_t(packet) {
        packet[at..at + 2].fill(0);
        return Ok(());
    }
    // The field holds the pseudo-header's sum: fold it in with the rest.
    let pseudo = u16::from_be_bytes([packet[at], packet[at + 1]]);
    packet[at..at + 2].fill(0);
    let mut field = checksum::finish(checksum::accumulate(
        u64::from(pseudo),
        &packet[usize::from(start)..],
    ));
    // UDP sends a computed zero as all ones: zero means "none" (RFC 768).
    if field == 0 && packet.get(9) == Some(&17) && packet[0] >> 4 == 4 {
        field = 0xffff;
    }
    packet[at..at + 2].copy_from_slice(&field.to_be_bytes());
    Ok(())
}

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
    refused: u64,
}

impl Default for RxBurst {
    fn default() -> Self {
        let slots = SEGMENTS_PER_READ * READS_PER_BURST;
        Self {
            raw: vec![0; VIRTIO_NET_HDR_LEN + 65535],
            bufs: vec![vec![0; SEGMENT]; slots],
            sizes: vec![0; slots],
            count: 0,
            refused: 0,
        }
    }
}

impl RxBurst {
    /// Waits for the TUN, then takes what else is already queued (up to
    /// [`READS_PER_BURST`] reads), every super-segment split into packets.
    /// A read that cannot be split is left out and counted
    /// ([`Self::take_refused`]).
    pub async fn recv(&mut self, tun: &AsyncDevice) -> io::Result<()> {
        self.count = 0;
        let len = tun.recv(&mut self.raw).await?;
        self.take_read(len);
        for _ in 1..READS_PER_BURST {
            if self.bufs.len() - self.count < SEGMENTS_PER_READ {
                break;
            }
            match tun.try_recv(&mut self.raw) {
                Ok(len) => self.take_read(len),
                Err(_) => break,
            }
        }
        Ok(())
    }

    /// Reads refused since the last call: shorter than their virtio-net
    /// header, or a super-segment that would not split.
    pub fn take_refused(&mut self) -> u64 {
        std::mem::take(&mut self.refused)
    }

    fn take_read(&mut self, len: usize) {
        match self.split(len) {
            Ok(n) => self.count += n,
            Err(e) => {
                self.refused += 1;
                tracing::debug!("a TUN read refused: {e}");
            }
        }
    }

    /// Splits the read of `len` bytes in `raw` (virtio-net header, then a
    /// packet or a super-segment) into the next free buffers. ESP in UDP
    /// is split here without summing its payload
    /// ([`udp_gso::split_esp_in_udp`]); the rest as wireguard-go does
    /// (tun-rs's `gso_split`).
    fn split(&mut self, len: usize) -> io::Result<usize> {
        let hdr = VirtioNetHdr::decode(self.raw.get(..len).unwrap_or_default())?;
        let input = match self.raw.get_mut(VIRTIO_NET_HDR_LEN..len) {
            Some(p) if !p.is_empty() => p,
            _ => return Err(io::Error::other("a read without a packet")),
        };
        let (bufs, sizes) = (&mut self.bufs[self.count..], &mut self.sizes[self.count..]);
        if hdr.gso_type == GSO_NONE {
            if hdr.flags & NEEDS_CSUM != 0 {
                complete_checksum(input, hdr.csum_start, hdr.csum_offset)?;
            }
            let out = bufs[0]
                .get_mut(..input.len())
                .ok_or_else(|| io::Error::other("a packet larger than its buffer"))?;
            out.copy_from_slice(input);
            sizes[0] = input.len();
            return Ok(1);
        }
        if hdr.gso_type == VIRTIO_NET_HDR_GSO_UDP_L4 {
            let gso_size = usize::from(hdr.gso_size);
            if let Some(n) = udp_gso::split_esp_in_udp(input, gso_size, bufs, sizes) {
                return Ok(n);
            }
        }
        let is_v6 = input[0] >> 4 == 6;
        tun_rs::gso_split(input, hdr, bufs, sizes, 0, is_v6)
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

/// Packets handed to one coalescing call; a writer flushes when this many
/// are queued ([`TxBurst::is_full`]).
pub const PACKETS_PER_WRITE: usize = 64;
/// A 64 KiB super-segment behind two virtio-net headers' worth of room
/// (tun-rs asks for that much capacity before it joins).
const COALESCE_ROOM: usize = 2 * VIRTIO_NET_HDR_LEN + 65_535;

/// Rooms of [`COALESCE_ROOM`] a burst lends its slots, kept for reuse.
type Rooms = Arc<Mutex<Vec<Vec<u8>>>>;

/// One queued packet, behind room for the virtio-net header.
///
/// tun-rs joins segments only into a buffer that already has room for the
/// whole super-segment, but only the head of each super-segment uses it (a
/// couple per write). So a slot holds its packet in a buffer of its own
/// and tells tun-rs it has the room; when tun-rs joins segments into it,
/// it borrows a room from its burst and gives it back after the write.
/// Why: a room for every slot was 4 MiB per writer, and most of it became
/// resident as the heads fell on every slot in turn (2.8 MiB after 30 s of
/// two 40 Mbit/s flows at a target).
struct Slot {
    buf: Vec<u8>,
    /// The slot's own buffer while `buf` is a borrowed room; empty else.
    own: Vec<u8>,
    rooms: Rooms,
}

impl Slot {
    fn new(rooms: &Rooms) -> Self {
        Self {
            buf: Vec::with_capacity(SEGMENT),
            own: Vec::new(),
            rooms: Arc::clone(rooms),
        }
    }

    fn borrows(&self) -> bool {
        self.own.capacity() > 0
    }

    /// Makes room for `len` bytes: a room from the burst (a new one when
    /// all are lent), with what the slot holds copied in.
    fn reserve(&mut self, len: usize) {
        if len <= self.buf.capacity() {
            return;
        }
        if self.borrows() {
            self.buf.reserve(len - self.buf.len());
            return;
        }
        let lent = self.rooms.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut room = lent.unwrap_or_else(|| Vec::with_capacity(COALESCE_ROOM.max(len)));
        room.clear();
        room.extend_from_slice(&self.buf);
        self.own = std::mem::replace(&mut self.buf, room);
    }

    /// The room borrowed, if any, back to `rooms`.
    fn give_back(&mut self, rooms: &mut Vec<Vec<u8>>) {
        if self.borrows() {
            let own = std::mem::take(&mut self.own);
            rooms.push(std::mem::replace(&mut self.buf, own));
        }
    }
}

impl AsRef<[u8]> for Slot {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl AsMut<[u8]> for Slot {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl ExpandBuffer for Slot {
    /// The room tun-rs may join into, borrowed only when it does.
    fn buf_capacity(&self) -> usize {
        self.buf.capacity().max(COALESCE_ROOM)
    }

    fn buf_resize(&mut self, new_len: usize, value: u8) {
        self.reserve(new_len);
        self.buf.resize(new_len, value);
    }

    fn buf_extend_from_slice(&mut self, src: &[u8]) {
        self.reserve(self.buf.len() + src.len());
        self.buf.extend_from_slice(src);
    }
}

/// Packets gathered for one coalescing write to a TUN.
#[derive(Default)]
pub struct TxBurst {
    /// Queued packets ([`Slot`]); allocated as first needed, reused after.
    slots: Vec<Slot>,
    used: usize,
    /// The rooms the slots borrow: as many as the most super-segments one
    /// write joined, usually one or two per flow.
    rooms: Rooms,
    /// Made at the first write: tun-rs's table reserves room for 128
    /// flows of 128 packets (about a megabyte of heap it writes into), and
    /// some writers never write (a pure target's TUN loop).
    gro: Option<GROTable>,
}

impl TxBurst {
    /// Queues a copy of `packet` (an IPv4 packet) behind room for the
    /// virtio-net header. A writer flushes when [`Self::is_full`]; one
    /// that does not just gets more slots.
    pub fn push(&mut self, packet: &[u8]) {
        if packet.is_empty() {
            return;
        }
        if self.used == self.slots.len() {
            self.slots.push(Slot::new(&self.rooms));
        }
        let buf = &mut self.slots[self.used].buf;
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
        let gro = self.gro.get_or_insert_with(GROTable::default);
        let written = tun
            .send_multiple(gro, &mut self.slots[..packets], VIRTIO_NET_HDR_LEN)
            .await;
        self.give_back_rooms();
        written.map(|_| packets)
    }

    /// Every borrowed room back to the burst's rooms.
    fn give_back_rooms(&mut self) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        for slot in &mut self.slots {
            slot.give_back(&mut rooms);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{checksum::PseudoHeader, udp};

    /// A UDP packet as the kernel leaves it with checksum offload: the
    /// field holds the pseudo-header's folded sum.
    fn offloaded_udp(sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 48, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend([198, 18, 0, 100, 198, 18, 1, 2]);
        p.extend(sport.to_be_bytes());
        p.extend(dport.to_be_bytes());
        p.extend(28u16.to_be_bytes());
        let pseudo = PseudoHeader::V4 {
            src: [198, 18, 0, 100].into(),
            dst: [198, 18, 1, 2].into(),
        };
        let partial = checksum::fold(pseudo.sum(crate::wire::IpProtocol::Udp, 28));
        p.extend(partial.to_be_bytes());
        p.extend((0..20u8).map(|b| b.wrapping_mul(37)));
        p
    }

    /// `n` in-order segments of one TCP flow, `len` bytes of payload each,
    /// queued in `tx`.
    fn queue_flow(tx: &mut TxBurst, n: u32, len: usize) {
        let (client, dva1) = ([198, 18, 1, 2].into(), [198, 18, 0, 100].into());
        for i in 0..n {
            let payload = vec![i as u8; len];
            let seq = 1000 + i * len as u32;
            let flags = crate::wire::TcpFlags::ACK;
            tx.push(&crate::wire::build::tcp_packet(
                client, 40000, dva1, 5201, seq, 1, flags, &payload,
            ));
        }
    }

    /// What one write does to the slots, without a TUN: tun-rs's GRO.
    fn coalesce(tx: &mut TxBurst, gro: &mut GROTable) {
        let used = std::mem::take(&mut tx.used);
        gro.apply_gro(&mut tx.slots[..used], VIRTIO_NET_HDR_LEN, false)
            .unwrap();
    }

    fn rooms(tx: &TxBurst) -> usize {
        tx.rooms.lock().unwrap().len()
    }

    /// Segments are joined into the slot of the first (it borrows a room),
    /// and the room goes back after the write.
    #[test]
    fn a_super_segment_borrows_a_room_and_gives_it_back() {
        let mut tx = TxBurst::default();
        let mut gro = GROTable::default();
        queue_flow(&mut tx, 3, 1000);
        coalesce(&mut tx, &mut gro);
        let head = &tx.slots[0];
        assert!(head.borrows());
        assert_eq!(head.buf.len(), VIRTIO_NET_HDR_LEN + 40 + 3000);
        assert!(head.buf[VIRTIO_NET_HDR_LEN + 40..].starts_with(&[0; 1000]));
        assert!(head.buf.ends_with(&[2; 1000]));
        assert!(!tx.slots[1].borrows() && !tx.slots[2].borrows());
        tx.give_back_rooms();
        assert_eq!(rooms(&tx), 1);
        assert!(tx
            .slots
            .iter()
            .all(|s| !s.borrows() && s.buf.capacity() < COALESCE_ROOM));
    }

    /// A full burst of one flow makes two super-segments (64 KiB each at
    /// most): two rooms, reused by every later write.
    #[test]
    fn rooms_are_as_many_as_one_write_joins_not_as_writes() {
        let mut tx = TxBurst::default();
        let mut gro = GROTable::default();
        for _ in 0..10 {
            queue_flow(&mut tx, PACKETS_PER_WRITE as u32, 1448);
            coalesce(&mut tx, &mut gro);
            let heads: Vec<usize> = tx
                .slots
                .iter()
                .map(|s| s.buf.len())
                .filter(|&l| l > 2000)
                .collect();
            assert_eq!(heads.len(), 2, "{heads:?}");
            assert!(heads.iter().all(|&l| l <= COALESCE_ROOM));
            tx.give_back_rooms();
            assert_eq!(rooms(&tx), 2);
        }
    }

    #[test]
    fn an_offloaded_checksum_is_completed_and_esp_in_udp_gets_zero() {
        let mut dns = offloaded_udp(1024, 53);
        complete_checksum(&mut dns, 20, 6).unwrap();
        let pseudo = PseudoHeader::V4 {
            src: [198, 18, 0, 100].into(),
            dst: [198, 18, 1, 2].into(),
        };
        let u = udp::Packet::new_checked(&dns[20..]).unwrap();
        assert_ne!(u.checksum(), 0);
        assert!(u.verify_checksum(&pseudo));

        let mut nat_t = offloaded_udp(1024, 4500);
        complete_checksum(&mut nat_t, 20, 6).unwrap();
        assert_eq!(&nat_t[26..28], &[0, 0]);

        let mut short = offloaded_udp(1024, 53);
        assert!(complete_checksum(&mut short, 20, 40).is_err());
    }
}
