//! Server-reflexive address discovery: STUN binding requests (RFC 8489) from the media socket
//! to the configured STUN servers, so the answers can offer the address a NAT maps the media
//! port to. Sans-IO: requests come out as datagrams, responses go in, time is given.
//!
//! One exchange per server, sent from the media port without naming a source address: the
//! kernel picks the one its route to the server takes, and the response's destination tells
//! which (the candidate's base). Asking from every host address instead would send some
//! requests out of interfaces they do not belong to, and a NAT that sees two flows from the
//! media port to one server maps one of them to another port: a mapping viewers cannot use.
//! A request is retransmitted after 0.5, 1, 2 and 4 s; a server that never answers is asked again after `RETRY_AFTER`. A mapping is
//! refreshed every `REFRESH_EVERY`: NAT bindings expire and home routers get new public
//! addresses.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::stunmsg::{
    BINDING_ERROR, BINDING_REQUEST, BINDING_SUCCESS, Builder, FIRST_RTO, MAX_SENDS, Message,
    SplitMix64, TransId,
};

const REFRESH_EVERY: Duration = Duration::from_secs(60);
const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct StunTransmit {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Nothing under way; ask at `at`.
    Idle { at: Instant },
    Asking {
        trans: TransId,
        sends: u32,
        resend_at: Instant,
    },
}

#[derive(Clone, Debug)]
struct Exchange {
    /// The media port on the unspecified address of the server's family.
    source: SocketAddr,
    server: SocketAddr,
    state: State,
    /// The mapped address and its base (the local address the response came to).
    mapped: Option<(SocketAddr, SocketAddr)>,
}

pub(crate) struct StunGatherer {
    exchanges: Vec<Exchange>,
    /// Transaction ids must not be guessable, or anyone could tell us a false address.
    rng: SplitMix64,
    transmits: Vec<StunTransmit>,
    /// Set when a mapping appeared, changed or went; cleared by `take_changed`.
    changed: bool,
}

