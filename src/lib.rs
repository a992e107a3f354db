//! rtcam: a low-latency WebRTC camera streamer for Raspberry Pi-class boards.
//!
//! # How it is built
//!
//! One sans-IO core, one IO shell, and two threads for the heavy lifting:
//!
//! ```text
//!  camera ─► source/ ─(I420, latest wins)─► encode/ ─(H.264 access unit)─┐
//!  (capture thread: V4L2, test pattern,      (encoder thread: OpenH264,  │
//!   conversion to I420)                        passthrough)              ▼
//!                                      ┌─────────── shell/ (event loop) ───────────┐
//!   UDP ◄── net/udp ◄──────────────────┤  streamer/  the sans-IO core:             │
//!   HTTP ◄─ net/http, net/whep ◄───────┤    hub/      every viewer's str0m Rtc,    │
//!                                      │              fan-out, keyframe policy     │
//!                                      │    control/  data-channel protocol, roles,│
//!                                      │              pan/tilt/zoom, dead-man stop │
//!                                      └──────┬───────────────────────┬────────────┘
//!                     actuator thread (PTZ, camera controls)   worker (pipeline restarts)
//! ```
//!
//! - [`streamer::Streamer`] is all of rtcam's policy in one state machine, in the shape of
//!   str0m's `Rtc`: [`handle_input`](streamer::Streamer::handle_input) takes datagrams, access
//!   units, HTTP calls, results and time; [`poll_output`](streamer::Streamer::poll_output) says
//!   what to send, what the encoder and the actuators must do, what to answer, and when to
//!   wake it next. It reads no clock and touches no socket or device, so it is tested with
//!   simulated time and viewers in memory.
//! - [`shell`] is the IO around it: one smol event loop that owns the UDP socket, the HTTP
//!   server, the timers and the pipeline, reads the clock once per turn, and runs whatever
//!   blocks (a camera reopening, a USB control transfer) on threads of its own. The command
//!   line, config files and the systemd notify protocol live there too.
//! - The capture and encoder threads are the only other threads on the data path: frames pass
//!   between them through a one-slot mailbox, so a slow stage drops old frames instead of
//!   queueing delay, and one encoder serves every viewer.
//!
//! # Driving the core
//!
//! A viewer (here str0m itself, on the offering side) joins over WHEP and receives a picture,
//! with datagrams carried in memory and time made up as it goes:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//!
//! use rtcam::streamer::*;
//! use str0m::change::SdpAnswer;
//! use str0m::media::{Direction, MediaKind};
//! use str0m::net::Receive;
//! use str0m::{Candidate, Event, Input as RtcInput, Output as RtcOutput, RtcConfig};
//!
//! let mut now = Instant::now();
//! let config = StreamerConfig {
//!     hub: HubConfig {
//!         candidates: vec!["10.0.0.1:5000".parse()?],
//!         ..HubConfig::default()
//!     },
//!     control: ControlConfig::default(),
//!     rate: RateLimits::default(),
//! };
//! let source = SourceInfo { kind: "test", name: "example".into(), width: 640, height: 480, fps: 30 };
//! let mut streamer = Streamer::new(config, Running::new(source, 1000), now)?;
//!
//! // The viewer offers to receive H.264.
//! let mut viewer = RtcConfig::new().clear_codecs().enable_h264(true).build(now);
//! viewer.add_local_candidate(Candidate::host("10.0.0.2:6000".parse()?, "udp")?);
//! let mut change = viewer.sdp_api();
//! change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
//! let (offer, pending) = change.apply().ok_or("no offer")?;
//! let mut pending = Some(pending);
//!
//! // The WHEP POST, as the shell hands it in (the viewer id comes from the OS's randomness).
//! let client = "10.0.0.2".parse()?;
//! let call = Call::Offer { viewer: ViewerId(7), client, sdp: offer.to_sdp_string(), role: Role::View };
//! streamer.handle_input(now, Input::Call(CallId(1), call));
//!
//! let mut pictures = 0;
//! for turn in 0..200 {
//!     // What the streamer wants done: here, datagrams to the viewer and the WHEP answer.
//!     loop {
//!         match streamer.poll_output() {
//!             Output::Transmit(t) => {
//!                 let contents = (&*t.contents).try_into()?;
//!                 let receive = Receive { proto: t.proto, source: t.source, destination: t.destination, contents };
//!                 viewer.handle_input(RtcInput::Receive(now, receive))?;
//!             }
//!             Output::Reply(_, Reply::Offer(answer)) => {
//!                 let answer = answer?.sdp;
//!                 let pending = pending.take().ok_or("answered twice")?;
//!                 viewer.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(&answer)?)?;
//!             }
//!             Output::Timeout(_) => break,
//!             _ => {} // IDR requests, actuator commands, readings: nothing here
//!         }
//!     }
//!     // What the viewer sends back.
//!     loop {
//!         match viewer.poll_output()? {
//!             RtcOutput::Transmit(t) => streamer.handle_input(now, Input::Datagram {
//!                 proto: t.proto,
//!                 source: t.source,
//!                 destination: t.destination,
//!                 contents: &t.contents,
//!             }),
//!             RtcOutput::Event(Event::MediaData(_)) => pictures += 1,
//!             RtcOutput::Event(_) => {}
//!             RtcOutput::Timeout(_) => break,
//!         }
//!     }
//!     // Time passes; every few turns the encoder hands in a picture (an IDR: SPS, PPS, slice).
//!     now += Duration::from_millis(10);
//!     streamer.handle_input(now, Input::Timeout);
//!     viewer.handle_input(RtcInput::Timeout(now))?;
//!     if turn % 3 == 0 {
//!         let idr = [&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f][..], &[0, 0, 0, 1, 0x68, 0xce], &[0, 0, 0, 1, 0x65, 0x88]].concat();
//!         let unit = AccessUnit {
//!             data: Arc::from(idr), keyframe: true, encoding: Encoding::Main, layer: 0,
//!             width: 640, height: 480,
//!             seq: turn, captured: now, handed: now,
//!         };
//!         streamer.handle_input(now, Input::AccessUnit(&unit));
//!     }
//! }
//! assert!(pictures > 0, "the viewer connected and received pictures");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
// Checked with the test features on (as `cargo clippy --all-targets` builds): then the client and
// the bench drivers are public too, and what they expose is not flagged as unreachable.
#![cfg_attr(feature = "testing", warn(unreachable_pub))]

#[cfg(feature = "testing")]
pub mod bench;
pub mod boards;
#[cfg(feature = "client")]
pub mod client;
pub mod config;
pub(crate) mod control;
pub(crate) mod encode;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub(crate) mod hub;
pub(crate) mod net;
pub mod shell;
pub(crate) mod source;
pub mod streamer;
pub(crate) mod web;

pub use encode::bench_encoder::{BenchEncoderArgs, BenchEncoderReport, run as bench_encoder};
pub use source::v4l2::report::print_devices;
