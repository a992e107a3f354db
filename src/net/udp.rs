//! The one UDP socket all viewers share, on the smol reactor.
//!
//! quinn-udp reads each datagram's destination address (IP_PKTINFO): str0m matches it against
//! the local candidates, and a socket bound to 0.0.0.0 would not tell it otherwise. It also
//! receives in batches and sends with an explicit source address, so replies leave from the
//! address the viewer talked to.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr, UdpSocket};

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};
use smol::Async;

/// Receive calls read up to this many buffers at once. Viewers send little (RTCP, STUN), so a
/// small batch is enough.
const BATCH: usize = 8;
/// Large enough for an IDR burst to every viewer without the kernel dropping it.
const SOCKET_BUFFER_BYTES: usize = 2 * 1024 * 1024;

pub(crate) struct Datagram<'a> {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: &'a [u8],
}

pub(crate) struct MediaSocket {
    socket: Async<UdpSocket>,
    state: UdpSocketState,
    local: SocketAddr,
    buffers: Vec<Vec<u8>>,
    metas: [RecvMeta; BATCH],
}

impl MediaSocket {
    pub(crate) fn bind(addr: SocketAddr) -> io::Result<MediaSocket> {
        let socket = UdpSocket::bind(addr)?;
        let state = UdpSocketState::new((&socket).into())?;
        // Best effort: a smaller buffer still works, it only drops sooner under bursts.
        let _ = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER_BYTES);
        let _ = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER_BYTES);
        let local = socket.local_addr()?;
        let socket = Async::new(socket)?;
        // With GRO one buffer may hold several datagrams of one flow. Each buffer is allocated
        // zeroed on its own (not cloned from one), so its pages stay untouched, and out of the
        // resident set, until datagrams that large actually arrive.
        let buffer_len = 1500 * state.gro_segments().max(1);
        Ok(MediaSocket {
            socket,
            state,
            local,
            buffers: (0..BATCH).map(|_| vec![0; buffer_len]).collect(),
            metas: [RecvMeta::default(); BATCH],
        })
    }

    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.socket.readable().await
    }

    /// Reads what is queued (one batch) and hands each datagram to `f`. Returns the number
    /// read; 0 when nothing was waiting.
    pub(crate) fn recv_batch(&mut self, mut f: impl FnMut(Datagram)) -> io::Result<usize> {
        let mut slices: Vec<IoSliceMut> = self
            .buffers
            .iter_mut()
            .map(|b| IoSliceMut::new(b))
            .collect();
        let n = match self
            .state
            .recv(self.socket.get_ref().into(), &mut slices, &mut self.metas)
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        let mut count = 0;
        for (meta, buf) in self.metas.iter().zip(self.buffers.iter()).take(n) {
            let source = canonical(meta.addr);
            let destination = SocketAddr::new(
                meta.dst_ip.map_or(self.local.ip(), canonical_ip),
                self.local.port(),
            );
            let stride = meta.stride.max(1);
            for contents in buf[..meta.len].chunks(stride) {
                count += 1;
                f(Datagram {
                    source,
                    destination,
                    contents,
                });
            }
        }
        Ok(count)
    }

    /// Sends one datagram from `source` (a local candidate address) to `destination`.
    pub(crate) async fn send(
        &self,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> io::Result<()> {
        let v6_socket = self.local.is_ipv6();
        let transmit = Transmit {
            destination: for_socket(destination, v6_socket),
            ecn: None,
            contents,
            segment_size: None,
            // An unspecified source (STUN discovery) lets the kernel pick the address its route
            // takes, as an ordinary client would.
            src_ip: (self.local.ip().is_unspecified() && !source.ip().is_unspecified())
                .then(|| for_socket(source, v6_socket).ip()),
        };
        self.socket
            .write_with(|s| self.state.try_send(s.into(), &transmit))
            .await
    }
}

/// A dual-stack socket reports IPv4 peers as `::ffff:a.b.c.d`; str0m's candidates are plain
/// IPv4, so addresses are compared in their canonical form.
fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(canonical_ip(addr.ip()), addr.port())
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The form a socket of the given family can send to.
fn for_socket(addr: SocketAddr, v6_socket: bool) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) if v6_socket => {
            SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port())
        }
        _ => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_their_destination_address() {
        smol::block_on(async {
            let mut socket = MediaSocket::bind("0.0.0.0:0".parse().unwrap()).unwrap();
            let port = socket.local_addr().port();
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            peer.send_to(b"hello", ("127.0.0.1", port)).unwrap();
            peer.send_to(b"world", ("127.0.0.1", port)).unwrap();

            let mut got = Vec::new();
            while got.len() < 2 {
                socket.readable().await.unwrap();
                socket
                    .recv_batch(|d| got.push((d.source, d.destination, d.contents.to_vec())))
                    .unwrap();
            }
            let expect_dst: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            assert_eq!(
                got[0],
                (peer.local_addr().unwrap(), expect_dst, b"hello".to_vec())
            );
            assert_eq!(got[1].2, b"world");

            // And back, from the address it was sent to.
            socket
                .send(expect_dst, peer.local_addr().unwrap(), b"reply")
                .await
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = peer.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (&b"reply"[..], expect_dst));
        });
    }

    #[test]
    fn a_dual_stack_socket_serves_ipv4_and_ipv6_peers() {
        smol::block_on(async {
            let Ok(mut socket) = MediaSocket::bind("[::]:0".parse().unwrap()) else {
                no_ipv6("no IPv6 on this machine: dual-stack not tested");
                return;
            };
            let port = socket.local_addr().port();
            for (peer_bind, server) in [("127.0.0.1:0", "127.0.0.1"), ("[::1]:0", "::1")] {
                let Ok(peer) = UdpSocket::bind(peer_bind) else {
                    no_ipv6(&format!("cannot bind a peer to {peer_bind}: not tested"));
                    continue;
                };
                peer.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .unwrap();
                let server: SocketAddr = SocketAddr::new(server.parse().unwrap(), port);
                peer.send_to(b"hi", server).unwrap();
                let mut got = None;
                while got.is_none() {
                    socket.readable().await.unwrap();
                    socket
                        .recv_batch(|d| got = Some((d.source, d.destination)))
                        .unwrap();
                }
                // Plain IPv4 addresses for IPv4 peers, as str0m's candidates are.
                assert_eq!(got, Some((peer.local_addr().unwrap(), server)));
                socket
                    .send(server, peer.local_addr().unwrap(), b"ok")
                    .await
                    .unwrap();
                let mut buf = [0u8; 4];
                let (n, from) = peer.recv_from(&mut buf).unwrap();
                assert_eq!((&buf[..n], from), (&b"ok"[..], server));
            }
        });
    }

    /// A machine without IPv6 cannot run the dual-stack test; in CI (RTCAM_CI or CI set) that
    /// is a failure, not a silent pass. (The same rule as `crate::bench::skip`, which exists
    /// only with the `testing` feature.)
    fn no_ipv6(why: &str) {
        let set = |name: &str| {
            std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
        };
        assert!(
            !(set("RTCAM_CI") || set("CI")),
            "{why}, and CI allows no skip"
        );
        eprintln!("skipped: {why}");
    }

    #[test]
    fn mapped_addresses_are_canonical() {
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:99".parse().unwrap();
        assert_eq!(
            canonical(mapped),
            "10.1.2.3:99".parse::<SocketAddr>().unwrap()
        );
        let v4: SocketAddr = "10.1.2.3:99".parse().unwrap();
        assert_eq!(for_socket(v4, true), mapped);
        assert_eq!(for_socket(v4, false), v4);
    }
}
