//! The hub with a TURN server between it and a viewer that no direct path reaches: the viewer
//! connects and gets frames only through rtcam's own relay. A scripted TURN server carries
//! the datagrams; simulated time.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use str0m::net::{Protocol, Transmit};

use super::md5::md5;
use super::peer::{Peer, encoded};
use super::stunmsg::{
    ALLOCATE, Builder, CREATE_PERMISSION, DATA, DATA_INDICATION, ERROR, ERROR_CODE, LIFETIME,
    Message, NONCE, REALM, REFRESH, SEND_INDICATION, SUCCESS, USERNAME, XOR_MAPPED_ADDRESS,
    XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS,
};
use super::*;
use crate::config::TurnConfig;

const HUB_ADDR: &str = "10.0.0.1:5000";
const SERVER: &str = "198.51.100.1:3478";
const RELAYED: &str = "198.51.100.1:49152";
const STEP: Duration = Duration::from_millis(5);

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

/// A datagram the server relays to a peer, and the peer.
type Relayed = (SocketAddr, Vec<u8>);

/// A TURN server that knows one user, relays for one allocation, and counts what it did.
#[derive(Default)]
struct Server {
    allocated: bool,
    allocations: usize,
    permitted: Vec<IpAddr>,
    relayed_to_peer: usize,
    relayed_to_hub: usize,
    challenged: usize,
}

impl Server {
    fn key() -> [u8; 16] {
        md5(b"cam:rtcam.test:pass")
    }

    /// Takes a datagram from the hub: an answer for the hub, or a datagram for the peer.
    fn take_from_hub(&mut self, datagram: &[u8]) -> (Option<Vec<u8>>, Option<Relayed>) {
        let m = Message::parse(datagram).expect("the hub sends the server STUN only");
        let reply = |kind: u16| Builder::new(kind, &m.trans);
        if m.kind == SEND_INDICATION {
            let peer = m.xor_address(XOR_PEER_ADDRESS).expect("a peer");
            let data = m.attr(DATA).expect("data").to_vec();
            if !self.allocated || !self.permitted.contains(&peer.ip()) {
                return (None, None);
            }
            self.relayed_to_peer += 1;
            return (None, Some((peer, data)));
        }
        if m.attr(USERNAME).is_none() {
            self.challenged += 1;
            let e = reply(m.kind | ERROR)
                .attr(ERROR_CODE, &[0, 0, 4, 1])
                .attr(REALM, b"rtcam.test")
                .attr(NONCE, b"n1")
                .finish(None);
            return (Some(e), None);
        }
        assert!(m.integrity_ok(&Self::key()), "keyed with the long-term key");
        let answer = match m.kind {
            ALLOCATE => {
                self.allocated = true;
                self.allocations += 1;
                reply(ALLOCATE | SUCCESS)
                    .xor_address(XOR_RELAYED_ADDRESS, addr(RELAYED))
                    .xor_address(XOR_MAPPED_ADDRESS, addr("203.0.113.5:40000"))
                    .attr(LIFETIME, &600u32.to_be_bytes())
            }
            CREATE_PERMISSION => {
                let peer = m.xor_address(XOR_PEER_ADDRESS).expect("a peer");
                self.permitted.push(peer.ip());
                reply(CREATE_PERMISSION | SUCCESS)
            }
            REFRESH => reply(REFRESH | SUCCESS).attr(LIFETIME, &600u32.to_be_bytes()),
            other => panic!("unexpected request {other:#06x}"),
        };
        (Some(answer.finish(Some(&Self::key()))), None)
    }

    /// A datagram the peer sent to the relayed address, as a Data indication for the hub
    /// (None when the server has no permission for the peer: it drops it).
    fn take_from_peer(&mut self, peer: SocketAddr, data: &[u8]) -> Option<Vec<u8>> {
        if !self.allocated || !self.permitted.contains(&peer.ip()) {
            return None;
        }
        self.relayed_to_hub += 1;
        Some(
            Builder::new(DATA_INDICATION, &[3; 12])
                .xor_address(XOR_PEER_ADDRESS, peer)
                .attr(DATA, data)
                .finish(None),
        )
    }
}

struct Net {
    hub: Hub,
    /// How the hub reaches the server: UDP, or TCP (a connection the shell would open).
    server_proto: Protocol,
    server: Server,
    peer: Option<Peer>,
    now: Instant,
    hub_timeout: Instant,
    connected: bool,
    /// Datagrams the hub sent straight to the peer, and the peer straight to the hub: lost.
    direct: usize,
}

