//! The streamer: all of rtcam's policy in one sans-IO state machine, in the shape of str0m's
//! `Rtc` and quinn-proto's `Endpoint`.
//!
//! It owns the hub (every viewer's WebRTC session and the keyframe policy), the control plane
//! (roles, control, pan/tilt/zoom motion, the data-channel protocol) and the stream's state
//! (its settings, restarts, what was sent). It never reads a clock, touches a socket or a
//! device, or spawns: time comes in with every input, and everything it wants done in the
//! world comes out of `poll_output`.
//!
//! ```text
//! handle_input(now, Input::Datagram | AccessUnit | Call | Readings | Controls |
//!                   Restarted | AuthFailed | AuthThrottled | Timeout)
//! loop { match poll_output() {
//!     Output::Transmit(t)        → send a datagram
//!     Output::Encoder(command)   → keyframe, bitrate, restart the pipeline (off the loop)
//!     Output::Actuator(command)  → move pan/tilt/zoom, call the camera's controls (off the loop)
//!     Output::Reply(call, reply) → answer an HTTP request
//!     Output::ReadingsWanted     → read counters and the host, hand them in as Input::Readings
//!     Output::Timeout(at)        → nothing more until `at` or the next input
//! }}
//! ```
//!
//! Inputs are taken in order and each is handled completely before the next: the shell reads
//! the clock once per turn of its loop and passes that `now`, and drains `poll_output` until
//! it says `Timeout` after every input.

#[cfg(feature = "testing")]
pub(crate) mod bench;
mod meter;
mod rate;
mod state;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use str0m::net::{Protocol, Transmit};

use crate::control::protocol::ErrorCode;
use crate::control::{ControlPlane, Failure, PlaneOutput};
use crate::encode::EncoderSettings;
use crate::encode::limits::Size;
use crate::hub::{self, Hub, HubEvent};
pub(crate) use meter::LatencyWindow;
pub(crate) use rate::bwe_for;
use rate::{RateConfig, RateOutput, RatePolicy};
use state::StreamState;
pub use state::{Readings, Running};

// What the streamer's inputs and outputs are made of.
pub use crate::control::auth::Role;
pub use crate::control::plane::{ControlConfig, OpId};
pub use crate::control::protocol::{StreamChange, StreamSettings};
pub use crate::control::ptz::{AxisLimits, AxisName, PerAxis, PtzLimits};
pub use crate::control::status::Status;
pub use crate::encode::stats::PipelineStats;
pub use crate::encode::{AccessUnit, Encoding};
pub use crate::hub::keyframe::KeyframeConfig;
pub use crate::hub::link::LinkReport;
pub use crate::hub::{
    BweConfig, FragError, HubConfig, HubError, OfferError, PatchError, Patched, ViewerId,
};
pub use crate::source::SourceInfo;
pub use crate::source::camera_status::{CameraReading, CameraState};
pub use crate::source::controls::{
    ControlError, ControlInfo, ControlKind, ControlReply, ControlRequest,
};

#[derive(Clone, Debug)]
pub struct StreamerConfig {
    pub hub: HubConfig,
    pub control: ControlConfig,
    pub rate: RateLimits,
}

/// How far the rate policy may go for a slow link.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimits {
    /// No encoding runs below this bitrate (kbit/s).
    pub min_kbps: u32,
    /// No viewer is sent fewer frames per second (temporal layers are dropped down to this).
    pub min_fps: f64,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            min_kbps: 150,
            min_fps: 7.5,
        }
    }
}

/// Names an HTTP request the shell handed in, so its reply finds its way back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallId(pub u64);

/// What an HTTP request asks of the streamer.
#[derive(Clone, Debug, PartialEq)]
pub enum Call {
    /// A WHEP offer. `viewer` is the new viewer's id, random from the shell (it is the WHEP
    /// resource, and knowing it allows a DELETE).
    Offer {
        viewer: ViewerId,
        /// Who sent it: the per-client admission limits count by this.
        client: IpAddr,
        sdp: String,
        role: Role,
    },
    /// WHEP DELETE.
    Delete(ViewerId),
    /// WHEP PATCH of a viewer's resource: trickled candidates or an ICE restart, as an SDP
    /// fragment (`application/trickle-ice-sdpfrag`), with the request's `If-Match`.
    Patch {
        viewer: ViewerId,
        /// The address the request came from.
        client: IpAddr,
        if_match: Option<String>,
        frag: Vec<u8>,
    },
    Status,
    Health,
}

