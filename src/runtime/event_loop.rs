//! The event loop: one task that owns the hub, the media socket and the timers, and wakes on
//! whichever comes first — an encoded frame, a datagram, a signaling request, the hub's
//! timeout, or stop.

use std::time::{Duration, Instant};

use smol::Timer;
use smol::channel::Receiver;
use smol::future::FutureExt;

use super::stream::Stream;
use crate::control::{self, Device, Status};
use crate::encode::EncodedFrame;
use crate::hub::{Hub, HubEvent, Input, Output, ViewerId};
use crate::net::udp::MediaSocket;
use crate::net::whep::Signal;

pub struct EventLoop {
    pub hub: Hub,
    pub socket: MediaSocket,
    pub stream: Stream,
    pub frames: Receiver<EncodedFrame>,
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
                Wake::Timeout => self.hub.handle_input(Input::Timeout(now)),
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
            match self.frames.recv().await {
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

    fn on_signal(&mut self, now: Instant, signal: Signal) {
        match signal {
            Signal::Offer { sdp, reply } => {
                let result = new_viewer_id()
                    .and_then(|id| self.hub.offer(now, id, &sdp).map(|answer| (id, answer)));
                if let Err(e) = &result {
                    log::info!("offer refused: {e}");
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
        }
    }

    /// Carries out everything the hub has to say; returns when it next wants time.
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
                Output::Timeout(at) => return (at, sent),
            }
        }
    }

    fn on_hub_event(&mut self, event: HubEvent) {
        let now = Instant::now();
        let (viewer, response) = match event {
            HubEvent::ControlMessage { viewer, data } => {
                let mut device = LoopDevice {
                    hub: &mut self.hub,
                    stream: &mut self.stream,
                    now,
                };
                (viewer, control::dispatch(viewer, &data, &mut device))
            }
            HubEvent::ControlOversized { viewer, len, max } => {
                (viewer, control::dispatch::too_large(len, max))
            }
            _ => return,
        };
        if !self.hub.send_control(now, viewer, &response.to_json()) {
            log::debug!("viewer {viewer}: control reply not sent (channel closed)");
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
}

fn new_viewer_id() -> Result<ViewerId, crate::hub::OfferError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| {
        crate::hub::OfferError::Rejected(format!("no randomness for a viewer id: {e}"))
    })?;
    Ok(ViewerId(u128::from_be_bytes(bytes)))
}
