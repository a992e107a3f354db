//! H.264 encoding: one OpenH264 encoder on its own thread, fed through a latest-wins mailbox.
//!
//! `Pipeline` owns the capture thread (pulls a `FrameSource`) and the encoder thread. Raw frames
//! go from capture to encoder through a one-slot mailbox: when the encoder is slow the older
//! frame is dropped, never queued. Encoded access units go to the event loop over a small
//! channel as `AccessUnit`s; keyframe requests come back through `Pipeline::request_keyframe`.

pub(crate) mod backend;
#[cfg(any(test, feature = "testing"))]
pub(crate) mod bench;
pub(crate) mod bench_encoder;
// Keeps libstdc++'s demangler out of static binaries (see the module).
#[cfg(target_feature = "crt-static")]
mod cxxabi;
mod encodings;
pub(crate) mod h264;
pub(crate) mod level;
pub(crate) mod limits;
pub(crate) mod m2m;
pub(crate) mod mailbox;
pub(crate) mod nal;
mod parameter_sets;
mod passthrough;
pub(crate) mod pipeline;
pub(crate) mod snapshot;
#[cfg(test)]
mod stamp_through_h264;
pub(crate) mod stats;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) use backend::EncoderChoice;
pub(crate) use pipeline::Pipeline;
pub(crate) use stats::PipelineStats;

/// Which of the stream's encodings something belongs to. One encoder serves every viewer of an
/// encoding; the second one runs only while some viewer's link is too slow for the first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The configured size and bitrate.
    Main,
    /// Half the width and height, at a bitrate for slow links.
    Low,
}

impl Encoding {
    pub const ALL: [Encoding; 2] = [Encoding::Main, Encoding::Low];

    pub(crate) fn index(self) -> usize {
        match self {
            Encoding::Main => 0,
            Encoding::Low => 1,
        }
    }
}

/// One H.264 access unit: a whole coded picture in Annex B form (start codes), and the picture
/// it came from. The encoder makes them, the pipeline passes a camera's own H.264 on as them,
/// and every viewer is sent the same one (`data` is shared, never copied per viewer).
#[derive(Clone, Debug)]
pub struct AccessUnit {
    /// An IDR carries SPS and PPS in front of its slices.
    pub data: Arc<[u8]>,
    /// True for an IDR (a viewer may start decoding here).
    pub keyframe: bool,
    pub encoding: Encoding,
    /// The temporal layer: 0 is the base. A unit of layer n references only units of layers
    /// up to n, and units of the top layer are referenced by none, so a viewer sent only the
    /// layers up to some k of every unit still decodes every picture it gets (at a lower
    /// frame rate). IDRs are layer 0.
    pub layer: u8,
    pub width: u32,
    pub height: u32,
    /// The source picture's sequence number.
    pub seq: u64,
    /// When the source captured the picture (monotonic).
    pub captured: Instant,
    /// When the pipeline took the picture from the mailbox to encode it (or to pass it on);
    /// a unit made outside a pipeline carries its capture time.
    pub handed: Instant,
}

/// Encoder settings that a user can set.
#[derive(Clone, Debug, PartialEq)]
pub struct EncoderSettings {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_kbps: u32,
    /// A periodic IDR at least this often in capture time (in addition to IDRs on request);
    /// zero turns periodic IDRs off.
    pub idr_interval: Duration,
    /// Encoder threads, within `limits::THREADS`. More than one cuts each picture into as many
    /// slices, encoded in parallel: a multi-core board that is too slow for a size on one core
    /// can still keep up, at a few percent more bits for the same quality.
    pub threads: u32,
    /// Temporal layers, within `limits::TEMPORAL_LAYERS` (see `AccessUnit::layer`): with 3, a
    /// viewer can be sent all frames, every second one or every fourth one of the same encode.
    pub temporal_layers: u32,
    /// Software (OpenH264) or the board's encoder (see `backend`).
    pub encoder: EncoderChoice,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings {
            width: 1280,
            height: 720,
            fps: 30,
            bitrate_kbps: 1500,
            idr_interval: Duration::from_secs(2),
            threads: 1,
            temporal_layers: 3,
            encoder: EncoderChoice::Auto,
        }
    }
}