/// An accepted WHEP offer.
#[derive(Clone, Debug, PartialEq)]
pub struct Answered {
    pub viewer: ViewerId,
    /// The SDP answer.
    pub sdp: String,
    /// The resource's entity tag: it names the ICE session (see `Call::Patch`).
    pub etag: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The new viewer and its SDP answer, or why the offer was refused.
    Offer(Result<Answered, OfferError>),
    /// False: no such viewer.
    Deleted(bool),
    Patched(Result<Patched, PatchError>),
    Status(Box<Status>),
    /// Ok while the source and the encoder both produce frames; else why not.
    Health(Result<(), String>),
}

pub enum Input<'a> {
    /// The media socket's host candidates now (the shell lists the interfaces before each
    /// offer); later answers offer these.
    HostCandidates(Vec<SocketAddr>),
    /// A datagram that arrived on the media socket, or a frame of an ICE-TCP connection.
    Datagram {
        proto: Protocol,
        source: SocketAddr,
        destination: SocketAddr,
        contents: &'a [u8],
    },
    /// A TCP connection the shell carried frames on ended (a TURN server's, a viewer's).
    TcpClosed(SocketAddr),
    /// An encoded picture, for every connected viewer.
    AccessUnit(&'a AccessUnit),
    /// An HTTP request; the answer comes out as `Output::Reply` with the same id.
    Call(CallId, Call),
    /// What the shell read after `Output::ReadingsWanted`.
    Readings(Readings),
    /// The result of `ActuatorCommand::Controls`.
    Controls(OpId, Result<ControlReply, ControlError>),
    /// The pipeline restart asked for with `EncoderCommand::Restart` is over: the stream runs
    /// as `running` says, with the new settings, or with the old ones again after `failure`.
    Restarted {
        running: Running,
        failure: Option<String>,
    },
    /// An HTTP request came with a missing or wrong token.
    AuthFailed,
    /// An HTTP request was refused without its token checked: its address sent too many
    /// wrong tokens.
    AuthThrottled,
    /// Time passed: the timeout `poll_output` asked for is due (or earlier).
    Timeout,
}

#[derive(Debug)]
pub enum Output {
    Transmit(Transmit),
    Encoder(EncoderCommand),
    Actuator(ActuatorCommand),
    Reply(CallId, Reply),
    /// Read `Readings` and hand them in with `Input::Readings`, in this turn if possible:
    /// `status` answers, status events and `/healthz` wait for them.
    ReadingsWanted,
    /// Nothing more until this time (or the next input).
    Timeout(Instant),
}

#[derive(Clone, Debug, PartialEq)]
pub enum EncoderCommand {
    /// The encoding's next frame must be an IDR (already coalesced and rate-limited).
    Keyframe(Encoding),
    /// A new target bitrate in kbit/s for the encoding, from its next frame on.
    Bitrate(Encoding, u32),
    /// Run (true) or pause an encoding; a paused one costs no CPU and starts again with an IDR.
    Active(Encoding, bool),
    /// Restart source and encoder with these settings, off the event loop; report the outcome
    /// with `Input::Restarted`. Viewers stay connected meanwhile.
    Restart(StreamSettings),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ActuatorCommand {
    /// Move the pan/tilt/zoom actuator to this position (only the axes given).
    MovePtz(PerAxis),
    /// Call the camera's controls; report the result with `Input::Controls`.
    Controls { op: OpId, request: ControlRequest },
}

pub struct Streamer {
    hub: Hub,
    plane: ControlPlane,
    stream: StreamState,
    outputs: VecDeque<Output>,
    /// HTTP calls waiting for the next readings.
    waiting_calls: Vec<(CallId, Call)>,
    /// `ReadingsWanted` went out and the readings have not come in.
    readings_asked: bool,
    /// The restart under way and the `stream.set` that asked for it, if one did.
    restart: Option<Option<OpId>>,
    rate: RatePolicy,
    limits: RateLimits,
    /// The latest `now` handed in: the streamer's time.
    now: Instant,
}

impl Streamer {
    /// `running`: what the pipeline runs with at start.
    pub fn new(
        config: StreamerConfig,
        running: Running,
        now: Instant,
    ) -> Result<Streamer, HubError> {
        let max_viewers = config.hub.max_viewers;
        let rate = RatePolicy::new(rate_config(&running, &config.rate));
        let hub = HubConfig {
            h264_level: running.level(),
            ..config.hub
        };
        Ok(Streamer {
            rate,
            limits: config.rate,
            hub: Hub::new(hub, now)?,
            plane: ControlPlane::new(config.control, running.settings),
            stream: StreamState::new(running, now, max_viewers),
            outputs: VecDeque::new(),
            waiting_calls: Vec::new(),
            readings_asked: false,
            restart: None,
            now,
        })
    }

