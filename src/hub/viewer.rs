//! One viewer: a str0m `Rtc` and what the hub knows about it.
//!
//! Every mutation of the `Rtc` is followed by `drive`, which drains str0m's output until it
//! asks for a future timeout (str0m's single-mutation rule) and turns what came out into
//! `ViewerEvent`s for the hub. A panic inside str0m is caught here and ends only this viewer.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::config::DtlsCert;
use str0m::media::{MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Receive, Transmit};
use str0m::rtp::Extension;
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};

use super::link::Link;
use super::offer_error;
use super::{BweConfig, OfferError, ViewerId};
use crate::encode::Encoding;
use str0m::bwe::{Bitrate, BweKind};

/// The one data channel the device answers on.
pub(crate) const CONTROL_LABEL: &str = "control";

/// Constrained baseline first (what OpenH264 produces), then baseline, whose decoders play
/// constrained baseline too. packetization-mode=1 only: IDRs are larger than one packet.
/// The level byte of `profile-level-id` is the stream's (see `encode::level`).
const H264_PAYLOADS: [(u8, u8, u32); 2] = [(108, 109, 0x42e000), (127, 121, 0x420000)];

/// Packets kept per viewer for NACK retransmission: about 1 s at 1.5 Mbit/s, many round trips
/// on a LAN.
const SEND_BUFFER_PACKETS: usize = 150;

/// How long a probe keeps the link filled with padding.
const PAD_FOR: Duration = Duration::from_millis(1500);

/// How often str0m reports the viewer's egress counters (NACKs, PLIs, bytes).
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Control messages waiting for room in the data channel's send buffer, at most (bytes). str0m
/// takes 128 KiB; a burst of requests can be answered with more than that, and every request
/// is owed its answer. A client that leaves this much unread is not reading at all: its control
/// channel is closed rather than holding memory without bound.
const MAX_CONTROL_QUEUE: usize = 1024 * 1024;

/// Guards against a driving loop that never settles (a str0m bug): a viewer that needs more
/// rounds than this in one call is dropped rather than stalling everyone.
const MAX_DRIVE_ROUNDS: usize = 10_000;

#[derive(Debug)]
pub(crate) enum ViewerEvent {
    Transmit(Transmit),
    /// ICE and DTLS are up: media can flow.
    Connected,
    /// ICE lost the viewer.
    Disconnected,
    /// An ICE restart's new path is up. What was sent while the old one died is lost, and the
    /// viewer's decoder waits for an IDR: it gets one at once, as a joining viewer does
    /// (Chromium would ask only after about 2 s of NACKs for packets no one has any more). Its
    /// bandwidth estimate starts afresh, as a new viewer's.
    PathRestored,
    KeyframeRequest,
    ControlOpen,
    ControlData(Vec<u8>),
    ControlClose,
    /// A new bandwidth estimate for the link to the viewer, bit/s.
    Estimate(u64),
    /// str0m failed (error or panic) on this viewer; it must go.
    Failed(String),
}

/// What every answer is made with.
#[derive(Clone, Copy)]
pub(crate) struct Answering<'a> {
    pub(crate) candidates: &'a [Candidate],
    pub(crate) cert: &'a DtlsCert,
    pub(crate) bwe: Option<BweConfig>,
    /// The stream's H.264 level_idc.
    pub(crate) level: u8,
}

pub(crate) struct Viewer {
    pub id: ViewerId,
    /// Its address as the admission limits count it (`admission::client_key`).
    pub client: IpAddr,
    rtc: Rtc,
    pub created: Instant,
    /// When a datagram from it last arrived.
    pub last_heard: Instant,
    pub connected: bool,
    video: Option<(Mid, Pt)>,
    control: Option<ChannelId>,
    /// The viewer's offer as it came: an ICE restart by PATCH (WHEP) is applied to str0m as
    /// this offer with the new credentials.
    offer: String,
    /// The ICE ufrag the viewer uses now (its offer's, or its latest restart's).
    remote_ufrag: String,
    /// An ICE restart was applied and its new path is not up yet.
    restarting: bool,
    /// Control messages str0m had no room for yet, in order (see `MAX_CONTROL_QUEUE`).
    control_queue: VecDeque<String>,
    control_queued_bytes: usize,
    /// What it is sent and what is known of its link.
    pub(crate) link: Link,
    /// The bandwidth estimator probes up to this (bit/s); None: no estimation.
    bwe_desired: Option<Bitrate>,
    /// Where its estimate starts: at the viewer's start, and again on an ICE restart's path.
    bwe_initial: Option<Bitrate>,
    /// Padding keeps the link filled until then (see `probe`).
    padding_until: Option<Instant>,
    pub timeout: Instant,
    /// Set once the viewer must go; the hub removes it after its last events are out.
    pub failed: bool,
    pub leave_reason: Option<super::LeaveReason>,
}

