//! The event loop: one task that owns the hub, the control plane, the media socket, the
//! actuator and the timers, and wakes on whichever comes first — an encoded frame, a datagram,
//! a signaling request, a timeout, or stop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smol::Timer;
use smol::channel::Receiver;
use smol::future::FutureExt;

use super::ptz::PtzSetup;
use super::stream::Stream;
use crate::control::protocol::{ErrorCode, Failure};
use crate::control::{ControlPlane, Device, PlaneOutput, Status, StreamChange, StreamSettings};
use crate::encode::EncodedFrame;
use crate::hub::{Hub, HubEvent, Input, Output, ViewerId};
use crate::net::udp::MediaSocket;
use crate::net::whep::Signal;
use crate::source::CameraControls;

pub struct EventLoop {
    pub hub: Hub,
    pub plane: ControlPlane,
    pub ptz: PtzSetup,
    pub socket: MediaSocket,
    pub stream: Stream,
    pub signals: Receiver<Signal>,
    pub stop: Receiver<()>,
}

enum Wake {
    Frame(EncodedFrame),
    Readable,
    Signal(Signal),
    Timeout,
    Stop,
    EncoderGone,
}

impl EventLoop {
    /// Runs until stopped (Ok) or until the encoder ends by itself (Err).
    pub async fn run(mut self) -> Result<(), String> {
        let outcome = loop {
            let deadline = self.flush().await;
            let wake = self.wait(deadline).await;
            let now = Instant::now();
            match wake {
                Wake::Frame(frame) => self.on_frame(now, frame).await,
                Wake::Readable => self.on_readable(now),
                Wake::Signal(signal) => self.on_signal(now, signal),
                Wake::Timeout => self.on_timeout(now),
                Wake::Stop => break Ok(()),
                Wake::EncoderGone => break Err("the encoder stopped".to_string()),
            }
        };
        log::info!(
            "stopping: closing {} viewer(s)",
            self.hub.counters().viewers
        );
        self.hub.remove_all(Instant::now());
        self.flush().await;
        self.stream.pipeline.stop();
        outcome
    }