    pub fn handle_input(&mut self, now: Instant, input: Input) {
        self.now = self.now.max(now);
        let now = self.now;
        match input {
            Input::HostCandidates(hosts) => self.hub.set_host_candidates(hosts),
            Input::Datagram {
                proto,
                source,
                destination,
                contents,
            } => self.hub.handle_input(hub::Input::Receive {
                now,
                proto,
                source,
                destination,
                contents,
            }),
            Input::TcpClosed(peer) => self.hub.tcp_closed(now, peer),
            Input::AccessUnit(unit) => {
                self.stream.sent(now, unit.data.len());
                self.rate
                    .unit_sent(now, unit.encoding, unit.layer, unit.data.len());
                self.hub.handle_input(hub::Input::AccessUnit { now, unit });
            }
            Input::Call(id, call) => self.call(now, id, call),
            Input::Readings(readings) => self.readings(now, readings),
            Input::Controls(op, result) => self.plane.controls_done(now, op, result),
            Input::Restarted { running, failure } => self.restarted(now, running, failure),
            Input::AuthFailed => self.stream.auth_failed(),
            Input::AuthThrottled => self.stream.auth_throttled(),
            Input::Timeout => {
                self.hub.handle_input(hub::Input::Timeout(now));
                self.plane.handle_timeout(now);
                self.rate.handle_timeout(now);
            }
        }
    }