impl Net {
    /// Moves datagrams until everybody is quiet.
    fn pump(&mut self) {
        let mut to_hub: Vec<Vec<u8>> = Vec::new();
        for _ in 0..1000 {
            let mut from_peer = Vec::new();
            if let Some(peer) = &mut self.peer {
                peer.drain(&mut from_peer);
            }
            let mut moved = !from_peer.is_empty() || !to_hub.is_empty();
            for (source, destination, data) in from_peer {
                if destination == addr(RELAYED) {
                    to_hub.extend(self.server.take_from_peer(source, &data));
                } else {
                    self.direct += 1;
                }
            }
            for datagram in std::mem::take(&mut to_hub) {
                self.hub.handle_input(Input::Receive {
                    proto: self.server_proto,
                    now: self.now,
                    source: addr(SERVER),
                    destination: addr(HUB_ADDR),
                    contents: &datagram,
                });
            }
            let mut to_peer = Vec::new();
            loop {
                match self.hub.poll_output() {
                    Output::Transmit(t) if t.destination == addr(SERVER) => {
                        moved = true;
                        assert_eq!(t.proto, self.server_proto);
                        assert!(t.source.ip().is_unspecified(), "from the media port");
                        let (answer, relayed) = self.server.take_from_hub(&t.contents);
                        to_hub.extend(answer);
                        to_peer.extend(relayed);
                    }
                    Output::Transmit(_) => self.direct += 1,
                    Output::Event(HubEvent::ViewerConnected(_)) => self.connected = true,
                    Output::Timeout(t) => {
                        self.hub_timeout = t;
                        break;
                    }
                    _ => {}
                }
            }
            if let Some(peer) = &mut self.peer {
                for (destination, data) in to_peer {
                    peer.receive(
                        self.now,
                        &Transmit {
                            proto: Protocol::Udp,
                            source: addr(RELAYED),
                            destination,
                            contents: data.into(),
                        },
                    );
                }
            }
            if !moved && to_hub.is_empty() {
                return;
            }
        }
        panic!("the network never went quiet");
    }

    /// A new viewer's offer and the hub's answer.
    fn answer_for(&mut self, n: u8) -> (Peer, String) {
        let (peer, offer, _) = Peer::h264(n, self.now);
        let answer = self
            .hub
            .offer(self.now, peer.id, peer.addr.ip(), &offer)
            .expect("an answer");
        (peer, answer)
    }

    fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now += STEP;
            if self.hub_timeout <= self.now {
                self.hub.handle_input(Input::Timeout(self.now));
            }
            if let Some(peer) = &mut self.peer {
                peer.tick(self.now);
            }
            self.pump();
        }
    }
}

#[test]
fn a_viewer_no_direct_path_reaches_plays_through_rtcams_relay() {
    plays_through_relay(Protocol::Udp);
}

/// The same with the allocation over TCP (a camera whose network lets no UDP out); when the
/// connection closes, the relay candidate goes and a new allocation follows.
#[test]
fn the_relay_works_over_tcp_and_comes_back_after_the_connection_closes() {
    let mut net = plays_through_relay(Protocol::Tcp);
    let (_, answer) = net.answer_for(2);
    assert!(answer.contains("typ relay"), "{answer}");
    net.hub.tcp_closed(net.now, addr(SERVER));
    net.server = Server::default();
    let (_, answer) = net.answer_for(3);
    assert!(!answer.contains("typ relay"), "a lost relay is not offered");
    net.advance(Duration::from_millis(1500));
    assert_eq!(net.server.allocations, 1, "allocated anew");
    let (_, answer) = net.answer_for(4);
    assert!(answer.contains("198.51.100.1 49152 typ relay"), "{answer}");
}

/// A viewer that knows no public address of its own (no STUN server) sends its checks to the
/// relay from its NAT's address, the one its offer came from: that address gets a permission
/// as soon as the offer is answered. A private one does not (no relay on the internet reaches
/// it).
#[test]
fn the_address_an_offer_came_from_may_send_to_the_relay() {
    let mut net = allocated(Protocol::Udp);
    let (peer, offer, _) = Peer::h264(1, net.now);
    for (n, from) in ["192.168.1.9", "203.0.113.77", "::ffff:203.0.113.78"]
        .into_iter()
        .enumerate()
    {
        let id = ViewerId(peer.id.0 + n as u128);
        let from: IpAddr = from.parse().expect("ip");
        net.hub.offer(net.now, id, from, &offer).expect("an answer");
        net.pump();
    }
    let permitted = |s: &str| net.server.permitted.contains(&s.parse().expect("ip"));
    assert!(permitted("203.0.113.77") && permitted("203.0.113.78"));
    assert!(!permitted("192.168.1.9"));
}