impl StunGatherer {
    /// Asks every server from the media port `port`, starting at `now`. `seed` makes the
    /// transaction ids: random from the caller.
    pub(crate) fn new(port: u16, servers: &[SocketAddr], now: Instant, seed: u64) -> Self {
        let exchanges = servers
            .iter()
            .map(|&server| {
                let any: std::net::IpAddr = if server.is_ipv4() {
                    std::net::Ipv4Addr::UNSPECIFIED.into()
                } else {
                    std::net::Ipv6Addr::UNSPECIFIED.into()
                };
                Exchange {
                    source: SocketAddr::new(any, port),
                    server,
                    state: State::Idle { at: now },
                    mapped: None,
                }
            })
            .collect();
        StunGatherer {
            exchanges,
            rng: SplitMix64(seed),
            transmits: Vec::new(),
            changed: false,
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        for exchange in &mut self.exchanges {
            match exchange.state {
                State::Idle { at } if at <= now => {
                    let trans = self.rng.trans_id();
                    self.transmits.push(request(exchange, trans));
                    exchange.state = State::Asking {
                        trans,
                        sends: 1,
                        resend_at: now + FIRST_RTO,
                    };
                }
                State::Asking {
                    trans,
                    sends,
                    resend_at,
                } if resend_at <= now => {
                    if sends >= MAX_SENDS {
                        if exchange.mapped.take().is_some() {
                            log::info!("STUN: {} stopped answering", exchange.server);
                            self.changed = true;
                        } else {
                            log::debug!("STUN: no answer from {}", exchange.server);
                        }
                        exchange.state = State::Idle {
                            at: now + RETRY_AFTER,
                        };
                    } else {
                        self.transmits.push(request(exchange, trans));
                        exchange.state = State::Asking {
                            trans,
                            sends: sends + 1,
                            resend_at: now + FIRST_RTO * 2u32.pow(sends),
                        };
                    }
                }
                _ => {}
            }
        }
    }

    /// Takes a datagram if it answers one of our requests; `destination` is the local address
    /// it came to.
    pub(crate) fn handle_receive(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) -> bool {
        let Some(exchange) = self.exchanges.iter_mut().find(|e| e.server == source) else {
            return false;
        };
        let State::Asking { trans, .. } = exchange.state else {
            return false;
        };
        let Some((id, answer)) = parse_binding_response(contents) else {
            return false;
        };
        if id != trans {
            return false;
        }
        let Some(mapped) = answer else {
            log::info!("STUN: {} refused the binding request", exchange.server);
            exchange.state = State::Idle {
                at: now + RETRY_AFTER,
            };
            return true;
        };
        if Some((mapped, destination)) != exchange.mapped {
            log::info!("STUN: {} maps {destination} to {mapped}", exchange.server);
            exchange.mapped = Some((mapped, destination));
            self.changed = true;
        }
        exchange.state = State::Idle {
            at: now + REFRESH_EVERY,
        };
        true
    }

    /// Asks every server again at `now`: the interfaces changed, and so may the mapping.
    pub(crate) fn refresh(&mut self, now: Instant) {
        for exchange in &mut self.exchanges {
            if matches!(exchange.state, State::Idle { .. }) {
                exchange.state = State::Idle { at: now };
            }
        }
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<StunTransmit> {
        self.transmits.pop()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.exchanges
            .iter()
            .map(|e| match e.state {
                State::Idle { at } => at,
                State::Asking { resend_at, .. } => resend_at,
            })
            .min()
    }

    /// The server-reflexive addresses known now, each with its base, without duplicates and
    /// without ones equal to their base (no NAT in between).
    pub(crate) fn reflexive(&self) -> Vec<(SocketAddr, SocketAddr)> {
        let mut found: Vec<(SocketAddr, SocketAddr)> = Vec::new();
        for e in &self.exchanges {
            if let Some((mapped, base)) = e.mapped
                && mapped != base
                && !found.contains(&(mapped, base))
            {
                found.push((mapped, base));
            }
        }
        found
    }

    /// Whether the addresses changed since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }
}

fn request(exchange: &Exchange, trans: TransId) -> StunTransmit {
    StunTransmit {
        source: exchange.source,
        destination: exchange.server,
        contents: binding_request(trans),
    }
}

/// A binding request without attributes: STUN servers answer anonymous ones.
fn binding_request(trans: TransId) -> Vec<u8> {
    Builder::new(BINDING_REQUEST, &trans).finish(None)
}

/// A binding response: its transaction, and the mapped address (None for an error response).
/// Anything else, or a success without an address, is None.
fn parse_binding_response(message: &[u8]) -> Option<(TransId, Option<SocketAddr>)> {
    let message = Message::parse(message)?;
    match message.kind {
        BINDING_ERROR => Some((message.trans, None)),
        BINDING_SUCCESS => Some((message.trans, Some(message.mapped_address()?))),
        _ => None,
    }
}

/// A STUN server's answer, for the hub's tests.
#[cfg(test)]
pub(crate) use tests::answer as test_answer;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::stunmsg::MAGIC;

    const BASE: &str = "192.168.1.10:8555";
    const SERVER: &str = "198.51.100.1:3478";

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    /// The server's success response to `request`, mapping to `mapped` (XOR-MAPPED-ADDRESS,
    /// then SOFTWARE, as coturn answers).
    pub(crate) fn answer(request: &[u8], mapped: SocketAddr) -> Vec<u8> {
        let trans: TransId = request[8..20].try_into().expect("a request");
        let SocketAddr::V4(v4) = mapped else {
            panic!("IPv4 in these tests")
        };
        let mut attributes = vec![0x00, 0x20, 0x00, 0x08, 0x00, 0x01];
        attributes.extend_from_slice(&(v4.port() ^ 0x2112).to_be_bytes());
        let ip = v4.ip().octets();
        attributes.extend(ip.iter().zip(MAGIC).map(|(b, k)| b ^ k));
        attributes.extend_from_slice(&[
            0x80, 0x22, 0x00, 0x05, b'c', b'o', b't', b'u', b'r', 0, 0, 0,
        ]);
        let mut message = vec![0x01, 0x01];
        message.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        message.extend_from_slice(&MAGIC);
        message.extend_from_slice(&trans);
        message.extend_from_slice(&attributes);
        message
    }

    #[test]
    fn a_mapping_is_learned_and_refreshed() {
        let start = Instant::now();
        let mut stun = StunGatherer::new(8555, &[addr(SERVER)], start, 7);
        stun.handle_timeout(start);
        let sent = stun.poll_transmit().expect("a request");
        assert_eq!(
            (sent.source, sent.destination),
            (addr("0.0.0.0:8555"), addr(SERVER))
        );
        assert_eq!(&sent.contents[..2], &[0x00, 0x01], "a binding request");

        let public = addr("203.0.113.5:40000");
        assert!(stun.handle_receive(
            start,
            addr(SERVER),
            addr(BASE),
            &answer(&sent.contents, public)
        ));
        assert_eq!(stun.reflexive(), vec![(public, addr(BASE))]);
        assert!(stun.take_changed());
        assert!(!stun.take_changed());

        // Refreshed after a minute; a new public address replaces the old one.
        assert_eq!(stun.poll_timeout(), Some(start + REFRESH_EVERY));
        let later = start + REFRESH_EVERY;
        stun.handle_timeout(later);
        let again = stun.poll_transmit().expect("a refresh");
        let moved = addr("203.0.113.9:40001");
        assert!(stun.handle_receive(
            later,
            addr(SERVER),
            addr(BASE),
            &answer(&again.contents, moved)
        ));
        assert_eq!(stun.reflexive(), vec![(moved, addr(BASE))]);
        assert!(stun.take_changed());
    }

    #[test]
    fn a_refresh_asks_again_at_once() {
        let start = Instant::now();
        let mut stun = StunGatherer::new(8555, &[addr(SERVER)], start, 7);
        stun.handle_timeout(start);
        let sent = stun.poll_transmit().expect("a request");
        let public = addr("203.0.113.5:40000");
        assert!(stun.handle_receive(
            start,
            addr(SERVER),
            addr(BASE),
            &answer(&sent.contents, public)
        ));
        let soon = start + Duration::from_secs(2);
        stun.refresh(soon);
        assert_eq!(stun.poll_timeout(), Some(soon));
        stun.handle_timeout(soon);
        assert!(stun.poll_transmit().is_some());
    }

    #[test]
    fn requests_are_retransmitted_then_retried_later() {
        let start = Instant::now();
        let mut stun = StunGatherer::new(8555, &[addr(SERVER)], start, 7);
        let mut now = start;
        let mut sends = Vec::new();
        while now < start + Duration::from_secs(20) {
            stun.handle_timeout(now);
            while stun.poll_transmit().is_some() {
                sends.push(now - start);
            }
            now += Duration::from_millis(100);
        }
        let ms: Vec<u128> = sends.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![0, 500, 1500, 3500, 7500]);
        assert_eq!(
            stun.poll_timeout(),
            Some(start + Duration::from_millis(15_500) + RETRY_AFTER)
        );
    }