impl Viewer {
    /// Builds the viewer's `Rtc`, accepts the offer and returns the viewer with its answer.
    pub(crate) fn from_offer(
        id: ViewerId,
        client: IpAddr,
        now: Instant,
        sdp: &str,
        answering: &Answering,
        events: &mut Vec<ViewerEvent>,
    ) -> Result<(Viewer, String), OfferError> {
        let Answering {
            candidates,
            cert,
            bwe,
            level,
        } = *answering;
        let sdp = &receive_only_video(sdp);
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| offer_error::unparsable(sdp, &e))?;

        let mut config = RtcConfig::new()
            .clear_codecs()
            .set_dtls_cert(cert.clone())
            .set_send_buffer_video(SEND_BUFFER_PACKETS)
            .set_stats_interval(Some(STATS_INTERVAL))
            .enable_bwe(bwe.map(|b| Bitrate::kbps(u64::from(b.initial_kbps))))
            .set_extension(5, Extension::PlayoutDelay);
        for (pt, rtx, profile) in H264_PAYLOADS {
            let profile_level_id = profile | u32::from(level);
            config
                .codec_config()
                .add_h264(pt.into(), Some(rtx.into()), true, profile_level_id);
        }
        // A viewer that stops answering (tab killed, phone out of range) is declared gone
        // after about 15 s (str0m's floor) instead of its default of about 22 s.
        config.set_max_stun_rto(Duration::from_millis(1000));
        config.set_max_stun_retransmits(6);
        let mut rtc = config.build(now);
        for c in candidates {
            rtc.add_local_candidate(c.clone());
        }

