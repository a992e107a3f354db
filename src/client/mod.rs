//! An in-repo WHEP client: str0m on the offering side, OpenH264 to decode, the frame stamp
//! read back from every picture. The integration tests, the benchmarks and the VM harness
//! use it as a viewer; it also checks that rtcam keeps to WHEP as a third-party player would.

pub mod camera_check;
pub mod expect;
pub mod follow;
pub mod http;
mod ice_servers;
pub mod soak;
pub mod timeline;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use openh264::decoder::Decoder;
use openh264::formats::YUVSource;
use serde_json::Value;
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use crate::hub::sdpfrag::{SdpFrag, answer_after_restart, client_fragment};
use crate::source::stamp;
pub use crate::source::stamp::Stamp;
use http::{HttpResponse, Url};

#[derive(Debug)]
pub enum ClientError {
    Io(io::Error),
    /// The server refused the offer (status and its one-line reason).
    Refused(u16, String),
    Protocol(String),
    Webrtc(str0m::RtcError),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Refused(s, why) => write!(f, "server answered {s}: {why}"),
            ClientError::Protocol(why) => write!(f, "{why}"),
            ClientError::Webrtc(e) => write!(f, "webrtc: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl From<str0m::RtcError> for ClientError {
    fn from(e: str0m::RtcError) -> Self {
        ClientError::Webrtc(e)
    }
}

#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Decode pictures and read their stamps (off for load generation).
    pub decode: bool,
    /// Offer the `control` data channel.
    pub control: bool,
    /// Extra request headers for the POST and the DELETE (e.g. Authorization: a server that
    /// asks for a token to join may ask for it to leave too).
    pub headers: Vec<(String, String)>,
    /// Offer without candidates and send ours by PATCH after the answer (trickle ICE), as
    /// browsers and most WHEP players do.
    pub trickle: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            decode: true,
            control: true,
            headers: Vec::new(),
            trickle: false,
        }
    }
}

