//! The event loop: one task that owns the streamer, the media socket, the pipeline and the
//! actuator thread, and wakes on whichever comes first — an access unit, a datagram (or an
//! ICE-TCP frame), an HTTP request, an actuator result, the end of a pipeline restart, a
//! timeout, or stop.
//!
//! Each turn reads the clock once and hands that `now` to the streamer with what woke the
//! loop, then carries out everything the streamer asks until it names its next timeout. The
//! loop itself decides nothing: it waits, reads, writes, actuates, and runs what blocks
//! (a pipeline restart, camera controls) off the loop.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use smol::Timer;
use smol::channel::{Receiver, Sender};
use smol::future::FutureExt;
use str0m::net::Protocol;

use super::actuator::{Actuated, ActuatorWorker};
use super::host;
use super::pipeline::{Restarted, Started, Starter};
use super::tokens::new_viewer_id;
use crate::control::Status;
use crate::encode::snapshot::Picture;
use crate::encode::{AccessUnit, PipelineStats};
use crate::hub::{OfferError, PatchError, Patched};
use crate::net::interfaces::host_candidates;
use crate::net::tcp_media::{self, TcpEvent};
use crate::net::udp::MediaSocket;
use crate::net::whep::LoopRequest;
use crate::streamer::{
    Answered, Call, CallId, EncoderCommand, Input, LatencyWindow, Output, Readings, Reply, Streamer,
};

pub(crate) struct EventLoop {
    streamer: Streamer,
    socket: MediaSocket,
    /// ICE-TCP connections' frames and packets (None: ICE-TCP off).
    tcp: Option<tcp_media::LoopSide>,
    pipeline: PipelineState,
    /// The running pipeline's access units; during a restart, the old pipeline's last ones
    /// until they end.
    units: Option<Receiver<AccessUnit>>,
    actuators: ActuatorWorker,
    requests: Receiver<LoopRequest>,
    stop: Receiver<()>,
    /// HTTP requests the streamer has not answered yet.
    calls: HashMap<CallId, Waiter>,
    next_call: u64,
    /// Access unit handed to the encoder → its last packet on the socket.
    to_wire: LatencyWindow,
    /// Snapshot requests that came during a restart, for the next pipeline.
    snapshots: Vec<Sender<Picture>>,
}

/// Where media comes and goes: the UDP socket, and ICE-TCP's connections when on.
pub(crate) struct MediaIo {
    pub socket: MediaSocket,
    pub tcp: Option<tcp_media::LoopSide>,
}

enum PipelineState {
    Running(Box<Current>),
    /// A restart runs on a worker thread; the viewers are served meanwhile.
    Restarting(smol::Task<Result<Restarted, String>>),
    /// Only while switching between the two.
    Switching,
}

/// The pipeline that runs, and what starts the next one.
struct Current {
    pipeline: Started,
    starter: Starter,
}

/// Where an HTTP request's answer goes.
enum Waiter {
    Offer(Sender<Result<Answered, OfferError>>),
    Patch(Sender<Result<Patched, PatchError>>),
    Delete(Sender<bool>),
    Status(Sender<Status>),
    Health(Sender<Result<(), String>>),
}

enum Wake {
    Unit(AccessUnit),
    /// The pipeline's units ended: it stopped by itself, or a restart retired it.
    UnitsEnded,
    Readable,
    Tcp(TcpEvent),
    Request(LoopRequest),
    Actuated(Actuated),
    Restarted(Box<Result<Restarted, String>>),
    Timeout,
    Stop,
}

impl EventLoop {
    pub(crate) fn new(
        streamer: Streamer,
        MediaIo { socket, tcp }: MediaIo,
        started: Started,
        starter: Starter,
        actuators: ActuatorWorker,
        requests: Receiver<LoopRequest>,
        stop: Receiver<()>,
    ) -> EventLoop {
        EventLoop {
            streamer,
            socket,
            tcp,
            units: Some(started.units.clone()),
            pipeline: PipelineState::Running(Box::new(Current {
                pipeline: started,
                starter,
            })),
            actuators,
            requests,
            stop,
            calls: HashMap::new(),
            next_call: 0,
            to_wire: LatencyWindow::new(120),
            snapshots: Vec::new(),
        }
    }