        let answer = catch_unwind(AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)))
            .map_err(|_| OfferError::Rejected("the offer could not be processed".into()))?
            .map_err(|e| offer_error::refused(&e))?;

        let mut viewer = Viewer {
            id,
            client,
            rtc,
            created: now,
            last_heard: now,
            connected: false,
            video: None,
            control: None,
            offer: sdp.to_owned(),
            remote_ufrag: ice_ufrag(sdp).unwrap_or_default().to_owned(),
            restarting: false,
            control_queue: VecDeque::new(),
            control_queued_bytes: 0,
            link: Link::new(Encoding::Main, u8::MAX),
            bwe_desired: bwe.map(|b| Bitrate::kbps(u64::from(b.max_kbps))),
            bwe_initial: bwe.map(|b| Bitrate::kbps(u64::from(b.initial_kbps))),
            padding_until: None,
            timeout: now,
            failed: false,
            leave_reason: None,
        };
        // str0m's ICE agent starts on its first timeout; until then it only answers checks.
        // Behind a NAT that filters by address, the viewer's checks get through only once our
        // own have opened the way: so start checking at once.
        viewer.guarded(events, |rtc| rtc.handle_input(Input::Timeout(now)));
        viewer.drive(now, events);
        if viewer.failed {
            return Err(OfferError::Rejected(
                "the offer could not be processed".into(),
            ));
        }
        // str0m announces media (`MediaAdded`) only once DTLS is up; the answer already tells
        // which m-lines were accepted.
        let mids: Vec<Mid> = answer
            .media_lines
            .iter()
            .filter(|m| !m.disabled && m.typ.is_media())
            .map(|m| m.mid())
            .collect();
        for mid in mids {
            let sends_video = viewer
                .rtc
                .media(mid)
                .is_some_and(|m| m.kind() == MediaKind::Video && m.direction().is_sending());
            if sends_video && let Some(pt) = viewer.pick_h264(mid) {
                viewer.video = Some((mid, pt));
                break;
            }
        }
        if viewer.video.is_none() {
            return Err(OfferError::NoH264);
        }
        Ok((viewer, answer.to_sdp_string()))
    }

    fn pick_h264(&mut self, mid: Mid) -> Option<Pt> {
        let writer = self.rtc.writer(mid)?;
        let negotiated: Vec<(Pt, Option<u32>)> = writer
            .payload_params()
            .filter(|p| p.spec().codec == str0m::format::Codec::H264)
            .map(|p| (p.pt(), p.spec().format.profile_level_id))
            .collect();
        // Profile and constraints decide; the level is ours in any case.
        H264_PAYLOADS
            .iter()
            .find_map(|(_, _, profile)| {
                negotiated
                    .iter()
                    .find(|(_, p)| p.is_some_and(|p| p >> 8 == profile >> 8))
                    .map(|(pt, _)| *pt)
            })
            .or_else(|| negotiated.first().map(|(pt, _)| *pt))
    }

    pub(crate) fn accepts(&self, input: &Input) -> bool {
        !self.failed && self.rtc.accepts(input)
    }

    pub(crate) fn receive(
        &mut self,
        now: Instant,
        receive: Receive,
        events: &mut Vec<ViewerEvent>,
    ) {
        let input = Input::Receive(now, receive);
        self.guarded(events, |rtc| rtc.handle_input(input));
        self.drive(now, events);
        // An acknowledgement may have made room for what waits.
        if !self.control_queue.is_empty() {
            self.flush_control(now, events);
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant, events: &mut Vec<ViewerEvent>) {
        if self.padding_until.is_some_and(|until| until <= now)
            && let Some(desired) = self.bwe_desired
        {
            self.padding_until = None;
            self.guarded(events, |rtc| {
                rtc.bwe().set_bitrate(Bitrate::ZERO, desired);
                Ok(())
            });
        }
        self.guarded(events, |rtc| rtc.handle_input(Input::Timeout(now)));
        self.drive(now, events);
        if !self.control_queue.is_empty() {
            self.flush_control(now, events);
        }
    }

    /// Sends one access unit, shared with the other viewers without a copy.
    pub(crate) fn write_frame(
        &mut self,
        now: Instant,
        wallclock: Instant,
        rtp_time: MediaTime,
        data: &Arc<[u8]>,
        events: &mut Vec<ViewerEvent>,
    ) {
        let Some((mid, pt)) = self.video else { return };
        let data = data.clone();
        self.guarded(events, |rtc| match rtc.writer(mid) {
            Some(w) => w
                .playout_delay(MediaTime::from_hundredths(0), MediaTime::from_hundredths(0))
                .write(pt, wallclock, rtp_time, data),
            None => Ok(()),
        });
        self.drive(now, events);
    }

    /// Asks the bandwidth estimator to look for more than its estimate: for `PAD_FOR` the link
    /// is kept filled with padding up to `target_bps` (but never above the estimate), and the
    /// estimator is asked for an allocation probe.
    ///
    /// Why both: str0m probes for more only when the desired bitrate rises or the sender is far
    /// below its estimate, and a viewer sent what its estimate allows is neither; so the desired
    /// rate goes down to the estimate and back up, which its probe controller reads as a rise.
    /// But after loss it does not probe at all until its loss-based estimate trusts the link
    /// again, and that estimate grows only to 1.5 times what is acknowledged, which a viewer
    /// sent little (the half-size encoding) keeps low: the padding lets it grow.
    pub(crate) fn probe(&mut self, now: Instant, target_bps: u64, events: &mut Vec<ViewerEvent>) {
        let (Some(desired), Some(estimate)) = (self.bwe_desired, self.link.estimate_bps) else {
            return;
        };
        if !self.connected {
            return;
        }
        let baseline = Bitrate::bps(estimate).min(desired);
        let padding = Bitrate::bps(target_bps).min(desired);
        self.guarded(events, |rtc| {
            rtc.bwe().set_bitrate(Bitrate::ZERO, baseline);
            Ok(())
        });
        self.drive(now, events);
        self.guarded(events, |rtc| {
            rtc.bwe().set_bitrate(padding, desired);
            Ok(())
        });
        self.padding_until = Some(now + PAD_FOR);
        self.drive(now, events);
    }

    /// Sends one text message on the control channel, after any that wait for room. False if
    /// there is no open channel, or it was just closed because the viewer does not read it.
    pub(crate) fn send_control(
        &mut self,
        now: Instant,
        text: &str,
        events: &mut Vec<ViewerEvent>,
    ) -> bool {
        let Some(cid) = self.control else {
            return false;
        };
        if self.control_queued_bytes + text.len() > MAX_CONTROL_QUEUE {
            log::warn!(
                "viewer {}: over {} KiB of control messages unread; closing its control channel",
                self.id,
                MAX_CONTROL_QUEUE / 1024
            );
            self.control_queue.clear();
            self.control_queued_bytes = 0;
            self.control = None;
            self.guarded(events, |rtc| {
                rtc.direct_api().close_data_channel(cid);
                Ok(())
            });
            events.push(ViewerEvent::ControlClose);
            self.drive(now, events);
            return false;
        }
        self.control_queued_bytes += text.len();
        self.control_queue.push_back(text.to_owned());
        self.flush_control(now, events);
        true
    }

    /// Writes queued control messages while the channel takes them.
    fn flush_control(&mut self, now: Instant, events: &mut Vec<ViewerEvent>) {
        let Some(cid) = self.control else {
            return;
        };
        let mut queue = std::mem::take(&mut self.control_queue);
        let (mut written, mut written_bytes) = (0, 0);
        self.guarded(events, |rtc| {
            let Some(mut channel) = rtc.channel(cid) else {
                return Ok(());
            };
            while let Some(text) = queue.front() {
                if !channel.write(false, text.as_bytes())? {
                    break;
                }
                written_bytes += text.len();
                written += 1;
                queue.pop_front();
            }
            Ok(())
        });
        self.control_queue = queue;
        self.control_queued_bytes -= written_bytes;
        if written > 0 {
            self.drive(now, events);
        }
    }

    /// The WHEP resource's entity tag: it names the ICE session, so it changes with a restart.
    pub(crate) fn etag(&mut self) -> String {
        format!(
            "\"{}\"",
            self.rtc.direct_api().local_ice_credentials().ufrag
        )
    }

    pub(crate) fn remote_ufrag(&self) -> &str {
        &self.remote_ufrag
    }

    /// The mid of the offer's first m-line: with max-bundle, the one that carries ICE.
    pub(crate) fn bundle_mid(&self) -> &str {
        self.offer
            .lines()
            .find_map(|l| l.trim().strip_prefix("a=mid:"))
            .map_or("0", str::trim)
    }

    /// Adds trickled remote candidates; returns how many were taken. A candidate that names
    /// another ufrag belongs to an earlier ICE session, and one str0m cannot read (a browser's
    /// mDNS `.local` host candidate) cannot be reached: both are skipped.
    pub(crate) fn trickle(
        &mut self,
        now: Instant,
        candidates: &[String],
        events: &mut Vec<ViewerEvent>,
    ) -> usize {
        let mut taken = 0;
        for text in candidates {
            if candidate_ufrag(text).is_some_and(|u| u != self.remote_ufrag) {
                continue;
            }
            let Ok(candidate) = Candidate::from_sdp_string(text) else {
                log::debug!("viewer {}: skipped candidate {text}", self.id);
                continue;
            };
            self.guarded(events, |rtc| {
                rtc.add_remote_candidate(candidate);
                Ok(())
            });
            taken += 1;
        }
        self.drive(now, events);
        taken
    }

    /// An ICE restart asked for by the viewer (WHEP PATCH): its new credentials and
    /// candidates. Returns our new ufrag and pwd. Media keeps flowing on the old path until
    /// the new one is checked.
    pub(crate) fn restart_ice(
        &mut self,
        now: Instant,
        ufrag: &str,
        pwd: &str,
        candidates: &[String],
        events: &mut Vec<ViewerEvent>,
    ) -> Result<(String, String), OfferError> {
        // str0m restarts ICE when an offer brings new credentials: the first offer again, with
        // the new ones and without its old candidates.
        let reoffer = with_ice_credentials(&self.offer, ufrag, pwd);
        let offer = SdpOffer::from_sdp_string(&reoffer)
            .map_err(|_| OfferError::Rejected("the restart could not be applied".into()))?;
        let applied = catch_unwind(AssertUnwindSafe(|| self.rtc.sdp_api().accept_offer(offer)));
        match applied {
            Ok(Ok(_answer)) => {}
            Ok(Err(e)) => {
                log::info!("viewer {}: ICE restart refused: {e}", self.id);
                return Err(OfferError::Rejected(
                    "the ICE restart could not be applied".into(),
                ));
            }
            Err(_) => {
                self.fail(events, "webrtc panicked on an ICE restart".into());
                return Err(OfferError::Rejected(
                    "the ICE restart could not be applied".into(),
                ));
            }
        }
        self.remote_ufrag = ufrag.to_owned();
        self.offer = reoffer;
        self.restarting = true;
        // Silence until the new path is up is expected; the timeout counts from here.
        self.last_heard = now;
        self.drive(now, events);
        self.trickle(now, candidates, events);
        let local = self.rtc.direct_api().local_ice_credentials();
        Ok((local.ufrag, local.pass))
    }

    /// Closes the session the polite way (RTCP BYE, SCTP shutdown, DTLS close_notify), so the
    /// viewer learns at once instead of after its ICE timeout. The packets come out as events.
    pub(crate) fn close(&mut self, now: Instant, events: &mut Vec<ViewerEvent>) {
        if !self.failed {
            self.guarded(events, |rtc| rtc.close());
            self.drive(now, events);
        }
        self.rtc.disconnect();
    }

    fn guarded(
        &mut self,
        events: &mut Vec<ViewerEvent>,
        f: impl FnOnce(&mut Rtc) -> Result<(), str0m::RtcError>,
    ) {
        if self.failed {
            return;
        }
        match catch_unwind(AssertUnwindSafe(|| f(&mut self.rtc))) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => self.fail(events, format!("webrtc error: {e}")),
            Err(_) => self.fail(events, "webrtc panicked".into()),
        }
    }

    fn fail(&mut self, events: &mut Vec<ViewerEvent>, why: String) {
        self.failed = true;
        events.push(ViewerEvent::Failed(why));
    }

    /// Drains str0m until it wants a future timeout, feeding it `now` whenever it asks for
    /// time that has already come (str0m sends queued media only on a timeout).
    pub(crate) fn drive(&mut self, now: Instant, events: &mut Vec<ViewerEvent>) {
        // Feeding `now` is repeated only while it makes progress: str0m may keep reporting
        // a timeout that is due without having anything to do for it.
        let mut fed_now = false;
        for _ in 0..MAX_DRIVE_ROUNDS {
            if self.failed {
                return;
            }
            let polled = match catch_unwind(AssertUnwindSafe(|| self.rtc.poll_output())) {
                Ok(Ok(output)) => output,
                Ok(Err(e)) => return self.fail(events, format!("webrtc error: {e}")),
                Err(_) => return self.fail(events, "webrtc panicked".into()),
            };
            match polled {
                Output::Timeout(at) if at <= now && !fed_now => {
                    fed_now = true;
                    self.guarded(events, |rtc| rtc.handle_input(Input::Timeout(now)));
                }
                Output::Timeout(at) => {
                    // Still due after being fed `now`: nothing more happens before time moves
                    // on, so ask again a moment later rather than at once (no busy loop).
                    self.timeout = if at <= now {
                        now + Duration::from_millis(1)
                    } else {
                        at
                    };
                    if let Some(until) = self.padding_until {
                        self.timeout = self.timeout.min(until.max(now));
                    }
                    if !self.rtc.is_alive() {
                        // The viewer closed the connection (DTLS close): no need to wait for ICE.
                        self.failed = true;
                        events.push(ViewerEvent::Disconnected);
                    }
                    return;
                }
                Output::Transmit(t) => {
                    fed_now = false;
                    events.push(ViewerEvent::Transmit(t));
                }
                Output::Event(e) => {
                    fed_now = false;
                    self.on_event(e, events);
                }
            }
        }
        self.fail(events, "webrtc did not settle".into());
    }

    fn on_event(&mut self, event: Event, events: &mut Vec<ViewerEvent>) {
        match event {
            Event::Connected => {
                self.connected = true;
                if let Some(desired) = self.bwe_desired {
                    // Probe for up to the most the stream sends, so a link that recovers is
                    // noticed; no padding is asked for beyond str0m's own floor.
                    self.rtc.bwe().set_bitrate(Bitrate::ZERO, desired);
                }
                events.push(ViewerEvent::Connected);
            }
            Event::EgressBitrateEstimate(
                BweKind::Twcc { estimate, .. } | BweKind::Remb { estimate, .. },
            ) => events.push(ViewerEvent::Estimate(estimate.as_u64())),
            Event::MediaEgressStats(stats) if Some(stats.mid) == self.video.map(|(m, _)| m) => {
                self.link.egress(stats.timestamp, &stats);
            }
            // Before it ever connected, failed checks only mean that the candidates so far
            // lead nowhere: trickled ones may yet, and the connect timeout ends the wait.
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) if self.connected => {
                events.push(ViewerEvent::Disconnected);
            }
            Event::IceConnectionStateChange(
                IceConnectionState::Connected | IceConnectionState::Completed,
            ) if self.restarting => {
                self.restarting = false;
                // A new path (another network) is a new link: what the estimator learnt on the
                // old one, and the outage that ended it, say nothing of this one. Left as it
                // was, the outage's losses would put the viewer on the low encoding for seconds.
                if let Some(initial) = self.bwe_initial {
                    self.rtc.bwe().reset(initial);
                }
                self.link.estimate_bps = None;
                events.push(ViewerEvent::PathRestored);
            }
            Event::KeyframeRequest(_) => events.push(ViewerEvent::KeyframeRequest),
            Event::ChannelOpen(cid, label) if label == CONTROL_LABEL && self.control.is_none() => {
                self.control = Some(cid);
                events.push(ViewerEvent::ControlOpen);
            }
            Event::ChannelData(d) if Some(d.id) == self.control => {
                events.push(ViewerEvent::ControlData(d.data));
            }
            Event::ChannelClose(cid) if Some(cid) == self.control => {
                self.control = None;
                self.control_queue.clear();
                self.control_queued_bytes = 0;
                events.push(ViewerEvent::ControlClose);
            }
            _ => {}
        }
    }
}