/// `Authorization: Bearer <token>` as `ClientOptions::headers`, or none without a token.
pub fn bearer_headers(token: Option<&str>) -> Vec<(String, String)> {
    token
        .map(|t| vec![("Authorization".to_string(), format!("Bearer {t}"))])
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedFrame {
    pub keyframe: bool,
    pub bytes: usize,
    pub arrived: Instant,
    /// False when RTP packets before this frame were lost for good (str0m's `contiguous`).
    pub contiguous: bool,
    /// Set when decoding was on and the picture decoded. None also while the client waits for
    /// a keyframe after a loss (see `WhepClient::keyframe_requests`).
    pub picture: Option<Picture>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    /// The stamp read from the picture; None when the picture has none (or it didn't read).
    pub stamp: Option<Stamp>,
    /// The luma plane, tightly packed, for tests that look at the picture itself.
    pub luma: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Connected,
    ControlOpen,
    Frame(ReceivedFrame),
    Control(String),
    Disconnected,
}

pub struct WhepClient {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    endpoint: Url,
    resource: Option<Url>,
    /// The server's session as this client knows it: its answer (updated by ICE restarts)
    /// and the resource's entity tag.
    answer: String,
    etag: Option<String>,
    /// `ClientOptions::headers`, sent again with the DELETE.
    headers: Vec<(String, String)>,
    video: Mid,
    control: Option<ChannelId>,
    control_open: bool,
    decoder: Option<Decoder>,
    events: VecDeque<ClientEvent>,
    buf: Vec<u8>,
    next_request_id: u32,
    /// Decode failures (corrupt or incomplete frames).
    pub decode_errors: u64,
    /// Frames that followed lost RTP packets (str0m gave up on retransmission).
    pub gaps: u64,
    /// PLIs sent. After a gap or a decode error the client decodes nothing until the next
    /// keyframe and asks for one, as browsers do: a P-frame whose reference is missing would
    /// only decode into a broken picture.
    pub keyframe_requests: u64,
    waiting_for_keyframe: bool,
    last_keyframe_request: Option<Instant>,
}

/// How often a client that waits for a keyframe asks again.
const KEYFRAME_REQUEST_EVERY: Duration = Duration::from_millis(500);

impl WhepClient {
    /// POSTs an offer to the WHEP endpoint `url` and applies the answer. ICE and DTLS proceed
    /// in `poll`.
    pub fn connect(url: &str, options: ClientOptions) -> Result<WhepClient, ClientError> {
        let endpoint = Url::parse(url)?;
        let server = endpoint.socket_addr()?;
        let socket = UdpSocket::bind(SocketAddr::new(local_ip_towards(server)?, 0))?;
        let local = socket.local_addr()?;

        let now = Instant::now();
        let mut rtc = RtcConfig::new().clear_codecs().enable_h264(true).build(now);
        let mut candidates = vec![
            Candidate::host(local, "udp")
                .map_err(|e| ClientError::Protocol(format!("local candidate: {e}")))?,
        ];
        // Behind a NAT the server reaches us only at our public address: ask the STUN servers
        // it names (OPTIONS, as WHEP players do before offering).
        let auth: Vec<(&str, &str)> = options
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Ok(answer) = http::request(&endpoint, "OPTIONS", &auth, &[]) {
            let links: Vec<&str> = answer
                .headers
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case("link"))
                .map(|(_, value)| value.as_str())
                .collect();
            let servers = ice_servers::stun_servers(&links);
            if let Some((mapped, base)) =
                ice_servers::reflexive_address(&socket, &servers, Duration::from_secs(1))
                && let Ok(candidate) = Candidate::server_reflexive(mapped, base, "udp")
            {
                candidates.push(candidate);
            }
        }
        if !options.trickle {
            for candidate in &candidates {
                rtc.add_local_candidate(candidate.clone());
            }
        }
        let mut change = rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let control = options
            .control
            .then(|| change.add_channel("control".to_string()));
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| ClientError::Protocol("nothing to offer".into()))?;

        let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/sdp")];
        headers.extend(
            options
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let offer = offer.to_sdp_string();
        let response = http::request(&endpoint, "POST", &headers, offer.as_bytes())?;
        let resource = accept_answer(&mut rtc, pending, &endpoint, &response)?;
        let etag = response.header("etag").map(str::to_owned);
        if options.trickle {
            let mut added = Vec::new();
            for candidate in candidates {
                let text = rtc
                    .add_local_candidate(candidate)
                    .map(|c| c.to_sdp_string())
                    .ok_or_else(|| ClientError::Protocol("local candidate refused".into()))?;
                added.push(text);
            }
            let frag = client_fragment(&offer, &added);
            let status = patch(&resource, etag.as_deref(), &options.headers, &frag)?.status;
            if status != 204 {
                return Err(ClientError::Refused(status, "trickled candidate".into()));
            }
        }

        Ok(WhepClient {
            rtc,
            socket,
            local,
            endpoint,
            resource: Some(resource),
            answer: response.text(),
            etag,
            headers: options.headers.clone(),
            video,
            control,
            control_open: false,
            decoder: if options.decode {
                Some(Decoder::new().map_err(|e| ClientError::Protocol(e.to_string()))?)
            } else {
                None
            },
            events: VecDeque::new(),
            buf: vec![0; 2000],
            next_request_id: 1,
            decode_errors: 0,
            gaps: 0,
            keyframe_requests: 0,
            waiting_for_keyframe: false,
            last_keyframe_request: None,
        })
    }

    /// The WHEP resource URL the server gave (its `Location`).
    pub fn resource(&self) -> Option<&Url> {
        self.resource.as_ref()
    }

    /// Runs the connection until the next event or until `timeout` passes.
    pub fn poll(&mut self, timeout: Duration) -> Result<Option<ClientEvent>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let wake = self.drain()?;
            if let Some(e) = self.events.pop_front() {
                return Ok(Some(e));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let wait = (wake.min(deadline) - now).max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait))?;
            self.buf.resize(2000, 0);
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, source)) => {
                    let Ok(contents) = self.buf[..n].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        },
                    );
                    self.rtc.handle_input(input)?;
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    self.rtc.handle_input(Input::Timeout(Instant::now()))?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Polls until `pred` accepts an event, collecting every event on the way.
    pub fn poll_until(
        &mut self,
        timeout: Duration,
        mut pred: impl FnMut(&ClientEvent) -> bool,
    ) -> Result<Vec<ClientEvent>, ClientError> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            if let Some(e) = self.poll(left)? {
                let done = pred(&e);
                seen.push(e);
                if done {
                    return Ok(seen);
                }
            }
        }
        Err(ClientError::Protocol(format!(
            "timed out after {timeout:?} ({} events seen)",
            seen.len()
        )))
    }

    /// Sends one text message on the control channel.
    pub fn send_control(&mut self, text: &str) -> Result<(), ClientError> {
        let cid = self
            .control
            .filter(|_| self.control_open)
            .ok_or_else(|| ClientError::Protocol("control channel is not open".into()))?;
        let mut channel = self
            .rtc
            .channel(cid)
            .ok_or_else(|| ClientError::Protocol("control channel is gone".into()))?;
        if !channel.write(false, text.as_bytes())? {
            return Err(ClientError::Protocol(
                "control channel send buffer is full".into(),
            ));
        }
        Ok(())
    }

    /// Sends `{"id": n, "cmd": cmd, ...args}` and waits for the response with that id.
    /// Other events that arrive meanwhile are kept for later `poll`s.
    pub fn command(
        &mut self,
        cmd: &str,
        args: Value,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let id = self.next_request_id;
        self.next_request_id += 1;
        let mut request = match args {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            _ => return Err(ClientError::Protocol("args must be an object".into())),
        };
        request.insert("id".into(), id.into());
        request.insert("cmd".into(), cmd.into());
        self.send_control(&Value::Object(request).to_string())?;
        self.await_response(Some(id), timeout)
    }

    /// Waits for a control response whose `id` is `id` (None: a response with a null id).
    pub fn await_response(
        &mut self,
        id: Option<u32>,
        timeout: Duration,
    ) -> Result<Value, ClientError> {
        let want = id.map_or(Value::Null, Value::from);
        let mut kept = Vec::new();
        let mut found = None;
        let seen = self.poll_until(timeout, |e| match e {
            ClientEvent::Control(text) => serde_json::from_str::<Value>(text)
                .is_ok_and(|v| v.get("id") == Some(&want) && v.get("ok").is_some()),
            _ => false,
        });
        for e in seen? {
            match e {
                ClientEvent::Control(text) if found.is_none() => {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v.get("id") == Some(&want) && v.get("ok").is_some() {
                        found = Some(v);
                    } else {
                        kept.push(ClientEvent::Control(text));
                    }
                }
                other => kept.push(other),
            }
        }
        for e in kept.into_iter().rev() {
            self.events.push_front(e);
        }
        found.ok_or_else(|| ClientError::Protocol("no response".into()))
    }

    /// Restarts ICE from a new local socket, as a viewer whose network changed: WHEP's PATCH
    /// with new credentials and the new candidate, and the server's new credentials back. The
    /// media session (DTLS, streams, the data channel) stays.
    pub fn restart_ice(&mut self) -> Result<(), ClientError> {
        let resource = self
            .resource
            .clone()
            .ok_or_else(|| ClientError::Protocol("already deleted".into()))?;
        // The address the route to the server takes now (it changed, or this is a test).
        let server = self.endpoint.socket_addr()?;
        let socket = UdpSocket::bind(SocketAddr::new(local_ip_towards(server)?, 0))?;
        let local = socket.local_addr()?;
        let candidate = Candidate::host(local, "udp")
            .map_err(|e| ClientError::Protocol(format!("local candidate: {e}")))?;
        let mut change = self.rtc.sdp_api();
        change.ice_restart(false);
        let (offer, pending) = change
            .apply()
            .ok_or_else(|| ClientError::Protocol("nothing to restart".into()))?;
        let offer = offer.to_sdp_string();
        let frag = client_fragment(&offer, &[candidate.to_sdp_string()]);
        let response = patch(&resource, Some("*"), &self.headers, &frag)?;
        if response.status != 200 {
            return Err(ClientError::Refused(
                response.status,
                response.text().trim().to_string(),
            ));
        }
        let theirs = SdpFrag::parse(&response.body)
            .map_err(|e| ClientError::Protocol(format!("restart answer: {e}")))?;
        let answer = answer_after_restart(&self.answer, &theirs)
            .ok_or_else(|| ClientError::Protocol("restart answer has no credentials".into()))?;
        let parsed = SdpAnswer::from_sdp_string(&answer)
            .map_err(|e| ClientError::Protocol(format!("restart answer: {e}")))?;
        self.rtc.sdp_api().accept_answer(pending, parsed)?;
        // str0m drops the local candidates when the restart completes.
        self.rtc.add_local_candidate(candidate);
        self.socket = socket;
        self.local = local;
        self.answer = answer;
        self.etag = response.header("etag").map(str::to_owned);
        Ok(())
    }

    /// Whether the route to the server now leaves from another local address than this
    /// client's socket: the network changed (a phone moving from Wi-Fi to mobile data), and
    /// only an ICE restart from the new address gets the stream back.
    pub fn network_changed(&self) -> bool {
        let Ok(server) = self.endpoint.socket_addr() else {
            return false;
        };
        local_ip_towards(server).is_ok_and(|ip| ip != self.local.ip())
    }

    /// The resource's entity tag (it changes with every ICE restart).
    pub fn etag(&self) -> Option<&str> {
        self.etag.as_deref()
    }

    /// WHEP DELETE of this viewer's resource. Returns the HTTP status.
    pub fn delete(&mut self) -> Result<u16, ClientError> {
        let Some(resource) = self.resource.take() else {
            return Err(ClientError::Protocol("already deleted".into()));
        };
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let response = http::request(&resource, "DELETE", &headers, &[])?;
        Ok(response.status)
    }

    /// The WHEP endpoint this client posted to.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// Drains str0m; returns when it next wants time.
    fn drain(&mut self) -> Result<Instant, ClientError> {
        loop {
            match self.rtc.poll_output()? {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    // A full socket buffer on loopback is transient; the peer retransmits.
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Connected => self.events.push_back(ClientEvent::Connected),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                self.events.push_back(ClientEvent::Disconnected)
            }
            Event::ChannelOpen(cid, _) if Some(cid) == self.control => {
                self.control_open = true;
                self.events.push_back(ClientEvent::ControlOpen);
            }
            Event::ChannelData(d) if Some(d.id) == self.control => {
                let text = String::from_utf8_lossy(&d.data).into_owned();
                self.events.push_back(ClientEvent::Control(text));
            }
            Event::ChannelClose(cid) if Some(cid) == self.control => self.control_open = false,
            Event::MediaData(m) if m.mid == self.video => {
                let arrived = Instant::now();
                let keyframe = m.is_keyframe();
                if !m.contiguous {
                    self.gaps += 1;
                    self.waiting_for_keyframe = true;
                }
                let picture = if self.decoder.is_none() {
                    None
                } else if self.waiting_for_keyframe && !keyframe {
                    self.request_keyframe(arrived);
                    None
                } else {
                    self.waiting_for_keyframe = false;
                    let errors = self.decode_errors;
                    let picture = self.decode(&m.data);
                    if self.decode_errors > errors {
                        self.waiting_for_keyframe = true;
                        self.request_keyframe(arrived);
                    }
                    picture
                };
                self.events.push_back(ClientEvent::Frame(ReceivedFrame {
                    keyframe,
                    bytes: m.data.len(),
                    arrived,
                    contiguous: m.contiguous,
                    picture,
                }));
            }
            _ => {}
        }
    }

    /// Sends a PLI, unless one went out within `KEYFRAME_REQUEST_EVERY`.
    fn request_keyframe(&mut self, now: Instant) {
        if self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_REQUEST_EVERY)
        {
            return;
        }
        if let Some(mut writer) = self.rtc.writer(self.video)
            && writer
                .request_keyframe(None, KeyframeRequestKind::Pli)
                .is_ok()
        {
            self.keyframe_requests += 1;
            self.last_keyframe_request = Some(now);
        }
    }

    fn decode(&mut self, data: &[u8]) -> Option<Picture> {
        let decoder = self.decoder.as_mut()?;
        match decoder.decode(data) {
            Ok(Some(yuv)) => {
                let (width, height) = yuv.dimensions();
                let stride = yuv.strides().0;
                let stamp = stamp::read(yuv.y(), width as u32, height as u32, stride);
                let mut luma = Vec::with_capacity(width * height);
                for row in yuv.y().chunks(stride).take(height) {
                    luma.extend_from_slice(&row[..width]);
                }
                Some(Picture {
                    width,
                    height,
                    stamp,
                    luma,
                })
            }
            Ok(None) => None,
            Err(_) => {
                self.decode_errors += 1;
                None
            }
        }
    }
}

