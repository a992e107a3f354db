//! rtcam's own TURN allocation (RFC 8656): a relayed address on a configured TURN server,
//! offered as a relay candidate, for viewers that no direct path reaches (both ends behind
//! NATs that map per destination). Sans-IO: requests and wrapped media come out as datagrams
//! from the media port, what the server sends goes in, time is given.
//!
//! ```text
//! Allocate -> 401 (realm, nonce) -> Allocate + USERNAME/REALM/NONCE/MESSAGE-INTEGRITY -> relayed
//! Refresh a minute before LIFETIME ends; CreatePermission per peer IP, every 4 minutes while
//! it is used; 438 (stale nonce): again with the new nonce; 437 or expiry: allocate anew.
//! ```
//!
//! Over TCP (`turn:…?transport=tcp`, for networks that let no UDP out) the same messages go
//! on a connection the shell opens to the server at the first transmit, framed by their own
//! length (RFC 8656 §3.1). A reliable transport is not retransmitted on (RFC 8489 §6.2.2); the
//! allocation lives as long as the connection, so `connection_closed` ends it at once.
//!
//! Data goes as Send and Data indications, not ChannelBind/ChannelData: no channel numbers
//! to bind and refresh (every 10 minutes, per peer), one message format for everything, at 36
//! bytes per packet instead of 4 (3% of a 1200-byte video packet).
//!
//! Credentials: a long-term username and password, or the TURN REST scheme's secret, from
//! which credentials valid for `ttl_s` are minted (as for viewers, `TurnConfig::credentials`).
//! An allocation keeps its username; one that outlives it is refused a refresh and made anew.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::md5::md5;
use super::stun::StunTransmit;
use super::stunmsg::{
    ALLOCATE, Builder, CREATE_PERMISSION, DATA, DATA_INDICATION, ERROR, FIRST_RTO, LIFETIME,
    MAX_SENDS, Message, NONCE, REALM, REFRESH, REQUESTED_TRANSPORT, SEND_INDICATION, SUCCESS,
    SplitMix64, TransId, USERNAME, XOR_PEER_ADDRESS, XOR_RELAYED_ADDRESS,
};
use crate::config::{TurnConfig, TurnServer};

/// A server that refused or never answered is asked again after this.
const RETRY_AFTER: Duration = Duration::from_secs(30);
/// RFC 8656's default allocation lifetime, when a success response names none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(600);
/// Refresh this long before the allocation would end (or halfway, for short lifetimes).
const REFRESH_AHEAD: Duration = Duration::from_secs(60);
/// Permissions last 5 minutes (RFC 8656 §9); refreshed a minute before.
const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// A permission nothing was sent through since its last refresh is let lapse: the viewer is
/// gone (while it is there, str0m sends to it many times a second).
const PERMISSION_IDLE: Duration = PERMISSION_REFRESH;
/// A refused or unanswered CreatePermission is tried again after this.
const PERMISSION_RETRY: Duration = Duration::from_secs(5);
/// After a 437 (the server holds an allocation on our 5-tuple) the next Allocate waits this
/// long, doubling with every further one, up to `RETRY_AFTER`. An allocation just given back
/// (rtcam restarted) lingers a moment on the server (coturn: up to a second); one we cannot
/// give back (a crash, and REST credentials since changed: 441) lasts until it expires.
const MISMATCH_RETRY: Duration = Duration::from_secs(2);
/// 438 answers followed in a row before a request counts as failed.
const MAX_STALE_RETRIES: u8 = 3;
/// A request over TCP is sent once and given up after this (RFC 8489 §6.2.2's Ti).
const TCP_TRANSACTION_TIMEOUT: Duration = Duration::from_millis(39_500);
/// After the server closed the connection of a live allocation, it is asked again after this
/// (a restarted server, a NAT that dropped the connection); a failed connect waits
/// `RETRY_AFTER`.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Allocate,
    Refresh,
    /// Refresh with lifetime 0: the allocation is given back (437 on Allocate, shutdown).
    Release,
    Permission(IpAddr),
}

struct Transaction {
    trans: TransId,
    purpose: Purpose,
    contents: Vec<u8>,
    sends: u32,
    resend_at: Instant,
    /// Whether it carried our credentials (else it was the first, unauthenticated Allocate).
    authenticated: bool,
    stale_retries: u8,
}