    #[test]
    fn other_datagrams_are_left_alone() {
        let start = Instant::now();
        let mut stun = StunGatherer::new(8555, &[addr(SERVER)], start, 7);
        stun.handle_timeout(start);
        let sent = stun.poll_transmit().expect("a request");
        let reply = answer(&sent.contents, addr("203.0.113.5:40000"));
        assert!(
            !stun.handle_receive(start, addr("198.51.100.2:3478"), addr(BASE), &reply),
            "another source"
        );
        assert!(!stun.handle_receive(start, addr(SERVER), addr(BASE), b"garbage"));
        let mut other = sent.contents.clone();
        other[8] ^= 0xff; // another transaction
        assert!(!stun.handle_receive(start, addr(SERVER), addr(BASE), &other));
        assert!(stun.reflexive().is_empty());
    }

    #[test]
    fn a_mapping_equal_to_its_base_means_no_nat() {
        let start = Instant::now();
        let mut stun = StunGatherer::new(8555, &[addr(SERVER)], start, 7);
        stun.handle_timeout(start);
        let sent = stun.poll_transmit().expect("a request");
        assert!(stun.handle_receive(
            start,
            addr(SERVER),
            addr(BASE),
            &answer(&sent.contents, addr(BASE))
        ));
        assert!(stun.reflexive().is_empty());
    }
}
