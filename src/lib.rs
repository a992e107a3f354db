//! rtcam: a low-latency WebRTC camera streamer.
//!
//! The data path, one module each:
//! `source` (camera or test pattern → I420 frames) → `encode` (one OpenH264 encoder thread) →
//! `hub` (sans-IO: one str0m `Rtc` per viewer, fan-out, keyframe policy) → `net` (UDP socket,
//! HTTP/WHEP signaling). `control` answers the viewers' data-channel commands. `runtime` is the
//! event loop that owns the sockets and timers and wires the parts together.

pub mod args;
pub mod boards;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod encode;
pub mod hub;
pub mod logger;
pub mod net;
pub mod runtime;
pub mod source;