/// What the server's 401 asked for, and the key for it.
struct Session {
    realm: String,
    nonce: String,
    username: String,
    key: [u8; 16],
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// No allocation; ask for one at `at`.
    Idle {
        at: Instant,
    },
    Allocating,
    Allocated {
        relayed: SocketAddr,
        /// The local address the server's answer came to: the candidate's base.
        base: SocketAddr,
        expires: Instant,
        refresh_at: Instant,
    },
    /// Given back (shutdown): nothing more is asked.
    Closed,
}

struct Permission {
    ip: IpAddr,
    /// When to send CreatePermission next (none while one is under way).
    due: Option<Instant>,
    installed: bool,
    last_used: Instant,
}

/// What `handle_receive` made of a datagram.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received<'a> {
    /// Not from this server, or not an answer to us: someone else's.
    NotMine,
    /// Taken (an answer, or something from the server to drop).
    Taken,
    /// A peer's datagram through the relay.
    Data {
        peer: SocketAddr,
        relayed: SocketAddr,
        data: &'a [u8],
    },
}

pub(crate) struct TurnClient {
    server: SocketAddr,
    tcp: bool,
    /// The media port on the unspecified address of the server's family (see `stun`).
    source: SocketAddr,
    auth: TurnConfig,
    /// Wall-clock seconds at `start`, for REST credentials.
    unix_start: u64,
    start: Instant,
    rng: SplitMix64,
    session: Option<Session>,
    state: State,
    transactions: Vec<Transaction>,
    permissions: Vec<Permission>,
    transmits: VecDeque<StunTransmit>,
    changed: bool,
    /// 437 answers to Allocate in a row (see `MISMATCH_RETRY`).
    mismatches: u32,
}

impl TurnClient {
    /// Allocates on `server` from media port `port`, starting at `now` (`unix_now` wall-clock
    /// seconds). `seed` makes the transaction ids: random from the caller.
    pub(crate) fn new(
        server: &TurnServer,
        port: u16,
        now: Instant,
        unix_now: u64,
        seed: u64,
    ) -> TurnClient {
        let TurnServer {
            addr: server,
            tcp,
            ref auth,
        } = *server;
        let any: IpAddr = if server.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        TurnClient {
            server,
            tcp,
            source: SocketAddr::new(any, port),
            auth: auth.clone(),
            unix_start: unix_now,
            start: now,
            rng: SplitMix64(seed),
            session: None,
            state: State::Idle { at: now },
            transactions: Vec::new(),
            permissions: Vec::new(),
            transmits: VecDeque::new(),
            changed: false,
            mismatches: 0,
        }
    }

    /// The relayed address and its base, while allocated.
    pub(crate) fn relayed(&self) -> Option<(SocketAddr, SocketAddr)> {
        match self.state {
            State::Allocated { relayed, base, .. } => Some((relayed, base)),
            _ => None,
        }
    }

    pub(crate) fn server(&self) -> SocketAddr {
        self.server
    }

    /// Whether its messages go over TCP (else UDP).
    pub(crate) fn tcp(&self) -> bool {
        self.tcp
    }

    /// Whether the relayed address appeared, changed or went since the last call.
    pub(crate) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<StunTransmit> {
        self.transmits.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let state = match self.state {
            State::Idle { at } => Some(at),
            State::Allocated {
                expires,
                refresh_at,
                ..
            } => {
                let refreshing = self
                    .transactions
                    .iter()
                    .any(|t| t.purpose == Purpose::Refresh);
                Some(if refreshing {
                    expires
                } else {
                    expires.min(refresh_at)
                })
            }
            State::Allocating | State::Closed => None,
        };
        let permissions = self
            .permissions
            .iter()
            .filter(|_| self.relayed().is_some())
            .filter_map(|p| p.due);
        let transactions = self.transactions.iter().map(|t| t.resend_at);
        state
            .into_iter()
            .chain(permissions)
            .chain(transactions)
            .min()
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.retransmit(now);
        if let State::Allocated { expires, .. } = self.state
            && expires <= now
        {
            log::warn!("TURN: the allocation on {} expired", self.server);
            self.lose_allocation(now, now);
        }
        match self.state {
            State::Idle { at } if at <= now => {
                self.state = State::Allocating;
                self.send(now, Purpose::Allocate, 0);
            }
            State::Allocated { refresh_at, .. }
                if refresh_at <= now
                    && !self
                        .transactions
                        .iter()
                        .any(|t| t.purpose == Purpose::Refresh) =>
            {
                self.send(now, Purpose::Refresh, 0);
            }
            _ => {}
        }
        if self.relayed().is_some() {
            self.permissions
                .retain(|p| p.due.is_none_or(|_| now < p.last_used + PERMISSION_IDLE));
            let due: Vec<IpAddr> = self
                .permissions
                .iter()
                .filter(|p| p.due.is_some_and(|d| d <= now))
                .map(|p| p.ip)
                .collect();
            for ip in due {
                self.send(now, Purpose::Permission(ip), 0);
            }
        }
    }

