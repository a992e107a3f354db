//! Live facts about the camera behind a source, shared with `status`: written by the capture
//! thread, read by the event loop.

use std::sync::Mutex;
use std::sync::PoisonError;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CameraState {
    /// Camera frames are flowing.
    Streaming,
    /// The camera is open but sends no frames (or only broken ones): viewers see the
    /// "no signal" picture.
    NoSignal,
    /// The camera is gone or failed to open; rtcam retries with back-off while viewers see the
    /// "no signal" picture.
    Retrying,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Streaming => "streaming",
            CameraState::NoSignal => "no_signal",
            CameraState::Retrying => "retrying",
        }
    }
}

/// What `CameraStatus` says at one moment, for `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraReading {
    pub format: String,
    pub state: CameraState,
    pub frames_dropped: u64,
    pub frames_broken: u64,
    pub idr_on_request: Option<bool>,
}

#[derive(Debug, Default)]
pub(crate) struct CameraStatus {
    /// The negotiated format, e.g. `YUYV 640x480 @ 30 fps`.
    format: Mutex<String>,
    state: AtomicU8,
    /// Frames the driver dropped (gaps in its sequence numbers), over all reconnects.
    dropped: AtomicU64,
    /// Frames that arrived broken (driver error flag, undecodable MJPEG) and were skipped.
    broken: AtomicU64,
    /// For H.264 passthrough: the camera can be asked for an IDR. False when it cannot (rtcam
    /// then relies on the camera's periodic IDRs); also false when not passing through.
    idr_on_request: AtomicBool,
    passthrough: AtomicBool,
}

impl CameraStatus {
    pub(crate) fn new() -> CameraStatus {
        CameraStatus::default()
    }

    pub(crate) fn set_format(&self, format: String) {
        *self.format.lock().unwrap_or_else(PoisonError::into_inner) = format;
    }

    pub(crate) fn format(&self) -> String {
        self.format
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_state(&self, state: CameraState) {
        let code = match state {
            CameraState::Streaming => 0,
            CameraState::NoSignal => 1,
            CameraState::Retrying => 2,
        };
        self.state.store(code, Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> CameraState {
        match self.state.load(Ordering::Relaxed) {
            0 => CameraState::Streaming,
            1 => CameraState::NoSignal,
            _ => CameraState::Retrying,
        }
    }

    pub(crate) fn add_dropped(&self, frames: u64) {
        self.dropped.fetch_add(frames, Ordering::Relaxed);
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub(crate) fn add_broken(&self) {
        self.broken.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn broken(&self) -> u64 {
        self.broken.load(Ordering::Relaxed)
    }

    pub(crate) fn set_passthrough(&self, passthrough: bool, idr_on_request: bool) {
        self.passthrough.store(passthrough, Ordering::Relaxed);
        self.idr_on_request.store(idr_on_request, Ordering::Relaxed);
    }

    pub(crate) fn read(&self) -> CameraReading {
        CameraReading {
            format: self.format(),
            state: self.state(),
            frames_dropped: self.dropped(),
            frames_broken: self.broken(),
            idr_on_request: self.idr_on_request(),
        }
    }

    /// None when not passing H.264 through; else whether the camera takes IDR requests.
    pub(crate) fn idr_on_request(&self) -> Option<bool> {
        self.passthrough
            .load(Ordering::Relaxed)
            .then(|| self.idr_on_request.load(Ordering::Relaxed))
    }
}
