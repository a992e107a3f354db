//! The device status: the `status` command's result and `GET /api/status`.

use serde::Serialize;

use crate::hub::link::LinkReport;
use crate::source::CameraState;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    /// Source kind (`test`, later `v4l2`) and a readable description.
    pub source: String,
    pub source_name: String,
    pub width: u32,
    pub height: u32,
    /// Configured frame rate, and what the encoder actually produced over the last seconds.
    pub fps: u32,
    pub fps_measured: f64,
    /// Target bitrate, and what went out over the last seconds.
    pub bitrate_kbps: u32,
    pub bitrate_measured_kbps: f64,
    pub viewers: usize,
    pub viewers_connected: usize,
    pub max_viewers: usize,
    pub uptime_s: f64,
    pub frames_captured: u64,
    pub frames_encoded: u64,
    /// Frames lost before the viewers: replaced in the latest-wins mailbox, or refused by a
    /// full queue to the event loop.
    pub frames_dropped: u64,
    /// Frames the encoder's rate control chose to skip.
    pub frames_skipped: u64,
    pub keyframes: u64,
    /// What encodes: `software (OpenH264)`, `v4l2m2m:/dev/video11 (bcm2835-codec-encode)`
    /// or `passthrough`.
    pub encoder: String,
    /// Median time to encode one frame, over recent frames: the encoder's latency from frame
    /// in to bitstream out (for either backend: both encode one frame at a time).
    pub encode_ms_p50: f64,
    /// Median time from a frame entering the encoder to its last packet leaving the socket.
    pub capture_to_wire_ms_p50: f64,
    /// The 1-minute load average per CPU (1.0 = every core busy), where the OS tells.
    pub cpu_load: Option<f64>,
    /// The SoC temperature from /sys/class/thermal, where present.
    pub soc_temp_c: Option<f64>,
    /// Requests refused for a missing or wrong token since start.
    pub auth_failures: u64,
    /// Requests refused without their token being checked, because their address sent too
    /// many wrong tokens (answered 429).
    pub auth_throttled: u64,
    /// The camera: the format it delivers (`YUYV 640x480 @ 30 fps`), `streaming`,
    /// `no_signal` or `retrying`, and frames it dropped (V4L2 sequence gaps) or delivered
    /// broken. Absent for the test pattern.
    pub camera_format: Option<String>,
    pub camera_state: Option<CameraState>,
    pub camera_frames_dropped: u64,
    pub camera_frames_broken: u64,
    /// With H.264 passthrough (`--format H264`): whether the camera takes IDR requests (else
    /// viewers wait for its periodic IDRs). Absent when rtcam encodes.
    pub idr_on_request: Option<bool>,
    /// Every viewer's link: bandwidth estimate, what it is sent, what went out, NACKs, PLIs.
    pub links: Vec<LinkReport>,
    /// The low encoding (half size, for slow links): frames encoded, median encode time
    /// (the downscale included). 0 when it never ran.
    pub low_frames_encoded: u64,
    pub low_encode_ms_p50: f64,
    /// Camera pictures the board's encoder took in the camera's own format: read straight
    /// from the camera's buffers (dma-buf, zero copy) or copied as they were. Both 0 when
    /// pictures are converted to I420 first (software encoding, MJPEG cameras).
    pub camera_dmabuf: u64,
    pub camera_copied: u64,
}