    /// Runs until stopped (Ok) or until the pipeline ends by itself (Err).
    pub(crate) async fn run(mut self) -> Result<(), String> {
        let mut now = Instant::now();
        let outcome = loop {
            let deadline = self.flush(now).await.0;
            let wake = self.wait(deadline).await;
            now = Instant::now();
            match wake {
                Wake::Unit(unit) => self.on_unit(now, unit).await,
                Wake::UnitsEnded => {
                    if matches!(self.pipeline, PipelineState::Running(_)) {
                        break Err("the encoder stopped".to_string());
                    }
                    self.units = None;
                }
                Wake::Readable => self.on_readable(now),
                Wake::Tcp(TcpEvent::Frame(frame)) => self.streamer.handle_input(
                    now,
                    Input::Datagram {
                        proto: Protocol::Tcp,
                        source: frame.source,
                        destination: frame.destination,
                        contents: &frame.contents,
                    },
                ),
                Wake::Tcp(TcpEvent::Closed(peer)) => {
                    self.streamer.handle_input(now, Input::TcpClosed(peer))
                }
                Wake::Request(request) => self.on_request(now, request),
                Wake::Actuated((op, result)) => {
                    self.streamer.handle_input(now, Input::Controls(op, result));
                }
                Wake::Restarted(restarted) => match *restarted {
                    Ok(restarted) => self.on_restarted(now, restarted),
                    Err(why) => break Err(format!("the stream could not start again: {why}")),
                },
                Wake::Timeout => self.streamer.handle_input(now, Input::Timeout),
                Wake::Stop => break Ok(()),
            }
        };
        log::info!(
            "stopping: closing {} viewer(s)",
            self.streamer.viewers().len()
        );
        self.streamer.close_all();
        self.flush(Instant::now()).await;
        if let PipelineState::Restarting(task) =
            std::mem::replace(&mut self.pipeline, PipelineState::Switching)
        {
            // Let the camera be released cleanly rather than abandon the restart midway.
            let _ = task.await;
        }
        outcome
    }