    pub fn poll_output(&mut self) -> Output {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return output;
            }
            match self.hub.poll_output() {
                hub::Output::Transmit(t) => return Output::Transmit(t),
                hub::Output::KeyframeNeeded(encoding) => {
                    return Output::Encoder(EncoderCommand::Keyframe(encoding));
                }
                hub::Output::Event(event) => self.hub_event(event),
                hub::Output::Timeout(hub_at) => {
                    if self.drain_plane() | self.drain_rate() {
                        continue;
                    }
                    let at = [self.plane.poll_timeout(), self.rate.poll_timeout()]
                        .into_iter()
                        .flatten()
                        .fold(hub_at, Instant::min);
                    return Output::Timeout(at);
                }
            }
        }
    }

    /// The ids of the viewers, in the order they came.
    pub fn viewers(&self) -> Vec<ViewerId> {
        self.hub.viewer_ids()
    }

    /// The viewer holding control, if any.
    pub fn controller(&self) -> Option<ViewerId> {
        self.plane.controller()
    }

    /// What the stream runs with now.
    pub fn running(&self) -> &Running {
        self.stream.running()
    }

    /// Closes every viewer politely (shutdown); their goodbye packets come out as transmits.
    pub fn close_all(&mut self) {
        self.hub.remove_all(self.now);
    }

    fn call(&mut self, now: Instant, id: CallId, call: Call) {
        match call {
            Call::Offer {
                viewer,
                client,
                sdp,
                role,
            } => {
                let result = self.hub.offer(now, viewer, client, &sdp);
                match &result {
                    Ok(_) => {
                        self.plane.viewer_joined(viewer, role);
                        self.rate.viewer_joined(now, viewer);
                    }
                    Err(e) => log::info!("offer refused: {e}"),
                }
                let reply = Reply::Offer(result.map(|sdp| Answered {
                    viewer,
                    sdp,
                    etag: self.hub.etag(viewer).unwrap_or_default(),
                }));
                self.outputs.push_back(Output::Reply(id, reply));
            }
            Call::Patch {
                viewer,
                client,
                if_match,
                frag,
            } => {
                let patched = self
                    .hub
                    .patch(now, viewer, client, if_match.as_deref(), &frag);
                if let Err(e) = &patched {
                    log::info!("viewer {viewer}: PATCH refused: {e}");
                }
                self.outputs
                    .push_back(Output::Reply(id, Reply::Patched(patched)));
            }
            Call::Delete(viewer) => {
                let removed = self.hub.remove(now, viewer);
                self.outputs
                    .push_back(Output::Reply(id, Reply::Deleted(removed)));
            }
            Call::Status | Call::Health => {
                self.waiting_calls.push((id, call));
                self.want_readings();
            }
        }
    }

    fn want_readings(&mut self) {
        if !self.readings_asked {
            self.readings_asked = true;
            self.outputs.push_back(Output::ReadingsWanted);
        }
    }

    fn readings(&mut self, now: Instant, readings: Readings) {
        self.readings_asked = false;
        let links = self
            .hub
            .links()
            .into_iter()
            .map(|(viewer, link)| LinkReport {
                label: self.plane.label(viewer),
                ..link
            })
            .collect();
        let status = self
            .stream
            .status(now, self.hub.counters(), links, &readings);
        for (id, call) in std::mem::take(&mut self.waiting_calls) {
            let reply = match call {
                Call::Health => Reply::Health(self.stream.health(now, &readings)),
                _ => Reply::Status(Box::new(status.clone())),
            };
            self.outputs.push_back(Output::Reply(id, reply));
        }
        self.plane.status(now, &status);
    }

    fn hub_event(&mut self, event: HubEvent) {
        let now = self.now;
        match event {
            HubEvent::ControlOpened(viewer) => self.plane.channel_opened(now, viewer),
            HubEvent::ControlClosed(viewer) => self.plane.channel_closed(now, viewer),
            HubEvent::ViewerLeft { viewer, .. } => {
                self.plane.viewer_left(now, viewer);
                self.rate.viewer_left(now, viewer);
            }
            HubEvent::Estimate { viewer, bps } => self.rate.estimate(now, viewer, bps),
            HubEvent::PathRestored(viewer) => self.rate.path_restored(now, viewer),
            HubEvent::ControlMessage { viewer, data } => {
                self.plane.handle_message(now, viewer, &data)
            }
            HubEvent::ControlOversized { viewer, len, max } => {
                self.plane.handle_oversized(viewer, len, max)
            }
            HubEvent::ViewerConnected(_) => {}
        }
    }

    /// Carries out the control plane's outputs. True if any produced output of its own (a
    /// message for the hub to send, a command for the shell).
    fn drain_plane(&mut self) -> bool {
        let now = self.now;
        let mut any = false;
        while let Some(output) = self.plane.poll_output() {
            any = true;
            match output {
                PlaneOutput::Send { viewer, text } => {
                    if !self.hub.send_control(now, viewer, &text) {
                        log::debug!("viewer {viewer}: control message not sent (channel closed)");
                    }
                }
                PlaneOutput::MovePtz(position) => self
                    .outputs
                    .push_back(Output::Actuator(ActuatorCommand::MovePtz(position))),
                PlaneOutput::Keyframe(viewer) => self.hub.request_keyframe(now, viewer),
                PlaneOutput::Controls { op, request } => self
                    .outputs
                    .push_back(Output::Actuator(ActuatorCommand::Controls { op, request })),
                PlaneOutput::ChangeStream { op, change } => self.change_stream(op, change),
                PlaneOutput::NeedStatus => self.want_readings(),
            }
        }
        any
    }

    /// Carries out the rate policy's decisions. True if there were any.
    fn drain_rate(&mut self) -> bool {
        let now = self.now;
        let mut any = false;
        while let Some(output) = self.rate.poll_output() {
            any = true;
            match output {
                RateOutput::Active(encoding, active) => self
                    .outputs
                    .push_back(Output::Encoder(EncoderCommand::Active(encoding, active))),
                RateOutput::Bitrate(encoding, kbps) => self
                    .outputs
                    .push_back(Output::Encoder(EncoderCommand::Bitrate(encoding, kbps))),
                RateOutput::Subscribe {
                    viewer,
                    encoding,
                    max_layer,
                } => self.hub.subscribe(now, viewer, encoding, max_layer),
                RateOutput::Probe { viewer, kbps } => {
                    self.hub.probe(now, viewer, u64::from(kbps) * 1000);
                }
            }
        }
        any
    }

    /// `stream.set`: a bitrate goes to the running encoder at once; a new size or frame rate
    /// restarts the pipeline off the loop, and the command is answered when it is back.
    fn change_stream(&mut self, op: OpId, change: StreamChange) {
        let now = self.now;
        if self.restart.is_some() {
            let busy = Failure::new(
                ErrorCode::Unavailable,
                "the stream is restarting; try again once it is back",
            );
            self.plane.stream_changed(now, op, Err(busy));
            return;
        }
        let current = self.stream.running().settings;
        let size = change.size;
        let next = StreamSettings {
            width: size.map_or(current.width, |s| s.width),
            height: size.map_or(current.height, |s| s.height),
            fps: change.fps.unwrap_or(current.fps),
            bitrate_kbps: change.bitrate_kbps.unwrap_or(current.bitrate_kbps),
        };
        let restart =
            (next.width, next.height, next.fps) != (current.width, current.height, current.fps);
        if restart {
            log::info!(
                "stream restarting at {}x{} {} fps",
                next.width,
                next.height,
                next.fps
            );
            self.restart = Some(Some(op));
            self.stream.restart_began(now);
            self.outputs
                .push_back(Output::Encoder(EncoderCommand::Restart(next)));
        } else {
            if next.bitrate_kbps != current.bitrate_kbps {
                self.outputs
                    .push_back(Output::Encoder(EncoderCommand::Bitrate(
                        Encoding::Main,
                        next.bitrate_kbps,
                    )));
            }
            self.stream.set_bitrate(next.bitrate_kbps);
            // The new bitrate is the policy's ceiling from now on.
            self.rate
                .reconfigure(rate_config(self.stream.running(), &self.limits));
            self.plane.stream_changed(now, op, Ok(next));
        }
    }

    fn restarted(&mut self, now: Instant, running: Running, failure: Option<String>) {
        let settings = running.settings;
        self.rate.reconfigure(rate_config(&running, &self.limits));
        self.hub.set_h264_level(running.level());
        self.stream.restarted(now, running);
        self.plane.set_stream(settings);
        let Some(asked_by) = self.restart.take() else {
            return;
        };
        let outcome = match failure {
            None => Ok(settings),
            Some(why) => Err(Failure::new(ErrorCode::DeviceError, why)),
        };
        if let Some(op) = asked_by {
            self.plane.stream_changed(now, op, outcome);
        }
    }
}

