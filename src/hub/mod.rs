//! The hub: every viewer's WebRTC session, sans-IO.
//!
//! Nothing in here reads a clock, touches a socket or spawns: time comes in with every input,
//! datagrams and keyframe requests go out through `poll_output`. The event loop (`runtime`)
//! feeds it; tests drive it with simulated time and in-memory peers.
//!
//! ```text
//! hub.offer(now, id, sdp)            -> answer SDP, or OfferError (400/503)
//! hub.remove(id)                     -> DELETE
//! hub.handle_input(Input::Receive{..} | Input::AccessUnit{..} | Input::Timeout(now))
//! hub.send_control(now, id, text)    -> a reply on the viewer's `control` channel
//! loop { match hub.poll_output() { Transmit(t) | KeyframeNeeded | Event(e) | Timeout(at) } }
//! ```

pub(crate) mod admission;
pub(crate) mod keyframe;
pub(crate) mod link;
mod md5;
mod offer_error;
mod patch;
pub(crate) mod sdpfrag;
pub(crate) mod stun;
pub(crate) mod stunmsg;
pub(crate) mod turn;
pub(crate) mod viewer;

// The in-memory viewer of the tests, also driven by the per-packet benchmark.
#[cfg(any(test, feature = "testing"))]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod peer;
#[cfg(test)]
mod relay_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use str0m::config::DtlsCert;
use str0m::media::MediaTime;
use str0m::net::{DatagramRecv, Protocol, Receive, Transmit};
use str0m::{Candidate, Input as RtcInput};

use crate::config::TurnServer;
use crate::encode::{AccessUnit, Encoding};
pub(crate) use admission::client_key;
use admission::{Admit, Slot};
use keyframe::{KeyframeConfig, KeyframeCounters, KeyframePolicy};
use link::LinkReport;
pub use patch::{PatchError, Patched};
pub use sdpfrag::FragError;
use viewer::{Answering, Viewer, ViewerEvent};

/// A viewer's identity, also the last segment of its WHEP resource URL. Random (from the
/// caller): knowing it is what allows a DELETE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewerId(pub u128);

impl fmt::Display for ViewerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl FromStr for ViewerId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u128::from_str_radix(s, 16).map(ViewerId).map_err(|_| ())
    }
}

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub max_viewers: usize,
    /// An answered viewer that has not connected after this long is dropped (frees the slot
    /// of clients that POST and vanish).
    pub connect_timeout: Duration,
    /// Answered viewers not yet connected that one client address may hold; a further offer
    /// from it replaces its oldest (see `admission`).
    pub max_pending_per_client: usize,
    /// A connected viewer from which nothing (RTCP, STUN, data) has arrived for this long is
    /// gone. A receiving browser sends feedback several times a second, so silence this long
    /// means a killed tab or a lost network, not a lossy link.
    pub silence_timeout: Duration,
    pub keyframe: KeyframeConfig,
    /// Local host candidates (address and the UDP media port) put in every answer.
    pub candidates: Vec<SocketAddr>,
    /// Beside each UDP host candidate, a passive TCP one on the same address and port (ICE-TCP,
    /// RFC 6544): for viewers whose network lets no UDP through.
    pub ice_tcp: bool,
    /// The public address of a port forward or 1:1 NAT: offered as a server-reflexive
    /// candidate with the media port.
    pub public_ip: Option<IpAddr>,
    /// STUN servers (resolved) asked for the public address of every host candidate; what
    /// they say is offered as server-reflexive candidates.
    pub stun_servers: Vec<SocketAddr>,
    /// TURN servers (resolved) rtcam allocates a relayed address on, over UDP or TCP, with
    /// their credentials: every allocation is offered as a relay candidate.
    pub turn_servers: Vec<TurnServer>,
    /// Unix time (seconds) at the hub's start: TURN REST credentials name their expiry.
    pub unix_time: u64,
    /// Control messages larger than this are refused unread.
    pub max_control_message: usize,
    /// Bandwidth estimation for every viewer's link; None turns it off.
    pub bwe: Option<BweConfig>,
    /// Temporal layers in the encodings (see `AccessUnit::layer`).
    pub temporal_layers: u8,
    /// The stream's H.264 level_idc (see `encode::level`), for the answers' profile-level-id.
    pub h264_level: u8,
}

