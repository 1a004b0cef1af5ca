//! The datagram side of an XCF link: what a routing stack forwards to a
//! target (Fig. 8 block 140) and the target reads back (Figs. 7 and 9), in
//! the topology's [`XcfForwarding`].
//!
//! - `gre`: GRE in IPv4 protocol 47 on a raw socket; a burst leaves in one
//!   `sendmmsg` and arrives through one `recvmmsg`, but the kernel routes
//!   and delivers every packet on its own, and a target woken by the first
//!   packet of a burst often reads it in pieces.
//! - `gre-in-udp` (RFC 8086): the GRE bodies of a burst for one target
//!   leave as one buffer (`UDP_SEGMENT`), cross the veth as one, and the
//!   target's socket (`UDP_GRO`) reads them as one: a target sees whole
//!   bursts, and its kernel TCP takes them as larger super-segments.
//!
//! Either way the target does the anti-spoofing link check itself on the
//! outer source (the socket is bound to the link's device, so the link is
//! known), and the GRE header is the same.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::AsRawFd;

use anyhow::{Context, Result};
use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;

use super::sockets::{self, IPPROTO_GRE, SOCKET_BUFFER};
use super::udp_gso;
use crate::topology::XcfForwarding;
use crate::wire::gre;

/// XCF links have an MTU of 9000: room for any raw GRE packet on them.
const RAW_BUFFER: usize = 9216;
/// Raw GRE packets taken per `recvmmsg`.
const RAW_BURST: usize = 64;
/// A GRO read returns at most a UDP datagram's worth of segments.
const GRO_BUFFER: usize = 65_536;
/// GRO reads gathered into one burst.
const GRO_BURST: usize = 8;

/// One XCF link's datagram socket, towards the image at `peer`.
#[derive(Debug)]
pub struct DataLink {
    /// The peer's XCF address: where bursts go, and the only source the
    /// link check accepts.
    pub peer: Ipv4Addr,
    sock: UdpSocket,
    forwarding: XcfForwarding,
}

/// A forwarded datagram as read from a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datagram<'a> {
    /// A whole IPv4 packet, outer header included (raw GRE).
    Ip(&'a [u8]),
    /// A GRE header and its payload, from a UDP datagram sent by `src`.
    Udp { src: Ipv4Addr, body: &'a [u8] },
}

impl DataLink {
    /// The socket for the link on device `dev` between `me` and `peer`.
    pub fn open(
        forwarding: XcfForwarding,
        me: Ipv4Addr,
        peer: Ipv4Addr,
        dev: &str,
    ) -> Result<Self> {
        let sock = match forwarding {
            XcfForwarding::Gre => sockets::raw_protocol(IPPROTO_GRE, Some(dev))?,
            XcfForwarding::GreInUdp => gre_in_udp_socket(me, dev)?,
        };
        Ok(Self {
            peer,
            sock,
            forwarding,
        })
    }

    /// Sends GRE datagrams, each a header and its inner packet (the kernel
    /// joins the two), to the peer, in order; returns how many left and
    /// how many the kernel refused.
    pub async fn send(&self, bodies: &[[&[u8]; 2]]) -> io::Result<(usize, usize)> {
        match self.forwarding {
            XcfForwarding::Gre => sockets::send_batch(&self.sock, self.peer, bodies).await,
            XcfForwarding::GreInUdp => self.send_segmented(bodies).await,
        }
    }

    /// Equal-sized bodies share one `UDP_SEGMENT` send.
    async fn send_segmented(&self, bodies: &[[&[u8]; 2]]) -> io::Result<(usize, usize)> {
        let to = SocketAddrV4::new(self.peer, gre::UDP_PORT);
        let sizes: Vec<usize> = bodies.iter().map(|[h, p]| h.len() + p.len()).collect();
        let (mut sent, mut refused) = (0, 0);
        for run in udp_gso::size_runs(&sizes) {
            let n = run.len();
            let slices: Vec<IoSlice<'_>> = bodies[run.clone()]
                .iter()
                .flatten()
                .map(|part| IoSlice::new(part))
                .collect();
            match udp_gso::send_segments(&self.sock, to, sizes[run.start], &slices).await {
                Ok(()) => sent += n,
                Err(_) => refused += n,
            }
        }
        Ok((sent, refused))
    }

    /// Waits until the link has something, then reads what is queued, up
    /// to a burst, into `rx`.
    pub async fn recv(&self, rx: &mut DataRx) -> io::Result<()> {
        loop {
            self.readable().await?;
            self.read_queued(rx)?;
            if !rx.is_empty() {
                return Ok(());
            }
        }
    }

    /// Waits until the link has something to read, holding no buffer:
    /// an image's links share one [`DataRx`] (see `runtime::image`).
    pub async fn readable(&self) -> io::Result<()> {
        self.sock.readable().await
    }

    /// Reads what is queued, up to a burst, into `rx`: nothing (an empty
    /// `rx`) when the link's readiness was stale.
    pub fn read_queued(&self, rx: &mut DataRx) -> io::Result<()> {
        rx.clear();
        let got = match self.forwarding {
            XcfForwarding::Gre => rx.read_raw(&self.sock),
            XcfForwarding::GreInUdp => rx.read_gro(&self.sock),
        };
        match got {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            got => got,
        }
    }
}

/// A UDP socket on `me`:4754 that takes only what arrives on `dev`, with
/// UDP GRO on so a segmented burst is read whole.
fn gre_in_udp_socket(me: Ipv4Addr, dev: &str) -> Result<UdpSocket> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(socket2::Protocol::UDP))
        .context("opening a GRE-in-UDP socket")?;
    // One socket per link, all on the same address and port: bound to
    // different devices, they do not conflict.
    s.bind_device(Some(dev.as_bytes()))
        .with_context(|| format!("binding the GRE-in-UDP socket to {dev}"))?;
    s.set_reuse_address(true)?;
    s.bind(&SocketAddrV4::new(me, gre::UDP_PORT).into())
        .with_context(|| format!("binding {me}:{} on {dev}", gre::UDP_PORT))?;
    setsockopt(&s, sockopt::UdpGroSegment, &true).context("setting UDP_GRO")?;
    let _ = setsockopt(&s, sockopt::RcvBufForce, &SOCKET_BUFFER);
    let _ = setsockopt(&s, sockopt::SndBufForce, &SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    UdpSocket::from_std(std::net::UdpSocket::from(s)).context("registering a GRE-in-UDP socket")
}