impl Running {
    /// The stream as a pipeline with this source and bitrate runs it (size and rate are the
    /// source's), with the encoder's default layers and a low encoding if the size allows.
    pub fn new(source: SourceInfo, bitrate_kbps: u32) -> Running {
        let size = Size {
            width: source.width,
            height: source.height,
        };
        Running {
            settings: StreamSettings {
                width: source.width,
                height: source.height,
                fps: source.fps,
                bitrate_kbps,
            },
            source,
            low: size.halved(),
            layers: EncoderSettings::default().temporal_layers as u8,
            adaptive: true,
            encoder: "software (OpenH264)".to_owned(),
        }
    }
}

impl Running {
    /// The H.264 level of the main encoding, as its SPS says.
    pub fn level(&self) -> u8 {
        let s = &self.settings;
        crate::encode::level::for_stream(s.width, s.height, s.fps, s.bitrate_kbps)
    }
}

/// What the rate policy may do with this stream.
fn rate_config(running: &Running, limits: &RateLimits) -> RateConfig {
    RateConfig {
        max_kbps: running.settings.bitrate_kbps,
        min_kbps: limits.min_kbps.min(running.settings.bitrate_kbps),
        fps: running.settings.fps,
        min_fps: limits.min_fps,
        layers: running.layers.max(1),
        low: running.low.is_some(),
        adaptive: running.adaptive,
    }
}