    async fn wait(&self, deadline: Instant) -> Wake {
        // `or` polls in order: stop, then frames (latency), then the network, then the rest.
        let stop = async {
            let _ = self.stop.recv().await;
            Wake::Stop
        };
        let frame = async {
            match self.stream.frames.recv().await {
                Ok(f) => Wake::Frame(f),
                Err(_) => Wake::EncoderGone,
            }
        };
        let readable = async {
            if let Err(e) = self.socket.readable().await {
                log::warn!("media socket: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
            Wake::Readable
        };
        let signal = async {
            match self.signals.recv().await {
                Ok(s) => Wake::Signal(s),
                Err(_) => std::future::pending().await,
            }
        };
        let timer = async {
            Timer::at(deadline).await;
            Wake::Timeout
        };
        stop.or(frame).or(readable).or(signal).or(timer).await
    }

    async fn on_frame(&mut self, now: Instant, frame: EncodedFrame) {
        self.stream.frame_sent(now, frame.data.len());
        self.hub.handle_input(Input::Frame { now, frame: &frame });
        // Send this frame's packets right away and time it: handed to the encoder → last
        // packet on the socket.
        let (_, sent) = self.flush_counting().await;
        if sent > 0 {
            self.stream.frame_on_wire(frame.handed, Instant::now());
        }
    }

    fn on_readable(&mut self, now: Instant) {
        let hub = &mut self.hub;
        // Bounded so a flood cannot keep the loop from frames and timers.
        for _ in 0..8 {
            let read = self.socket.recv_batch(|d| {
                hub.handle_input(Input::Receive {
                    now,
                    source: d.source,
                    destination: d.destination,
                    contents: d.contents,
                })
            });
            match read {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    log::debug!("media socket receive: {e}");
                    break;
                }
            }
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        self.hub.handle_input(Input::Timeout(now));
        let mut device = LoopDevice {
            hub: &mut self.hub,
            stream: &mut self.stream,
            now,
        };
        self.plane.handle_timeout(now, &mut device);
    }

    fn on_signal(&mut self, now: Instant, signal: Signal) {
        match signal {
            Signal::Offer { sdp, role, reply } => {
                let result = new_viewer_id()
                    .and_then(|id| self.hub.offer(now, id, &sdp).map(|answer| (id, answer)));
                match &result {
                    Ok((id, _)) => self.plane.viewer_joined(*id, role),
                    Err(e) => log::info!("offer refused: {e}"),
                }
                let _ = reply.try_send(result);
            }
            Signal::Delete { id, reply } => {
                let _ = reply.try_send(self.hub.remove(now, id));
            }
            Signal::Status { reply } => {
                let _ = reply.try_send(self.stream.status(self.hub.counters(), now));
            }
            Signal::Health { reply } => {
                let _ = reply.try_send(self.stream.health(now));
            }
            Signal::Snapshot { reply } => self.stream.pipeline.request_snapshot(reply),
            Signal::AuthFailed => self.stream.auth_failures += 1,
        }
    }

    /// Carries out everything the hub and the control plane have to say; returns when the
    /// next of them wants time.
    async fn flush(&mut self) -> Instant {
        self.flush_counting().await.0
    }

    async fn flush_counting(&mut self) -> (Instant, usize) {
        let mut sent = 0;
        loop {
            match self.hub.poll_output() {
                Output::Transmit(t) => {
                    match self.socket.send(t.source, t.destination, &t.contents).await {
                        Ok(()) => sent += 1,
                        Err(e) => log::debug!("send to {}: {e}", t.destination),
                    }
                }
                Output::KeyframeNeeded => self.stream.pipeline.request_keyframe(),
                Output::Event(event) => self.on_hub_event(event),
                Output::Timeout(hub_at) => {
                    // Control-plane output may produce hub output (replies): go round again.
                    if self.drain_plane() {
                        continue;
                    }
                    let at = self.plane.poll_timeout().map_or(hub_at, |p| p.min(hub_at));
                    return (at, sent);
                }
            }
        }
    }

    /// Applies the control plane's outputs. True if it handed anything to the hub.
    fn drain_plane(&mut self) -> bool {
        let now = Instant::now();
        let mut to_hub = false;
        while let Some(output) = self.plane.poll_output() {
            match output {
                PlaneOutput::Send { viewer, text } => {
                    to_hub = true;
                    if !self.hub.send_control(now, viewer, &text) {
                        log::debug!("viewer {viewer}: control message not sent (channel closed)");
                    }
                }
                PlaneOutput::MovePtz(position) => self.ptz.move_to(&position),
            }
        }
        to_hub
    }

    fn on_hub_event(&mut self, event: HubEvent) {
        let now = Instant::now();
        match event {
            HubEvent::ControlOpened(viewer) => self.plane.channel_opened(now, viewer),
            HubEvent::ControlClosed(viewer) => self.plane.channel_closed(now, viewer),
            HubEvent::ViewerLeft { viewer, .. } => self.plane.viewer_left(now, viewer),
            HubEvent::ControlMessage { viewer, data } => {
                let generation = self.stream.generation;
                let mut device = LoopDevice {
                    hub: &mut self.hub,
                    stream: &mut self.stream,
                    now,
                };
                self.plane.handle_message(now, viewer, &data, &mut device);
                if self.stream.generation != generation {
                    // A restarted source may bring new camera controls.
                    self.ptz.source_restarted(self.stream.pipeline.controls());
                }
            }
            HubEvent::ControlOversized { viewer, len, max } => {
                self.plane.handle_oversized(viewer, len, max)
            }
            HubEvent::ViewerConnected(_) => {}
        }
    }
}

/// What control commands act on, for the duration of one command.
struct LoopDevice<'a> {
    hub: &'a mut Hub,
    stream: &'a mut Stream,
    now: Instant,
}

impl Device for LoopDevice<'_> {
    fn status(&mut self) -> Status {
        self.stream.status(self.hub.counters(), self.now)
    }

    fn request_keyframe(&mut self, viewer: ViewerId) {
        self.hub.request_keyframe(self.now, viewer);
    }

    fn camera_controls(&mut self) -> Option<Arc<dyn CameraControls>> {
        self.stream.pipeline.controls()
    }

    fn change_stream(&mut self, change: &StreamChange) -> Result<StreamSettings, Failure> {
        self.stream
            .change(change)
            .map_err(|e| Failure::new(ErrorCode::DeviceError, e))
    }
}

fn new_viewer_id() -> Result<ViewerId, crate::hub::OfferError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        crate::hub::OfferError::Rejected(format!("no randomness for a viewer id: {e}"))
    })?;
    Ok(ViewerId(u128::from_be_bytes(bytes)))
}