/// After an ICE restart the viewer's PATCH comes from its new network: that address may send
/// to the relay too. A PATCH the hub refuses grants nothing.
#[test]
fn the_address_a_patch_came_from_may_send_to_the_relay() {
    let mut net = allocated(Protocol::Udp);
    let (peer, offer, _) = Peer::h264(1, net.now);
    let lan: IpAddr = "192.168.1.9".parse().expect("ip");
    net.hub
        .offer(net.now, peer.id, lan, &offer)
        .expect("an answer");
    net.pump();
    let candidate = b"a=candidate:1 1 udp 1 10.0.9.9 9 typ host\r\n";
    let refused: IpAddr = "203.0.113.91".parse().expect("ip");
    net.hub
        .patch(net.now, peer.id, refused, Some("\"stale\""), candidate)
        .expect_err("a stale entity tag");
    let mobile: IpAddr = "203.0.113.90".parse().expect("ip");
    net.hub
        .patch(net.now, peer.id, mobile, Some("*"), candidate)
        .expect("trickled");
    net.pump();
    assert!(
        net.server.permitted.contains(&mobile),
        "the PATCH's address"
    );
    assert!(!net.server.permitted.contains(&refused));
    assert!(!net.server.permitted.contains(&lan));
}

fn allocated(server_proto: Protocol) -> Net {
    let now = Instant::now();
    let auth = TurnConfig {
        url: format!("turn:{SERVER}"),
        username: Some("cam".into()),
        credential: Some("pass".into()),
        ..TurnConfig::default()
    };
    let config = HubConfig {
        candidates: vec![addr(HUB_ADDR)],
        turn_servers: vec![TurnServer {
            addr: addr(SERVER),
            tcp: server_proto == Protocol::Tcp,
            auth,
        }],
        ..HubConfig::default()
    };
    let mut net = Net {
        hub: Hub::new(config, now).expect("a hub"),
        server_proto,
        server: Server::default(),
        peer: None,
        now,
        hub_timeout: now,
        connected: false,
        direct: 0,
    };
    net.hub.handle_input(Input::Timeout(now));
    net.pump();
    assert!(
        net.server.allocated,
        "allocated at start, through the challenge"
    );
    assert_eq!(net.server.challenged, 1);
    net
}

fn plays_through_relay(server_proto: Protocol) -> Net {
    let mut net = allocated(server_proto);

    let (mut peer, offer, pending) = Peer::h264(1, net.now);
    let answer = net
        .hub
        .offer(net.now, peer.id, peer.addr.ip(), &offer)
        .expect("an answer");
    assert!(
        answer.contains("198.51.100.1 49152 typ relay"),
        "the relayed address is offered: {answer}"
    );
    peer.accept(pending, &answer);
    net.peer = Some(peer);
    net.pump();
    let mut waited = Duration::ZERO;
    while !net.connected && waited < Duration::from_secs(5) {
        net.advance(Duration::from_millis(50));
        waited += Duration::from_millis(50);
    }
    assert!(net.connected, "connected through the relay");
    assert!(net.direct > 0, "direct checks were tried, and lost");
    assert!(
        net.server
            .permitted
            .contains(&"10.0.0.2".parse().expect("ip")),
        "a permission for the viewer's candidate"
    );

    for seq in 0..10u64 {
        let unit = encoded(seq, seq == 0, net.now);
        net.hub.handle_input(Input::AccessUnit {
            now: net.now,
            unit: &unit,
        });
        net.advance(Duration::from_millis(33));
    }
    let peer = net.peer.as_ref().expect("the peer");
    assert!(peer.frames.len() >= 9, "{} frames", peer.frames.len());
    assert!(net.server.relayed_to_peer > 10 && net.server.relayed_to_hub > 0);
    assert_eq!(net.hub.counters().datagrams_unclaimed, 0);
    net
}

#[test]
fn shutdown_gives_the_allocation_back() {
    let mut net = plays_through_relay(Protocol::Udp);
    net.hub.remove_all(net.now);
    let mut release = None;
    loop {
        match net.hub.poll_output() {
            Output::Transmit(t) if t.destination == addr(SERVER) => {
                let m = Message::parse(&t.contents).expect("STUN to the server");
                if m.kind == REFRESH {
                    release = m.lifetime();
                }
            }
            Output::Timeout(_) => break,
            _ => {}
        }
    }
    assert_eq!(release, Some(0), "a Refresh with lifetime 0");
}