    async fn wait(&mut self, deadline: Instant) -> Wake {
        let EventLoop {
            stop,
            units,
            socket,
            tcp,
            requests,
            actuators,
            pipeline,
            ..
        } = self;
        // `or` polls in order: stop, then access units (latency), then the network, then the rest.
        let stop = async {
            let _ = stop.recv().await;
            Wake::Stop
        };
        let unit = async {
            match units {
                Some(units) => match units.recv().await {
                    Ok(unit) => Wake::Unit(unit),
                    Err(_) => Wake::UnitsEnded,
                },
                None => std::future::pending().await,
            }
        };
        let readable = async {
            if let Err(e) = socket.readable().await {
                log::warn!("media socket: {e}");
                Timer::after(Duration::from_millis(100)).await;
            }
            Wake::Readable
        };
        let tcp_frame = async {
            match tcp {
                Some(tcp) => match tcp.events.recv().await {
                    Ok(event) => Wake::Tcp(event),
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        };
        let request = async {
            match requests.recv().await {
                Ok(r) => Wake::Request(r),
                Err(_) => std::future::pending().await,
            }
        };
        let actuated = async { Wake::Actuated(actuators.next_result().await) };
        let restarted = async {
            match pipeline {
                PipelineState::Restarting(task) => Wake::Restarted(Box::new(task.await)),
                _ => std::future::pending().await,
            }
        };
        let timer = async {
            Timer::at(deadline).await;
            Wake::Timeout
        };
        stop.or(unit)
            .or(readable)
            .or(tcp_frame)
            .or(request)
            .or(actuated)
            .or(restarted)
            .or(timer)
            .await
    }

    async fn on_unit(&mut self, now: Instant, unit: AccessUnit) {
        self.streamer.handle_input(now, Input::AccessUnit(&unit));
        // Send this unit's packets right away and time it: handed to the encoder → last
        // packet on the socket.
        let (_, sent) = self.flush(now).await;
        if sent > 0 {
            self.to_wire
                .record(Instant::now().saturating_duration_since(unit.handed));
        }
    }

    fn on_readable(&mut self, now: Instant) {
        let streamer = &mut self.streamer;
        // Bounded so a flood cannot keep the loop from frames and timers.
        for _ in 0..8 {
            let read = self.socket.recv_batch(|d| {
                streamer.handle_input(
                    now,
                    Input::Datagram {
                        proto: Protocol::Udp,
                        source: d.source,
                        destination: d.destination,
                        contents: d.contents,
                    },
                )
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

    fn on_request(&mut self, now: Instant, request: LoopRequest) {
        if matches!(request, LoopRequest::Offer { .. }) {
            // The interfaces again (a few syscalls), so the answer names the addresses the
            // device has now: DHCP renewals, a VPN coming up.
            let hosts = host_candidates(self.socket.local_addr());
            self.streamer
                .handle_input(now, Input::HostCandidates(hosts));
        }
        let (waiter, call) = match request {
            LoopRequest::Offer {
                client,
                sdp,
                role,
                reply,
            } => match new_viewer_id() {
                Ok(viewer) => {
                    let call = Call::Offer {
                        viewer,
                        client,
                        sdp,
                        role,
                    };
                    (Waiter::Offer(reply), call)
                }
                Err(e) => {
                    let why = format!("no randomness for a viewer id: {e}");
                    let _ = reply.try_send(Err(OfferError::Rejected(why)));
                    return;
                }
            },
            LoopRequest::Delete { id, reply } => (Waiter::Delete(reply), Call::Delete(id)),
            LoopRequest::Patch {
                id,
                client,
                if_match,
                frag,
                reply,
            } => {
                let call = Call::Patch {
                    viewer: id,
                    client,
                    if_match,
                    frag,
                };
                (Waiter::Patch(reply), call)
            }
            LoopRequest::Status { reply } => (Waiter::Status(reply), Call::Status),
            LoopRequest::Health { reply } => (Waiter::Health(reply), Call::Health),
            LoopRequest::Snapshot { reply } => {
                match &self.pipeline {
                    PipelineState::Running(current) => {
                        current.pipeline.pipeline.request_snapshot(reply)
                    }
                    _ => self.snapshots.push(reply),
                }
                return;
            }
            LoopRequest::AuthFailed => {
                self.streamer.handle_input(now, Input::AuthFailed);
                return;
            }
            LoopRequest::AuthThrottled => {
                self.streamer.handle_input(now, Input::AuthThrottled);
                return;
            }
        };
        let id = CallId(self.next_call);
        self.next_call += 1;
        self.calls.insert(id, waiter);
        self.streamer.handle_input(now, Input::Call(id, call));
    }

    fn on_restarted(&mut self, now: Instant, restarted: Restarted) {
        let Restarted {
            started,
            failure,
            starter,
        } = restarted;
        let running = started.running();
        self.actuators.camera_changed(started.pipeline.controls());
        for reply in self.snapshots.drain(..) {
            started.pipeline.request_snapshot(reply);
        }
        self.units = Some(started.units.clone());
        self.pipeline = PipelineState::Running(Box::new(Current {
            pipeline: started,
            starter,
        }));
        self.streamer
            .handle_input(now, Input::Restarted { running, failure });
    }

    /// Carries out everything the streamer has to say; returns when it next wants time, and
    /// how many datagrams went out.
    async fn flush(&mut self, now: Instant) -> (Instant, usize) {
        let mut sent = 0;
        loop {
            match self.streamer.poll_output() {
                Output::Transmit(t) if t.proto == Protocol::Udp => {
                    match self.socket.send(t.source, t.destination, &t.contents).await {
                        Ok(()) => sent += 1,
                        Err(e) => log::debug!("send to {}: {e}", t.destination),
                    }
                }
                Output::Transmit(t) => {
                    // ICE-TCP: to the connection of that viewer; checks str0m would send to a
                    // viewer's active candidate (nothing listens there) go nowhere. TURN over
                    // TCP: to the server's connection, opened if need be.
                    if let Some(tcp) = &self.tcp {
                        tcp.send(t.destination, &t.contents);
                        sent += 1;
                    }
                }
                Output::Encoder(command) => self.encoder(command),
                Output::Actuator(command) => self.actuators.apply(command),
                Output::Reply(id, reply) => self.reply(id, reply),
                Output::ReadingsWanted => {
                    let readings = self.readings();
                    self.streamer.handle_input(now, Input::Readings(readings));
                }
                Output::Timeout(at) => return (at, sent),
            }
        }
    }

    fn encoder(&mut self, command: EncoderCommand) {
        match command {
            EncoderCommand::Keyframe(encoding) => {
                if let PipelineState::Running(current) = &self.pipeline {
                    current.pipeline.pipeline.request_keyframe(encoding);
                }
                // During a restart there is nothing to ask: a new encoder starts with an IDR.
            }
            EncoderCommand::Bitrate(encoding, kbps) => {
                if let PipelineState::Running(current) = &mut self.pipeline {
                    current.pipeline.pipeline.set_bitrate(encoding, kbps);
                }
            }
            EncoderCommand::Active(encoding, active) => {
                if let PipelineState::Running(current) = &self.pipeline {
                    current.pipeline.pipeline.set_active(encoding, active);
                }
            }
            EncoderCommand::Restart(settings) => {
                let state = std::mem::replace(&mut self.pipeline, PipelineState::Switching);
                let PipelineState::Running(current) = state else {
                    log::warn!("a restart was asked for while one is under way");
                    self.pipeline = state;
                    return;
                };
                // The receiver stays here to drain the old pipeline's last units.
                let Current { pipeline, starter } = *current;
                let Started { pipeline, .. } = pipeline;
                let task = smol::unblock(move || starter.restart(pipeline, settings));
                self.pipeline = PipelineState::Restarting(task);
            }
        }
    }

    fn reply(&mut self, id: CallId, reply: Reply) {
        let Some(waiter) = self.calls.remove(&id) else {
            return;
        };
        // A requester that went away (client disconnected) leaves a closed channel: fine.
        match (waiter, reply) {
            (Waiter::Offer(tx), Reply::Offer(r)) => drop(tx.try_send(r)),
            (Waiter::Patch(tx), Reply::Patched(r)) => drop(tx.try_send(r)),
            (Waiter::Delete(tx), Reply::Deleted(r)) => drop(tx.try_send(r)),
            (Waiter::Status(tx), Reply::Status(r)) => drop(tx.try_send(*r)),
            (Waiter::Health(tx), Reply::Health(r)) => drop(tx.try_send(r)),
            // A bug, not the client's doing; the reply itself (an SDP, a status) is no use in
            // the log.
            (_, _) => log::warn!("HTTP call {} answered with the wrong kind of reply", id.0),
        }
    }

    /// What only the shell can read, for status and health.
    fn readings(&self) -> Readings {
        let (pipeline, camera) = match &self.pipeline {
            PipelineState::Running(current) => (
                current.pipeline.pipeline.stats(),
                current.pipeline.pipeline.camera_status().map(|c| c.read()),
            ),
            _ => (PipelineStats::default(), None),
        };
        Readings {
            pipeline,
            camera,
            cpu_load: host::cpu_load(),
            soc_temp_c: host::soc_temp_c(),
            capture_to_wire_ms_p50: self.to_wire.median_ms(),
        }
    }
}