/// Bandwidth estimation per viewer (transport-wide congestion control, REMB).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BweConfig {
    /// Where a new viewer's estimate starts.
    pub initial_kbps: u32,
    /// The most the stream sends: the estimator probes for up to this.
    pub max_kbps: u32,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            max_viewers: 16,
            connect_timeout: Duration::from_secs(5),
            max_pending_per_client: 4,
            silence_timeout: Duration::from_secs(5),
            keyframe: KeyframeConfig::default(),
            candidates: Vec::new(),
            ice_tcp: false,
            public_ip: None,
            stun_servers: Vec::new(),
            turn_servers: Vec::new(),
            unix_time: 0,
            max_control_message: 16 * 1024,
            bwe: None,
            temporal_layers: 1,
            h264_level: 31,
        }
    }
}

pub(crate) enum Input<'a> {
    /// A datagram that arrived on the media socket.
    Receive {
        now: Instant,
        /// UDP, or TCP (one RFC 4571 frame of an ICE-TCP connection).
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &'a [u8],
    },
    /// An encoded picture, for every connected viewer.
    AccessUnit {
        now: Instant,
        unit: &'a AccessUnit,
    },
    Timeout(Instant),
}

#[derive(Debug)]
pub(crate) enum Output {
    Transmit(Transmit),
    /// Ask the encoding for an IDR (already coalesced and rate-limited).
    KeyframeNeeded(Encoding),
    Event(HubEvent),
    /// Nothing more until this time (or the next input).
    Timeout(Instant),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HubEvent {
    ViewerConnected(ViewerId),
    ViewerLeft {
        viewer: ViewerId,
        reason: LeaveReason,
    },
    ControlOpened(ViewerId),
    /// One message on a viewer's `control` channel.
    ControlMessage {
        viewer: ViewerId,
        data: Vec<u8>,
    },
    /// A control message over `max` bytes was dropped unread.
    ControlOversized {
        viewer: ViewerId,
        len: usize,
        max: usize,
    },
    ControlClosed(ViewerId),
    /// A new bandwidth estimate for the link to the viewer, bit/s.
    Estimate {
        viewer: ViewerId,
        bps: u64,
    },
    /// The viewer's ICE restart found a new path: its estimate starts afresh.
    PathRestored(ViewerId),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LeaveReason {
    /// WHEP DELETE.
    Deleted,
    /// ICE lost the viewer.
    Disconnected,
    /// Nothing arrived from it for the silence timeout.
    Silent,
    /// It never connected.
    ConnectTimeout,
    /// It had not connected yet and a newer offer needed its slot.
    Displaced,
    Failed(String),
    /// The hub is shutting down.
    Shutdown,
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaveReason::Deleted => write!(f, "deleted"),
            LeaveReason::Disconnected => write!(f, "disconnected"),
            LeaveReason::Silent => write!(f, "went silent"),
            LeaveReason::ConnectTimeout => write!(f, "never connected"),
            LeaveReason::Displaced => write!(f, "displaced by a newer offer before connecting"),
            LeaveReason::Failed(why) => write!(f, "failed: {why}"),
            LeaveReason::Shutdown => write!(f, "shutdown"),
        }
    }
}

/// Why an offer was refused. `Full` maps to 503, the others to 400.
#[derive(Debug, Clone, PartialEq)]
pub enum OfferError {
    Full { max: usize },
    Malformed(String),
    NoH264,
    Rejected(String),
}

impl fmt::Display for OfferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OfferError::Full { max } => write!(f, "viewer limit reached ({max})"),
            OfferError::Malformed(why) => write!(f, "malformed SDP offer: {why}"),
            OfferError::NoH264 => write!(
                f,
                "the offer has no video m-line that can receive H.264 \
                 (constrained baseline, packetization-mode=1)"
            ),
            OfferError::Rejected(why) => write!(f, "offer not accepted: {why}"),
        }
    }
}

