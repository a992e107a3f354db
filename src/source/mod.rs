//! Frame sources: everything that produces raw I420 pictures with a capture time (or lends its
//! own buffers to an encoder that takes them as they are: `lent`).
//!
//! A source is pulled from its own thread (`FrameSource::next_frame` blocks until the next
//! picture is due), so a camera, a file or the test pattern all look the same to the encoder.

pub(crate) mod camera_status;
pub(crate) mod capture;
pub(crate) mod controls;
pub(crate) mod convert;
#[cfg(test)]
pub(crate) mod failing;
pub(crate) mod frame_clock;
pub(crate) mod helper;
pub(crate) mod i420;
pub(crate) mod lent;
pub(crate) mod libcamera;
pub(crate) mod no_signal;
pub(crate) mod pattern;
pub(crate) mod pool;
pub(crate) mod stamp;
pub(crate) mod supervised;
pub(crate) mod v4l2;

use std::sync::Arc;
use std::time::Instant;

pub(crate) use camera_status::{CameraReading, CameraState, CameraStatus};
pub(crate) use capture::Capture;
pub(crate) use controls::{
    CameraControls, ControlError, ControlInfo, ControlKind, ControlReply, ControlRequest,
};
pub(crate) use lent::{CameraFrame, PlaneFormat};
pub(crate) use pool::{FrameBuf, FramePool};

/// One raw picture in I420 (planar Y, then U, then V; chroma subsampled 2×2), tightly packed:
/// the Y stride is `width`, the U and V strides are `width / 2`. Width and height are even.
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
    /// The three planes back to back: `width * height * 3 / 2` bytes.
    pub data: FrameBuf,
    /// Counts up by one per frame the source produced (gaps mean the source dropped frames).
    pub seq: u64,
    /// When the picture was captured, on the monotonic clock.
    pub captured: Instant,
}

impl Frame {
    pub(crate) fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    pub(crate) fn u(&self) -> &[u8] {
        let y = self.luma_len();
        &self.data[y..y + y / 4]
    }

    pub(crate) fn v(&self) -> &[u8] {
        let y = self.luma_len();
        &self.data[y + y / 4..y + y / 2]
    }

    fn luma_len(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// What a source tells about itself, for logs and `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    /// Short kind: `test`, later `v4l2`.
    pub kind: &'static str,
    /// Human-readable description (device name, pattern).
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

#[derive(Debug)]
pub(crate) enum SourceError {
    /// The source is gone for good: the pipeline ends. No source of today's does that (a
    /// camera that goes away is reopened), but the pipeline honours it.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "part of the FrameSource contract")
    )]
    Closed,
    /// A failure that may pass (a bad frame, a device error); the caller may retry.
    Failed(String),
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceError::Closed => write!(f, "source closed"),
            SourceError::Failed(why) => write!(f, "source failed: {why}"),
        }
    }
}

impl std::error::Error for SourceError {}

/// Something that produces frames. Pulled from a dedicated thread.
pub(crate) trait FrameSource: Send {
    fn info(&self) -> SourceInfo;

    /// Blocks until the next frame is due and returns it.
    fn next_frame(&mut self) -> Result<Frame, SourceError>;

    /// The camera's controls, usable from any thread while frames are pulled. None for
    /// sources without any (the test pattern).
    fn controls(&self) -> Option<Arc<dyn CameraControls>> {
        None
    }

    /// Blocks until the next picture is due and returns it: a raw frame, or an encoded access
    /// unit from a camera that encodes by itself (H.264 passthrough). The pipeline pulls this;
    /// raw sources keep the default.
    fn next_capture(&mut self) -> Result<Capture, SourceError> {
        self.next_frame().map(Capture::Raw)
    }

    /// True once after the picture changed abruptly (a camera came back after a failure): the
    /// pipeline makes the next frame an IDR so viewers resynchronise at once.
    fn take_keyframe_request(&mut self) -> bool {
        false
    }

    /// Live camera facts for `status` (format, camera state, dropped frames). None for sources
    /// without a camera.
    fn camera_status(&self) -> Option<Arc<CameraStatus>> {
        None
    }

    /// The layout of the camera's own buffers, when it could lend them to an encoder that takes
    /// that format as it is (a raw format in one memory plane); None for sources that convert
    /// (MJPEG), make I420 themselves, or encode.
    fn buffer_format(&self) -> Option<PlaneFormat> {
        None
    }

    /// From now on, hand out the camera's own buffers (`Capture::Camera`) whenever the camera
    /// delivers `format` (after a reopen it may not); I420 frames otherwise.
    fn lend_buffers(&mut self, _format: PlaneFormat) {}
}