/// One read: where it starts in the buffers, its length, who sent it and
/// the size of its segments (UDP GRO; the whole read for raw GRE).
#[derive(Debug, Clone, Copy)]
struct Read {
    buf: usize,
    len: usize,
    src: Option<Ipv4Addr>,
    segment: usize,
}

/// Buffers for reading a link's bursts; allocated once per reader.
#[derive(Debug, Default)]
pub struct DataRx {
    bufs: Vec<Vec<u8>>,
    lens: Vec<usize>,
    reads: Vec<Read>,
    cmsg: Vec<u8>,
}

impl DataRx {
    fn clear(&mut self) {
        self.reads.clear();
    }

    /// No datagram read in the last call.
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty()
    }

    fn ensure(&mut self, count: usize, size: usize) {
        // All of one size: a GRO read never lands in a raw read's buffer.
        if self.bufs.len() < count || self.bufs.first().is_some_and(|b| b.len() < size) {
            self.bufs = vec![vec![0; size]; count];
        }
    }

    /// Every raw GRE packet queued, up to [`RAW_BURST`], in one call.
    fn read_raw(&mut self, sock: &UdpSocket) -> io::Result<()> {
        self.ensure(RAW_BURST, RAW_BUFFER);
        sockets::try_recv_batch(sock, &mut self.bufs, &mut self.lens)?;
        self.reads
            .extend(self.lens.iter().enumerate().map(|(buf, &len)| Read {
                buf,
                len,
                src: None,
                segment: len,
            }));
        Ok(())
    }

    /// Up to [`GRO_BURST`] GRO reads, until the socket is empty.
    fn read_gro(&mut self, sock: &UdpSocket) -> io::Result<()> {
        self.ensure(GRO_BURST, GRO_BUFFER);
        if self.cmsg.capacity() == 0 {
            self.cmsg = nix::cmsg_space!(i32);
        }
        while self.reads.len() < GRO_BURST {
            let buf = self.reads.len();
            let (bufs, cmsg) = (&mut self.bufs, &mut self.cmsg);
            let got = sock.try_io(tokio::io::Interest::READABLE, || {
                let mut iov = [IoSliceMut::new(&mut bufs[buf])];
                let msg = recvmsg::<SockaddrIn>(
                    sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut *cmsg),
                    MsgFlags::MSG_DONTWAIT,
                )
                .map_err(io::Error::from)?;
                let segment = msg
                    .cmsgs()
                    .ok()
                    .into_iter()
                    .flatten()
                    .find_map(|c| match c {
                        ControlMessageOwned::UdpGroSegments(s) => usize::try_from(s).ok(),
                        _ => None,
                    });
                let src = msg.address.map(|a| a.ip());
                Ok((msg.bytes, src, segment))
            });
            match got {
                Ok((len, src, segment)) => self.reads.push(Read {
                    buf,
                    len,
                    src,
                    segment: segment.filter(|&s| s > 0).unwrap_or(len),
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && !self.reads.is_empty() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The datagrams of the last burst, in order; a GRO read is cut back
    /// into the datagrams the sender segmented.
    pub fn datagrams(&self) -> impl Iterator<Item = Datagram<'_>> {
        self.reads.iter().flat_map(move |r| {
            let data = &self.bufs[r.buf][..r.len];
            data.chunks(r.segment.max(1)).map(move |body| match r.src {
                None => Datagram::Ip(body),
                Some(src) => Datagram::Udp { src, body },
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GRO read is cut back into the sender's segments (the last may be
    /// shorter); a raw read is one packet.
    #[test]
    fn gro_reads_split_into_segments_and_raw_reads_stay_whole() {
        let mvs1 = Ipv4Addr::new(198, 19, 0, 1);
        let gro: Vec<u8> = (0..250u32).map(|i| (i / 100) as u8).collect();
        let mut rx = DataRx {
            bufs: vec![gro, vec![7; 60]],
            ..DataRx::default()
        };
        rx.reads = vec![
            Read {
                buf: 0,
                len: 250,
                src: Some(mvs1),
                segment: 100,
            },
            Read {
                buf: 1,
                len: 60,
                src: None,
                segment: 60,
            },
        ];
        let got: Vec<Datagram<'_>> = rx.datagrams().collect();
        assert_eq!(
            got,
            vec![
                Datagram::Udp {
                    src: mvs1,
                    body: &[0; 100]
                },
                Datagram::Udp {
                    src: mvs1,
                    body: &[1; 100]
                },
                Datagram::Udp {
                    src: mvs1,
                    body: &[2; 50]
                },
                Datagram::Ip(&[7; 60]),
            ]
        );
    }
}