impl std::error::Error for OfferError {}

#[derive(Debug)]
pub enum HubError {
    /// No DTLS certificate could be made (crypto provider failure).
    Certificate,
    BadCandidate(SocketAddr),
}

impl fmt::Display for HubError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HubError::Certificate => write!(f, "could not generate a DTLS certificate"),
            HubError::BadCandidate(a) => write!(f, "{a} cannot be an ICE host candidate"),
        }
    }
}

impl std::error::Error for HubError {}

/// Counters for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HubCounters {
    pub viewers: usize,
    pub connected: usize,
    pub keyframes: KeyframeCounters,
    /// Datagrams no viewer claimed (stray, late, or garbage).
    pub datagrams_unclaimed: u64,
}

pub(crate) struct Hub {
    config: HubConfig,
    /// What the answers offer: the host candidates, then server-reflexive ones.
    candidates: Vec<Candidate>,
    /// Host candidates only (the bases of the others).
    hosts: Vec<Candidate>,
    stun: stun::StunGatherer,
    /// One per TURN server: rtcam's relayed addresses.
    turn: Vec<turn::TurnClient>,
    cert: DtlsCert,
    viewers: Vec<Viewer>,
    /// Per encoding, by `Encoding::index`.
    keyframes: [KeyframePolicy; 2],
    outputs: VecDeque<Output>,
    /// Scratch for viewer events, reused so the per-packet path doesn't allocate.
    events: Vec<ViewerEvent>,
    /// RTP media time counts from here.
    epoch: Instant,
    /// The latest time any input brought; "nothing scheduled" is measured from it.
    last_now: Instant,
    datagrams_unclaimed: u64,
}

/// The host candidates of one local address: UDP, and with ICE-TCP a passive TCP one on the
/// same address and port (the viewer connects; RFC 6544).
fn host_candidates(addr: SocketAddr, tcp: bool) -> Result<Vec<Candidate>, str0m::error::IceError> {
    let mut candidates = vec![Candidate::host(addr, "udp")?];
    if tcp {
        candidates.push(
            Candidate::builder()
                .tcp()
                .host(addr)
                .tcptype(str0m::net::TcpType::Passive)
                .build()?,
        );
    }
    Ok(candidates)
}