fn accept_answer(
    rtc: &mut Rtc,
    pending: SdpPendingOffer,
    endpoint: &Url,
    response: &HttpResponse,
) -> Result<Url, ClientError> {
    if response.status != 201 {
        return Err(ClientError::Refused(
            response.status,
            response.text().trim().to_string(),
        ));
    }
    let content_type = response.header("content-type").unwrap_or("");
    if !content_type.starts_with("application/sdp") {
        return Err(ClientError::Protocol(format!(
            "answer has Content-Type {content_type:?}, not application/sdp"
        )));
    }
    let location = response
        .header("location")
        .ok_or_else(|| ClientError::Protocol("201 without a Location header".into()))?;
    let resource = endpoint.join(location)?;
    let answer = SdpAnswer::from_sdp_string(&response.text())
        .map_err(|e| ClientError::Protocol(format!("bad answer SDP: {e}")))?;
    rtc.sdp_api().accept_answer(pending, answer)?;
    Ok(resource)
}

/// WHEP PATCH of `resource` with an SDP fragment.
fn patch(
    resource: &Url,
    if_match: Option<&str>,
    extra: &[(String, String)],
    frag: &str,
) -> Result<HttpResponse, ClientError> {
    let mut headers: Vec<(&str, &str)> = vec![("Content-Type", "application/trickle-ice-sdpfrag")];
    if let Some(tag) = if_match {
        headers.push(("If-Match", tag));
    }
    headers.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(http::request(resource, "PATCH", &headers, frag.as_bytes())?)
}

/// The local address the OS would use to reach `server` (no packet is sent).
fn local_ip_towards(server: SocketAddr) -> io::Result<IpAddr> {
    let probe = UdpSocket::bind(SocketAddr::new(
        if server.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}