/// The offer as if its video sections only received: rtcam sends video and takes none, so a
/// player that offers `sendrecv` (some do) is answered `sendonly`, as WHEP means, instead of
/// `sendrecv` with media nobody reads.
fn receive_only_video(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    let mut in_video = false;
    for line in sdp.lines() {
        let line = line.trim_end();
        if let Some(media) = line.strip_prefix("m=") {
            in_video = media.starts_with("video ");
        }
        let line = match line {
            "a=sendrecv" if in_video => "a=recvonly",
            "a=sendonly" if in_video => "a=inactive",
            other => other,
        };
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// The first `a=ice-ufrag` of an SDP.
fn ice_ufrag(sdp: &str) -> Option<&str> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .map(str::trim)
}

/// The `ufrag` extension of a candidate attribute (browsers add it), if any.
fn candidate_ufrag(candidate: &str) -> Option<&str> {
    let mut words = candidate.split_whitespace();
    while let Some(word) = words.next() {
        if word == "ufrag" {
            return words.next();
        }
    }
    None
}

/// `sdp` with every `a=ice-ufrag`/`a=ice-pwd` replaced and its candidates left out.
fn with_ice_credentials(sdp: &str, ufrag: &str, pwd: &str) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.lines() {
        let line = line.trim_end();
        if line.starts_with("a=candidate:") || line == "a=end-of-candidates" {
            continue;
        }
        if line.starts_with("a=ice-ufrag:") {
            out.push_str("a=ice-ufrag:");
            out.push_str(ufrag);
        } else if line.starts_with("a=ice-pwd:") {
            out.push_str("a=ice-pwd:");
            out.push_str(pwd);
        } else {
            out.push_str(line);
        }
        out.push_str("\r\n");
    }
    out
}