    /// Wraps a datagram str0m sends from the relayed address into a Send indication to the
    /// server (after a CreatePermission when the peer has none yet). False if `source` is not
    /// our relayed address: not ours to send.
    pub(crate) fn wrap(
        &mut self,
        now: Instant,
        source: SocketAddr,
        peer: SocketAddr,
        data: &[u8],
    ) -> bool {
        if self.relayed().map(|(relayed, _)| relayed) != Some(source) {
            return false;
        }
        self.permit(now, peer.ip());
        let trans = self.rng.trans_id();
        let contents = Builder::new(SEND_INDICATION, &trans)
            .xor_address(XOR_PEER_ADDRESS, peer)
            .attr(DATA, data)
            .finish(None);
        self.transmits.push_back(StunTransmit {
            source: self.source,
            destination: self.server,
            contents,
        });
        true
    }

    /// Makes sure `ip` may send to the relayed address (a viewer's candidate, known from its
    /// offer, a trickle, or the first packet str0m sends to it).
    pub(crate) fn permit(&mut self, now: Instant, ip: IpAddr) {
        if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
            p.last_used = now;
            return;
        }
        self.permissions.push(Permission {
            ip,
            due: Some(now),
            installed: false,
            last_used: now,
        });
        if self.relayed().is_some() {
            self.send(now, Purpose::Permission(ip), 0);
        }
    }

    /// Gives the allocation back (Refresh with lifetime 0, sent once: shutdown does not wait).
    pub(crate) fn close(&mut self, now: Instant) {
        let allocated = self.relayed().is_some();
        self.transactions.clear();
        if allocated {
            log::info!("TURN: giving the allocation on {} back", self.server);
            self.send(now, Purpose::Release, 0);
            self.transactions.clear();
            self.changed = true;
        }
        self.state = State::Closed;
    }

    /// The TCP connection to the server ended (or never came up): whatever the server held
    /// for us went with it.
    pub(crate) fn connection_closed(&mut self, now: Instant) {
        if !self.tcp {
            return;
        }
        let again_at = match self.state {
            State::Allocated { .. } => {
                log::warn!(
                    "TURN: the connection to {} closed; allocating anew",
                    self.server
                );
                now + RECONNECT_AFTER
            }
            State::Allocating => {
                log::warn!(
                    "TURN: no connection to {}; asking again in {} s",
                    self.server,
                    RETRY_AFTER.as_secs()
                );
                now + RETRY_AFTER
            }
            State::Idle { .. } | State::Closed => return,
        };
        // A new connection is a new session: the server challenges it afresh.
        self.session = None;
        self.lose_allocation(now, again_at);
    }

    /// Takes a datagram from the server: an answer to one of our requests, or a peer's data.
    /// `destination` is the local address it came to.
    pub(crate) fn handle_receive<'a>(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &'a [u8],
    ) -> Received<'a> {
        if source != self.server {
            return Received::NotMine;
        }
        let Some(message) = Message::parse(contents) else {
            return Received::NotMine;
        };
        if message.kind == DATA_INDICATION {
            let (Some((relayed, _)), Some(peer), Some(data)) = (
                self.relayed(),
                message.xor_address(XOR_PEER_ADDRESS),
                message.attr(DATA),
            ) else {
                return Received::Taken;
            };
            return Received::Data {
                peer,
                relayed,
                data,
            };
        }
        let Some(index) = self
            .transactions
            .iter()
            .position(|t| t.trans == message.trans)
        else {
            return Received::NotMine;
        };
        let class = message.kind & 0x0110;
        let method = message.kind & !0x0110;
        let transaction = &self.transactions[index];
        let expected = match transaction.purpose {
            Purpose::Allocate => ALLOCATE,
            Purpose::Refresh | Purpose::Release => REFRESH,
            Purpose::Permission(_) => CREATE_PERMISSION,
        };
        if method != expected || (class != SUCCESS && class != ERROR) {
            return Received::Taken;
        }
        if class == SUCCESS && transaction.authenticated {
            // An answer not keyed with our credentials is not the server's: drop it, keep
            // waiting for the real one.
            let key = self.session.as_ref().map(|s| s.key);
            if !key.is_some_and(|k| message.integrity_ok(&k)) {
                log::debug!(
                    "TURN: an answer from {} failed its integrity check",
                    self.server
                );
                return Received::Taken;
            }
        }
        let transaction = self.transactions.remove(index);
        if class == SUCCESS {
            self.on_success(now, destination, &transaction, &message);
        } else {
            self.on_error(now, &transaction, &message);
        }
        Received::Taken
    }

    fn on_success(
        &mut self,
        now: Instant,
        destination: SocketAddr,
        transaction: &Transaction,
        message: &Message,
    ) {
        let lifetime = message
            .lifetime()
            .map_or(DEFAULT_LIFETIME, |s| Duration::from_secs(u64::from(s)));
        match transaction.purpose {
            Purpose::Allocate => {
                let Some(relayed) = message.xor_address(XOR_RELAYED_ADDRESS) else {
                    log::warn!("TURN: {} allocated without an address", self.server);
                    self.state = State::Idle {
                        at: now + RETRY_AFTER,
                    };
                    return;
                };
                log::info!(
                    "TURN: {} relays for us at {relayed} for {} s",
                    self.server,
                    lifetime.as_secs()
                );
                self.mismatches = 0;
                self.state = State::Allocated {
                    relayed,
                    base: destination,
                    expires: now + lifetime,
                    refresh_at: now + refresh_ahead(lifetime),
                };
                self.changed = true;
                // A new allocation has no permissions: ask for those of live peers at once.
                for p in &mut self.permissions {
                    p.installed = false;
                    p.due = Some(now);
                }
                self.handle_timeout(now);
            }
            Purpose::Refresh => {
                if let State::Allocated {
                    expires,
                    refresh_at,
                    ..
                } = &mut self.state
                {
                    *expires = now + lifetime;
                    *refresh_at = now + refresh_ahead(lifetime);
                }
            }
            Purpose::Release => self.after_mismatch(now),
            Purpose::Permission(ip) => {
                if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
                    p.installed = true;
                    p.due = Some(now + PERMISSION_REFRESH);
                }
            }
        }
    }

    fn on_error(&mut self, now: Instant, transaction: &Transaction, message: &Message) {
        let code = message.error_code().unwrap_or(0);
        let purpose = transaction.purpose;
        match code {
            401 if !transaction.authenticated => {
                let (Some(realm), Some(nonce)) = (message.text(REALM), message.text(NONCE)) else {
                    return self.failed(now, purpose, code);
                };
                let Some((username, password)) = self.auth.credentials(self.unix_now(now)) else {
                    return self.failed(now, purpose, code);
                };
                let key = md5(format!("{username}:{realm}:{password}").as_bytes());
                self.session = Some(Session {
                    realm: realm.to_owned(),
                    nonce: nonce.to_owned(),
                    username,
                    key,
                });
                self.send(now, purpose, 0);
            }
            438 if transaction.stale_retries < MAX_STALE_RETRIES => {
                let (Some(session), Some(nonce)) = (self.session.as_mut(), message.text(NONCE))
                else {
                    return self.failed(now, purpose, code);
                };
                session.nonce = nonce.to_owned();
                if let Some(realm) = message.text(REALM) {
                    session.realm = realm.to_owned();
                }
                self.send(now, purpose, transaction.stale_retries + 1);
            }
            437 if purpose == Purpose::Allocate => {
                // The server still holds an allocation of ours (rtcam restarted within its
                // lifetime): give it back, then ask again.
                log::info!(
                    "TURN: {} holds an earlier allocation; releasing it",
                    self.server
                );
                self.send(now, Purpose::Release, 0);
            }
            _ => {
                if code == 401 {
                    // Our credentials were refused (a wrong password, or REST credentials
                    // that expired): the next Allocate starts from a new challenge.
                    self.session = None;
                }
                self.failed(now, purpose, code);
            }
        }
    }

    /// A request failed for good (`code` 0: unanswered).
    fn failed(&mut self, now: Instant, purpose: Purpose, code: u16) {
        let why = if code == 0 {
            "no answer".to_owned()
        } else {
            format!("error {code}")
        };
        match purpose {
            Purpose::Allocate => {
                log::warn!(
                    "TURN: {} refused an allocation ({why}); asking again in {} s",
                    self.server,
                    RETRY_AFTER.as_secs()
                );
                self.state = State::Idle {
                    at: now + RETRY_AFTER,
                };
            }
            Purpose::Refresh if code == 0 => {
                // Keep asking until the allocation expires (`handle_timeout`).
                if let State::Allocated { refresh_at, .. } = &mut self.state {
                    *refresh_at = now;
                }
            }
            Purpose::Refresh => {
                log::warn!(
                    "TURN: {} refused a refresh ({why}); allocating anew",
                    self.server
                );
                self.lose_allocation(now, now);
            }
            Purpose::Release => {
                log::info!(
                    "TURN: {} did not release the earlier allocation ({why})",
                    self.server
                );
                self.after_mismatch(now);
            }
            Purpose::Permission(ip) => {
                log::debug!("TURN: no permission for {ip} on {} ({why})", self.server);
                if let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip) {
                    p.due = Some(now + PERMISSION_RETRY);
                }
            }
        }
    }

    /// Allocates again after a 437 and the attempt to release what the server holds.
    fn after_mismatch(&mut self, now: Instant) {
        if matches!(self.state, State::Closed) {
            return;
        }
        let wait = MISMATCH_RETRY
            .saturating_mul(2u32.saturating_pow(self.mismatches))
            .min(RETRY_AFTER);
        self.mismatches = self.mismatches.saturating_add(1);
        self.state = State::Idle { at: now + wait };
    }

    fn lose_allocation(&mut self, now: Instant, again_at: Instant) {
        self.transactions.clear();
        for p in &mut self.permissions {
            p.installed = false;
            p.due = Some(now);
        }
        self.state = State::Idle { at: again_at };
        self.changed = true;
    }

    fn retransmit(&mut self, now: Instant) {
        let mut given_up = Vec::new();
        for t in &mut self.transactions {
            if t.resend_at > now {
                continue;
            }
            if self.tcp || t.sends >= MAX_SENDS {
                given_up.push(t.trans);
                continue;
            }
            self.transmits.push_back(StunTransmit {
                source: self.source,
                destination: self.server,
                contents: t.contents.clone(),
            });
            t.resend_at = now + FIRST_RTO * 2u32.pow(t.sends);
            t.sends += 1;
        }
        for trans in given_up {
            if let Some(index) = self.transactions.iter().position(|t| t.trans == trans) {
                let purpose = self.transactions.remove(index).purpose;
                self.failed(now, purpose, 0);
            }
        }
    }

    /// Sends a new request for `purpose`, with our credentials once a 401 asked for them.
    fn send(&mut self, now: Instant, purpose: Purpose, stale_retries: u8) {
        // One request per purpose at a time: a newer one replaces the older.
        self.transactions.retain(|t| t.purpose != purpose);
        if let Purpose::Permission(ip) = purpose
            && let Some(p) = self.permissions.iter_mut().find(|p| p.ip == ip)
        {
            p.due = None;
        }
        let trans = self.rng.trans_id();
        let mut message = match purpose {
            Purpose::Allocate => Builder::new(ALLOCATE, &trans)
                // UDP (17), then three reserved bytes.
                .attr(REQUESTED_TRANSPORT, &[17, 0, 0, 0]),
            Purpose::Refresh => Builder::new(REFRESH, &trans),
            Purpose::Release => Builder::new(REFRESH, &trans).attr(LIFETIME, &0u32.to_be_bytes()),
            Purpose::Permission(ip) => Builder::new(CREATE_PERMISSION, &trans)
                .xor_address(XOR_PEER_ADDRESS, SocketAddr::new(ip, 0)),
        };
        let mut key = None;
        if let Some(s) = &self.session {
            message = message
                .attr(USERNAME, s.username.as_bytes())
                .attr(REALM, s.realm.as_bytes())
                .attr(NONCE, s.nonce.as_bytes());
            key = Some(s.key);
        }
        let contents = message.finish(key.as_ref().map(|k| &k[..]));
        self.transmits.push_back(StunTransmit {
            source: self.source,
            destination: self.server,
            contents: contents.clone(),
        });
        self.transactions.push(Transaction {
            trans,
            purpose,
            contents,
            sends: 1,
            resend_at: now
                + if self.tcp {
                    TCP_TRANSACTION_TIMEOUT
                } else {
                    FIRST_RTO
                },
            authenticated: key.is_some(),
            stale_retries,
        });
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.unix_start + now.saturating_duration_since(self.start).as_secs()
    }
}

fn refresh_ahead(lifetime: Duration) -> Duration {
    if lifetime > 2 * REFRESH_AHEAD {
        lifetime - REFRESH_AHEAD
    } else {
        lifetime / 2
    }
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