impl Hub {
    pub(crate) fn new(config: HubConfig, now: Instant) -> Result<Hub, HubError> {
        let provider = str0m::crypto::from_feature_flags();
        // One certificate for every viewer: generating one per offer would add to each
        // viewer's time to first frame for no security gain (the fingerprint is per answer).
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(HubError::Certificate)?;
        let hosts = config
            .candidates
            .iter()
            .map(|&a| host_candidates(a, config.ice_tcp).map_err(|_| HubError::BadCandidate(a)))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        // Random without IO: std seeds every RandomState from the OS once.
        let seed =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), now);
        let port = config.candidates.first().map_or(0, SocketAddr::port);
        let stun = stun::StunGatherer::new(port, &config.stun_servers, now, seed);
        let turn = (1u64..)
            .zip(&config.turn_servers)
            .map(|(n, server)| {
                let seed = seed ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                turn::TurnClient::new(server, port, now, config.unix_time, seed)
            })
            .collect();
        let mut hub = Hub {
            keyframes: [
                KeyframePolicy::new(config.keyframe.clone()),
                KeyframePolicy::new(config.keyframe.clone()),
            ],
            config,
            candidates: Vec::new(),
            hosts,
            stun,
            turn,
            cert,
            viewers: Vec::new(),
            outputs: VecDeque::new(),
            events: Vec::new(),
            epoch: now,
            last_now: now,
            datagrams_unclaimed: 0,
        };
        hub.gather_candidates();
        Ok(hub)
    }

    /// Later answers offer these host candidates (interfaces come and go: DHCP, a VPN). A
    /// change is logged; addresses str0m cannot use are left out with a warning.
    pub(crate) fn set_host_candidates(&mut self, hosts: Vec<SocketAddr>) {
        if hosts == self.config.candidates {
            return;
        }
        let usable: Vec<Candidate> = hosts
            .iter()
            .filter_map(|&a| match host_candidates(a, self.config.ice_tcp) {
                Ok(c) => Some(c),
                Err(_) => {
                    log::warn!("{a} cannot be an ICE host candidate; left out");
                    None
                }
            })
            .flatten()
            .collect();
        log::info!(
            "ICE host candidates now: {}",
            hosts
                .iter()
                .map(|a| a.ip().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.config.candidates = hosts;
        self.hosts = usable;
        // A new interface or address may well mean a new public address.
        self.stun.refresh(self.last_now);
        self.gather_candidates();
    }

    /// The candidates answers offer: hosts (UDP, and passive TCP with ICE-TCP), the configured
    /// public address, what STUN found, and our TURN relays. Viewers already answered keep
    /// theirs (WHEP gives the server no way to trickle).
    fn gather_candidates(&mut self) {
        let mut candidates = self.hosts.clone();
        let public = self.config.public_ip.into_iter().filter_map(|ip| {
            let base = self
                .config
                .candidates
                .iter()
                .find(|b| b.is_ipv4() == ip.is_ipv4())?;
            Some((SocketAddr::new(ip, base.port()), *base))
        });
        for (address, base) in public.chain(self.stun.reflexive()) {
            let known = candidates.iter().any(|c| c.addr() == address);
            match Candidate::server_reflexive(address, base, "udp") {
                Ok(candidate) if !known => candidates.push(candidate),
                Ok(_) => {}
                Err(e) => log::warn!("cannot offer {address} as a candidate: {e}"),
            }
        }
        for (relayed, base) in self.turn.iter().filter_map(turn::TurnClient::relayed) {
            match Candidate::relayed(relayed, base, "udp") {
                Ok(candidate) => candidates.push(candidate),
                Err(e) => log::warn!("cannot offer {relayed} as a candidate: {e}"),
            }
        }
        self.candidates = candidates;
    }

    /// A WHEP offer from `client`: creates the viewer and returns the SDP answer.
    pub(crate) fn offer(
        &mut self,
        now: Instant,
        id: ViewerId,
        client: IpAddr,
        sdp: &str,
    ) -> Result<String, OfferError> {
        self.tick(now);
        if self.viewers.iter().any(|v| v.id == id) {
            return Err(OfferError::Rejected("viewer id in use".into()));
        }
        log::debug!("viewer {id} offer:\n{sdp}");
        let http_client = client;
        let client = client_key(client);
        let mut events = std::mem::take(&mut self.events);
        let answering = Answering {
            candidates: &self.candidates,
            cert: &self.cert,
            bwe: self.config.bwe,
            level: self.config.h264_level,
        };
        // The offer is checked before anyone is displaced for it.
        let result = Viewer::from_offer(id, client, now, sdp, &answering, &mut events)
            .and_then(|made| self.make_room(now, client).map(|()| made));
        let answer = match result {
            Ok((viewer, answer)) => {
                log::info!("viewer {id} answered ({} viewers)", self.viewers.len() + 1);
                log::debug!("viewer {id} answer:\n{answer}");
                self.viewers.push(viewer);
                let index = self.viewers.len() - 1;
                self.apply_events(index, now, &mut events);
                self.permit_on_relays(now, http_client);
                Ok(answer)
            }
            Err(e) => {
                events.clear();
                Err(e)
            }
        };
        self.events = events;
        self.reap(now);
        answer
    }

    /// Lets the address a viewer's offer (or PATCH: after an ICE restart, from its new network)
    /// came from send to rtcam's relays. Behind a NAT it is the viewer's public address, which
    /// the viewer may not know (no STUN server of its own):
    /// its checks then reach a relay from there, which needs a permission before str0m has
    /// any candidate there to send to. Private addresses are left out: a relay on the internet
    /// cannot reach them, and many refuse permissions for them.
    fn permit_on_relays(&mut self, now: Instant, client: IpAddr) {
        let private = match client.to_canonical() {
            IpAddr::V4(v4) => v4.is_private() || v4.is_loopback() || v4.is_link_local(),
            IpAddr::V6(v6) => {
                v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
            }
        };
        if private || client.is_unspecified() {
            return;
        }
        for turn in &mut self.turn {
            turn.permit(now, client.to_canonical());
        }
        self.drain_turn();
    }

    /// Frees a slot for a viewer from `client`, displacing a pending viewer if need be.
    fn make_room(&mut self, now: Instant, client: IpAddr) -> Result<(), OfferError> {
        let slots: Vec<Slot> = self
            .viewers
            .iter()
            .map(|v| Slot {
                client: v.client,
                connected: v.connected,
                created: v.created,
            })
            .collect();
        let max = self.config.max_viewers;
        match admission::admit(&slots, client, max, self.config.max_pending_per_client) {
            Admit::Room => Ok(()),
            Admit::Displace(index) => {
                self.drop_viewer(now, index, LeaveReason::Displaced);
                Ok(())
            }
            Admit::Full => Err(OfferError::Full { max }),
        }
    }

    /// WHEP DELETE: the viewer is gone at once. False if there is no such viewer.
    pub(crate) fn remove(&mut self, now: Instant, id: ViewerId) -> bool {
        self.tick(now);
        let Some(index) = self.index_of(id) else {
            return false;
        };
        self.drop_viewer(now, index, LeaveReason::Deleted);
        self.reap(now);
        true
    }

    /// Closes every viewer and gives the TURN allocations back (shutdown); the goodbye
    /// packets are in the output.
    pub(crate) fn remove_all(&mut self, now: Instant) {
        while !self.viewers.is_empty() {
            self.drop_viewer(now, 0, LeaveReason::Shutdown);
        }
        for turn in &mut self.turn {
            turn.close(now);
        }
        self.drain_turn();
    }

    pub(crate) fn handle_input(&mut self, input: Input) {
        let now = match input {
            Input::Receive { now, .. } | Input::AccessUnit { now, .. } | Input::Timeout(now) => now,
        };
        self.tick(now);
        match input {
            Input::Receive {
                now,
                proto,
                source,
                destination,
                contents,
            } => self.receive(now, proto, source, destination, contents),
            Input::AccessUnit { now, unit } => self.write_frame(now, unit),
            Input::Timeout(now) => self.timeout(now),
        }
    }

    /// A reply or event on a viewer's control channel. False if it has no open channel.
    pub(crate) fn send_control(&mut self, now: Instant, id: ViewerId, text: &str) -> bool {
        self.tick(now);
        let Some(index) = self.index_of(id) else {
            return false;
        };
        let mut events = std::mem::take(&mut self.events);
        let sent = self.viewers[index].send_control(now, text, &mut events);
        self.apply_events(index, now, &mut events);
        self.events = events;
        self.reap(now);
        sent
    }

    /// A viewer asked for a keyframe through the control channel: same limits as PLI.
    pub(crate) fn request_keyframe(&mut self, now: Instant, id: ViewerId) {
        if let Some(index) = self.index_of(id) {
            let encoding = self.viewers[index].link.keyframe_encoding();
            self.keyframes[encoding.index()].on_viewer_request(id, now);
            self.collect_keyframe_request();
        }
    }

    /// From now on the viewer is sent `encoding` up to temporal layer `max_layer`; a move to
    /// another encoding happens at its next IDR, which is asked for now.
    pub(crate) fn subscribe(
        &mut self,
        now: Instant,
        id: ViewerId,
        encoding: Encoding,
        max_layer: u8,
    ) {
        self.tick(now);
        let Some(index) = self.index_of(id) else {
            return;
        };
        let viewer = &mut self.viewers[index];
        if let Some(target) = viewer.link.subscribe(encoding, max_layer)
            && viewer.connected
        {
            self.keyframes[target.index()].on_join(now);
            self.collect_keyframe_request();
        }
    }

    /// Has the viewer's bandwidth estimator look for up to `target_bps` (see `Viewer::probe`).
    pub(crate) fn probe(&mut self, now: Instant, id: ViewerId, target_bps: u64) {
        self.tick(now);
        let Some(index) = self.index_of(id) else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        self.viewers[index].probe(now, target_bps, &mut events);
        self.apply_events(index, now, &mut events);
        self.events = events;
        self.reap(now);
    }

    /// The shell's TCP connection to `peer` ended: if it carried a TURN allocation, that
    /// allocation is gone (and is asked for again).
    pub(crate) fn tcp_closed(&mut self, now: Instant, peer: SocketAddr) {
        self.tick(now);
        for turn in self
            .turn
            .iter_mut()
            .filter(|t| t.tcp() && t.server() == peer)
        {
            turn.connection_closed(now);
        }
        self.drain_turn();
    }

    /// The stream's H.264 level changed (a restart at another size): later answers say so.
    pub(crate) fn set_h264_level(&mut self, level: u8) {
        self.config.h264_level = level;
    }

    /// What is known of every viewer's link, for `status`.
    pub(crate) fn links(&self) -> Vec<(ViewerId, LinkReport)> {
        let layers = self.config.temporal_layers.max(1);
        self.viewers
            .iter()
            .map(|v| {
                let mut report = v.link.report(String::new(), v.connected);
                report.layers = report.layers.min(layers);
                (v.id, report)
            })
            .collect()
    }

    pub(crate) fn poll_output(&mut self) -> Output {
        if let Some(o) = self.outputs.pop_front() {
            return o;
        }
        let viewers = self.viewers.iter().map(|v| {
            if v.connected {
                v.timeout.min(v.last_heard + self.config.silence_timeout)
            } else {
                v.timeout.min(v.created + self.config.connect_timeout)
            }
        });
        let keyframes = self
            .keyframes
            .iter()
            .filter_map(KeyframePolicy::poll_timeout);
        let next = viewers
            .chain(keyframes)
            .chain(self.stun.poll_timeout())
            .chain(self.turn.iter().filter_map(turn::TurnClient::poll_timeout))
            .min();
        // With nothing scheduled, an hour from the latest input is "never" in practice.
        Output::Timeout(next.unwrap_or(self.last_now + Duration::from_secs(3600)))
    }

    pub(crate) fn counters(&self) -> HubCounters {
        HubCounters {
            viewers: self.viewers.len(),
            connected: self.viewers.iter().filter(|v| v.connected).count(),
            keyframes: self.keyframes[0].counters() + self.keyframes[1].counters(),
            datagrams_unclaimed: self.datagrams_unclaimed,
        }
    }

    pub(crate) fn viewer_ids(&self) -> Vec<ViewerId> {
        self.viewers.iter().map(|v| v.id).collect()
    }

    fn tick(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
    }

    fn receive(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        // Over TCP: a TURN server's message on the connection rtcam opened, or a viewer's
        // ICE-TCP frame. STUN servers are asked over UDP only.
        let tcp = proto == Protocol::Tcp;
        for index in 0..self.turn.len() {
            if self.turn[index].tcp() != tcp {
                continue;
            }
            match self.turn[index].handle_receive(now, source, destination, contents) {
                turn::Received::NotMine => {}
                turn::Received::Taken => return self.drain_turn(),
                // A viewer's datagram through our relay: to str0m it arrived at the relayed
                // address (the candidate's), from the viewer's.
                turn::Received::Data {
                    peer,
                    relayed,
                    data,
                } => return self.deliver(now, Protocol::Udp, peer, relayed, data),
            }
        }
        if tcp {
            return self.deliver(now, proto, source, destination, contents);
        }
        if self.stun.handle_receive(now, source, destination, contents) {
            if self.stun.take_changed() {
                self.gather_candidates();
            }
            return;
        }
        self.deliver(now, Protocol::Udp, source, destination, contents);
    }

    /// Hands a datagram to the viewer whose session it belongs to.
    fn deliver(
        &mut self,
        now: Instant,
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &[u8],
    ) {
        let Ok(contents) = DatagramRecv::try_from(contents) else {
            self.datagrams_unclaimed += 1;
            return;
        };
        let receive = Receive {
            proto,
            source,
            destination,
            contents,
        };
        // `accepts` takes an `Input`; build it once and hand the `Receive` back out of it.
        let input = RtcInput::Receive(now, receive);
        let Some(index) = self.viewers.iter().position(|v| v.accepts(&input)) else {
            self.datagrams_unclaimed += 1;
            return;
        };
        let RtcInput::Receive(_, receive) = input else {
            return;
        };
        let mut events = std::mem::take(&mut self.events);
        self.viewers[index].last_heard = now;
        self.viewers[index].receive(now, receive, &mut events);
        self.apply_events(index, now, &mut events);
        self.events = events;
        self.reap(now);
    }

    fn write_frame(&mut self, now: Instant, frame: &AccessUnit) {
        if frame.keyframe {
            self.keyframes[frame.encoding.index()].on_keyframe(now);
        }
        let since_epoch = frame.captured.saturating_duration_since(self.epoch);
        let rtp_time = MediaTime::from_90khz(since_epoch.as_micros() as u64 * 9 / 100);
        let mut events = std::mem::take(&mut self.events);
        for index in 0..self.viewers.len() {
            let viewer = &mut self.viewers[index];
            if !viewer.connected || viewer.failed || !viewer.link.takes(frame) {
                continue;
            }
            viewer.write_frame(now, frame.captured, rtp_time, &frame.data, &mut events);
            self.apply_events(index, now, &mut events);
        }
        self.events = events;
        self.reap(now);
    }

    fn timeout(&mut self, now: Instant) {
        self.stun.handle_timeout(now);
        while let Some(t) = self.stun.poll_transmit() {
            self.outputs.push_back(Output::Transmit(Transmit {
                proto: Protocol::Udp,
                source: t.source,
                destination: t.destination,
                contents: t.contents.into(),
            }));
        }
        if self.stun.take_changed() {
            self.gather_candidates();
        }
        for turn in &mut self.turn {
            turn.handle_timeout(now);
        }
        self.drain_turn();
        let mut events = std::mem::take(&mut self.events);
        for index in 0..self.viewers.len() {
            let viewer = &mut self.viewers[index];
            if !viewer.connected && now >= viewer.created + self.config.connect_timeout {
                self.mark_leaving(index, LeaveReason::ConnectTimeout);
                continue;
            }
            if viewer.connected && now >= viewer.last_heard + self.config.silence_timeout {
                self.mark_leaving(index, LeaveReason::Silent);
                continue;
            }
            if viewer.timeout <= now {
                viewer.handle_timeout(now, &mut events);
                self.apply_events(index, now, &mut events);
            }
        }
        self.events = events;
        for encoding in Encoding::ALL {
            let waiting = self
                .viewers
                .iter()
                .any(|v| v.connected && !v.failed && v.link.waits_for() == Some(encoding));
            self.keyframes[encoding.index()].handle_timeout(now, waiting);
        }
        self.collect_keyframe_request();
        self.reap(now);
    }

    fn apply_events(&mut self, index: usize, now: Instant, events: &mut Vec<ViewerEvent>) {
        let id = self.viewers[index].id;
        for event in events.drain(..) {
            match event {
                ViewerEvent::Transmit(t) => self.transmit(now, t),
                ViewerEvent::Connected => {
                    log::info!("viewer {id} connected");
                    self.outputs
                        .push_back(Output::Event(HubEvent::ViewerConnected(id)));
                    let encoding = self.viewers[index].link.keyframe_encoding();
                    self.keyframes[encoding.index()].on_join(now);
                    let event = HubEvent::PathRestored(id);
                    self.outputs.push_back(Output::Event(event));
                }
                ViewerEvent::Disconnected => {
                    self.viewers[index].failed = true;
                    self.mark_leaving(index, LeaveReason::Disconnected);
                }
                ViewerEvent::PathRestored => {
                    log::debug!("viewer {id}: the ICE restart's path is up; an IDR for it");
                    let encoding = self.viewers[index].link.keyframe_encoding();
                    self.keyframes[encoding.index()].on_join(now);
                }
                ViewerEvent::KeyframeRequest => {
                    let encoding = self.viewers[index].link.keyframe_encoding();
                    self.keyframes[encoding.index()].on_viewer_request(id, now);
                }
                ViewerEvent::Estimate(bps) => {
                    self.viewers[index].link.estimate_bps = Some(bps);
                    let event = HubEvent::Estimate { viewer: id, bps };
                    self.outputs.push_back(Output::Event(event));
                }
                ViewerEvent::ControlOpen => self
                    .outputs
                    .push_back(Output::Event(HubEvent::ControlOpened(id))),
                ViewerEvent::ControlData(data) => {
                    let event = if data.len() > self.config.max_control_message {
                        HubEvent::ControlOversized {
                            viewer: id,
                            len: data.len(),
                            max: self.config.max_control_message,
                        }
                    } else {
                        HubEvent::ControlMessage { viewer: id, data }
                    };
                    self.outputs.push_back(Output::Event(event));
                }
                ViewerEvent::ControlClose => self
                    .outputs
                    .push_back(Output::Event(HubEvent::ControlClosed(id))),
                ViewerEvent::Failed(why) => self.mark_leaving(index, LeaveReason::Failed(why)),
            }
        }
        self.collect_keyframe_request();
    }

    /// Sends what str0m sends: from a relayed address it goes to the TURN server, wrapped.
    fn transmit(&mut self, now: Instant, t: Transmit) {
        for index in 0..self.turn.len() {
            if self.turn[index].wrap(now, t.source, t.destination, &t.contents) {
                return self.drain_turn();
            }
        }
        self.outputs.push_back(Output::Transmit(t));
    }

    /// Moves the TURN clients' datagrams to the output, and offers a relayed address that
    /// appeared or changed.
    fn drain_turn(&mut self) {
        let mut changed = false;
        for turn in &mut self.turn {
            let proto = if turn.tcp() {
                Protocol::Tcp
            } else {
                Protocol::Udp
            };
            while let Some(t) = turn.poll_transmit() {
                self.outputs.push_back(Output::Transmit(Transmit {
                    proto,
                    source: t.source,
                    destination: t.destination,
                    contents: t.contents.into(),
                }));
            }
            changed |= turn.take_changed();
        }
        if changed {
            self.gather_candidates();
        }
    }

    fn collect_keyframe_request(&mut self) {
        for encoding in Encoding::ALL {
            if self.keyframes[encoding.index()].poll_request() {
                self.outputs.push_back(Output::KeyframeNeeded(encoding));
            }
        }
    }

    /// Records why a failed viewer goes; `reap` removes it after its events are out.
    fn mark_leaving(&mut self, index: usize, reason: LeaveReason) {
        let viewer = &mut self.viewers[index];
        viewer.failed = true;
        if viewer.leave_reason.is_none() {
            viewer.leave_reason = Some(reason);
        }
    }

    fn reap(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.viewers.len() {
            if self.viewers[index].failed {
                let reason = self.viewers[index]
                    .leave_reason
                    .clone()
                    .unwrap_or(LeaveReason::Failed("unknown".into()));
                self.drop_viewer(now, index, reason);
            } else {
                index += 1;
            }
        }
    }

    fn drop_viewer(&mut self, now: Instant, index: usize, reason: LeaveReason) {
        let mut viewer = self.viewers.remove(index);
        let mut events = std::mem::take(&mut self.events);
        viewer.close(now, &mut events);
        // Only its goodbye packets matter now; its other events die with it.
        for event in events.drain(..) {
            if let ViewerEvent::Transmit(t) = event {
                self.transmit(now, t);
            }
        }
        self.events = events;
        for keyframes in &mut self.keyframes {
            keyframes.on_viewer_left(viewer.id);
        }
        log::info!(
            "viewer {} left: {reason} ({} viewers)",
            viewer.id,
            self.viewers.len()
        );
        self.outputs.push_back(Output::Event(HubEvent::ViewerLeft {
            viewer: viewer.id,
            reason,
        }));
    }

    fn index_of(&self, id: ViewerId) -> Option<usize> {
        self.viewers.iter().position(|v| v.id == id)
    }
}
