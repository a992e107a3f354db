//! V4L2 cameras: a `FrameSource` that streams a capture device with mmap buffers, converts each
//! frame to I420 (or passes H.264 through), and stamps it with the driver's capture time. When
//! the board's encoder takes the camera's format as it is, frames are not converted: the
//! driver's buffers are lent to the encoder (`lend_buffers`, `super::lent`).
//!
//! The camera is read on the pipeline's capture thread, not the event loop: converting a frame
//! (an MJPEG decode is milliseconds) must never delay packets, and a blocking read on a thread
//! of its own is the simplest way to wait for a frame with a timeout. The latest-wins mailbox
//! behind it drops frames the encoder cannot keep up with.

pub(crate) mod controls;
pub(crate) mod device;
pub(crate) mod negotiate;
pub(crate) mod raw;
pub(crate) mod report;
pub(crate) mod stream;

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use linuxvideo::{BufType, Device};

use self::controls::V4l2Controls;
use self::device::{capture_buf_type, guard, offers};
use self::negotiate::{Wanted, choose};
use self::stream::{
    Captured, MmapStream, NegotiatedFormat, monotonic_now, set_format, set_frame_rate,
};
use super::convert::{Converter, PixelFormat};
use super::lent::CameraBuffer;
use super::{
    CameraControls, CameraFrame, CameraStatus, Capture, Frame, FramePool, FrameSource, PlaneFormat,
    SourceError, SourceInfo,
};

/// Consecutive broken frames (driver error flag, undecodable JPEG) after which the camera
/// counts as failed rather than hiccuping.
const BROKEN_LIMIT: u32 = 30;
/// The shortest wait for a frame before the camera counts as silent.
const MIN_FRAME_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest width or height taken from a driver.
const MAX_SIDE: u32 = 16384;

pub(crate) struct V4l2Source {
    // Field order matters: the stream (its mappings) goes before the device closes its fd.
    stream: MmapStream,
    /// Holds the fd the stream uses open.
    _device: Device,
    path: PathBuf,
    card: String,
    negotiated: NegotiatedFormat,
    /// None for H.264, which is passed through.
    converter: Option<Converter>,
    pool: FramePool,
    width: u32,
    height: u32,
    fps: u32,
    /// Camera frames closer together than this are skipped (camera faster than asked).
    min_interval: Duration,
    last_emitted: Option<Duration>,
    last_sequence: Option<u32>,
    seq: u64,
    frame_timeout: Duration,
    broken_in_a_row: u32,
    /// A frame read while probing (`--source auto`), handed out first.
    pending: Option<Capture>,
    /// The camera's buffers, when an encoder could take them as they are.
    buffer_format: Option<PlaneFormat>,
    /// Set when they go to the encoder as they are (`lend_buffers`).
    lending: Option<PlaneFormat>,
    status: Arc<CameraStatus>,
    controls: Arc<V4l2Controls>,
}

impl V4l2Source {
    /// Opens `path`, negotiates the format closest to `wanted` and starts streaming. `status`
    /// and `controls` outlive reopenings of the same camera.
    pub(crate) fn open(
        path: &Path,
        wanted: &Wanted,
        status: Arc<CameraStatus>,
        controls: Arc<V4l2Controls>,
    ) -> Result<V4l2Source, String> {
        let fail =
            |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", path.display());
        let device = Device::open(path).map_err(|e| fail("cannot open", &e))?;
        let caps = device
            .capabilities()
            .map_err(|e| fail("not a V4L2 device", &e))?;
        let card = caps.card().to_string();
        let buf_type = capture_buf_type(&device)
            .ok_or_else(|| fail("cannot stream video", &"not a video capture device"))?;
        let multiplanar = buf_type == BufType::VIDEO_CAPTURE_MPLANE;
        let offered = guard(|| offers(&device, buf_type, (wanted.width, wanted.height)))
            .map_err(|e| fail("cannot list formats", &e))?;
        let choice = choose(&offered, wanted).map_err(|e| format!("{}: {e}", path.display()))?;
        let fd = device.as_raw_fd();
        let negotiated = set_format(fd, multiplanar, choice.fourcc, choice.width, choice.height)
            .map_err(|e| fail("cannot set the format", &e))?;
        let Some((format, _)) = PixelFormat::from_fourcc(negotiated.fourcc) else {
            return Err(format!(
                "{}: the driver switched to format {}, which rtcam cannot use",
                path.display(),
                device::fourcc_text(negotiated.fourcc)
            ));
        };
        let camera_fps = set_frame_rate(fd, negotiated.buf_type(), choice.fps.round() as u32)
            .unwrap_or(choice.fps);
        let stream =
            MmapStream::start(fd, &negotiated).map_err(|e| fail("cannot start streaming", &e))?;
        let converter = (format != PixelFormat::H264).then(|| {
            Converter::new(
                format,
                negotiated.width,
                negotiated.height,
                &negotiated.strides,
            )
        });
        let (width, height) = converter.as_ref().map_or(
            (negotiated.width, negotiated.height),
            Converter::output_size,
        );
        // Odd sizes are cropped by the conversion; only whole pictures are lent out as they are.
        let buffer_format = match negotiated.strides[..] {
            [stride] if (width, height) == (negotiated.width, negotiated.height) => {
                PlaneFormat::of_camera(negotiated.fourcc, width, height, stride)
            }
            _ => None,
        };
        if width < 16 || height < 16 {
            return Err(format!(
                "{}: the driver chose {}x{}, too small to stream",
                path.display(),
                negotiated.width,
                negotiated.height
            ));
        }
        // Far beyond any camera and the encoder's limits: a driver reporting more is broken, and
        // the frame buffers sized from it would not fit in memory.
        if width > MAX_SIDE || height > MAX_SIDE {
            return Err(format!(
                "{}: the driver chose {}x{}, too large to stream",
                path.display(),
                negotiated.width,
                negotiated.height
            ));
        }
        let fps = (camera_fps.min(f64::from(wanted.fps)).round() as u32).max(1);
        // Skip frames only when the camera is clearly faster than asked (60 vs 30).
        let min_interval = if camera_fps > f64::from(wanted.fps) * 1.2 {
            Duration::from_secs_f64(0.9 / f64::from(wanted.fps.max(1)))
        } else {
            Duration::ZERO
        };
        let frame_timeout =
            MIN_FRAME_TIMEOUT.max(Duration::from_secs_f64(4.0 / camera_fps.max(0.1)));
        let described = format!(
            "{} {}x{} @ {:.4} fps{}",
            device::fourcc_text(negotiated.fourcc),
            negotiated.width,
            negotiated.height,
            camera_fps,
            if multiplanar { " (multi-planar)" } else { "" }
        );
        // "30.0000" → "30" for people.
        let described = described.replace(".0000 fps", " fps");
        status.set_format(described);
        let idr_on_request = format == PixelFormat::H264
            && controls
                .list()
                .map(|list| list.iter().any(|c| c.name == "force_key_frame"))
                .unwrap_or(false);
        status.set_passthrough(format == PixelFormat::H264, idr_on_request);
        Ok(V4l2Source {
            stream,
            _device: device,
            path: path.to_path_buf(),
            card,
            negotiated,
            pool: FramePool::new(width as usize * height as usize * 3 / 2),
            converter,
            width,
            height,
            fps,
            min_interval,
            last_emitted: None,
            last_sequence: None,
            seq: 0,
            frame_timeout,
            broken_in_a_row: 0,
            pending: None,
            buffer_format,
            lending: None,
            status,
            controls,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The format the camera delivers, e.g. `YUYV 640x480 @ 30 fps`.
    pub(crate) fn format_description(&self) -> String {
        self.status.format()
    }

    /// The controls object this source hands out (shared with reopenings).
    pub(crate) fn v4l2_controls(&self) -> Arc<V4l2Controls> {
        self.controls.clone()
    }

    /// Waits for one frame and keeps it for the first `next_capture` (the probe of `auto`).
    pub(crate) fn probe(&mut self) -> Result<(), String> {
        match self.capture() {
            Ok(capture) => {
                self.pending = Some(capture);
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn capture(&mut self) -> Result<Capture, SourceError> {
        if let Some(capture) = self.pending.take() {
            return Ok(capture);
        }
        loop {
            let (last_emitted, min_interval) = (self.last_emitted, self.min_interval);
            let too_soon = move |mono: Duration| {
                last_emitted.is_some_and(|last| mono.saturating_sub(last) < min_interval)
            };
            let (sequence, monotonic, outcome) = match self.lending {
                Some(format) => {
                    let lent = self.stream.lend(self.frame_timeout).map_err(|e| {
                        SourceError::Failed(format!("{}: {e}", self.path.display()))
                    })?;
                    let outcome = if too_soon(lent.monotonic.unwrap_or_else(monotonic_now)) {
                        Outcome::Skipped
                    } else if lent.error {
                        Outcome::Broken("the driver flagged the frame as corrupt".into())
                    } else if lent.buffer.bytes().len() < format.size as usize {
                        Outcome::Broken(format!(
                            "short frame: {} of {} bytes",
                            lent.buffer.bytes().len(),
                            format.size
                        ))
                    } else {
                        Outcome::Frame(Content::Lent(lent.buffer))
                    };
                    (lent.sequence, lent.monotonic, outcome)
                }
                None => {
                    let Self {
                        stream,
                        converter,
                        pool,
                        ..
                    } = self;
                    stream
                        .next(self.frame_timeout, |captured| {
                            let mono = captured.monotonic.unwrap_or_else(monotonic_now);
                            let outcome = if too_soon(mono) {
                                // The camera runs faster than asked: skip before converting.
                                Outcome::Skipped
                            } else if captured.error {
                                Outcome::Broken("the driver flagged the frame as corrupt".into())
                            } else {
                                match read_frame(captured, converter.as_mut(), pool) {
                                    Ok(content) => Outcome::Frame(content),
                                    Err(why) => Outcome::Broken(why),
                                }
                            };
                            (captured.sequence, captured.monotonic, outcome)
                        })
                        .map_err(|e| SourceError::Failed(format!("{}: {e}", self.path.display())))?
                }
            };
            self.count_gap(sequence);
            let content = match outcome {
                Outcome::Skipped => continue,
                Outcome::Frame(content) => content,
                Outcome::Broken(why) => {
                    self.status.add_broken();
                    self.broken_in_a_row += 1;
                    log::debug!("{}: frame dropped: {why}", self.path.display());
                    if self.broken_in_a_row >= BROKEN_LIMIT {
                        self.broken_in_a_row = 0;
                        return Err(SourceError::Failed(format!(
                            "{}: {BROKEN_LIMIT} broken frames in a row (last: {why})",
                            self.path.display()
                        )));
                    }
                    continue;
                }
            };
            self.broken_in_a_row = 0;
            self.last_emitted = Some(monotonic.unwrap_or_else(monotonic_now));
            self.seq += 1;
            let captured = instant_of(monotonic);
            return Ok(match content {
                Content::Raw(data) => Capture::Raw(Frame {
                    width: self.width,
                    height: self.height,
                    data,
                    seq: self.seq,
                    captured,
                }),
                Content::Lent(buffer) => Capture::Camera(CameraFrame {
                    buffer,
                    format: self.lending.unwrap_or_default(),
                    seq: self.seq,
                    captured,
                }),
                Content::Encoded(data) => Capture::Encoded {
                    data,
                    width: self.width,
                    height: self.height,
                    seq: self.seq,
                    captured,
                },
            });
        }
    }

    fn count_gap(&mut self, sequence: u32) {
        if let Some(last) = self.last_sequence {
            let gap = sequence.wrapping_sub(last).wrapping_sub(1);
            // A huge "gap" is a counter reset (stream restarted), not lost frames.
            if gap > 0 && gap < 1_000_000 {
                self.status.add_dropped(u64::from(gap));
            }
        }
        self.last_sequence = Some(sequence);
    }
}

enum Outcome {
    Skipped,
    Frame(Content),
    Broken(String),
}

enum Content {
    Raw(super::FrameBuf),
    Lent(CameraBuffer),
    Encoded(Vec<u8>),
}

fn read_frame(
    captured: &Captured<'_>,
    converter: Option<&mut Converter>,
    pool: &FramePool,
) -> Result<Content, String> {
    match converter {
        Some(converter) => {
            let mut data = pool.get();
            converter
                .convert(captured.planes, &mut data)
                .map_err(|e| e.to_string())?;
            Ok(Content::Raw(data))
        }
        None => {
            let unit = captured.planes.first().copied().unwrap_or_default();
            if unit.is_empty() {
                return Err("empty H.264 buffer".into());
            }
            Ok(Content::Encoded(unit.to_vec()))
        }
    }
}

/// The `Instant` of a driver timestamp on CLOCK_MONOTONIC (the clock `Instant` uses on
/// Linux), by its age now; the time of reading when the driver gives none.
fn instant_of(monotonic: Option<Duration>) -> Instant {
    let now = Instant::now();
    let Some(stamp) = monotonic else {
        return now;
    };
    let age = monotonic_now().saturating_sub(stamp);
    // A stamp from the future or far past is a driver quirk: trust the reading time.
    if age > Duration::from_secs(5) {
        return now;
    }
    now.checked_sub(age).unwrap_or(now)
}

impl FrameSource for V4l2Source {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "v4l2",
            name: format!("{} ({})", self.card, self.path.display()),
            width: self.width,
            height: self.height,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        match self.capture()? {
            Capture::Raw(frame) => Ok(frame),
            Capture::Camera(frame) => frame.to_i420(&self.pool).map_err(SourceError::Failed),
            Capture::Encoded { .. } => Err(SourceError::Failed(
                "this camera delivers H.264; use next_capture".into(),
            )),
        }
    }

    fn next_capture(&mut self) -> Result<Capture, SourceError> {
        self.capture()
    }

    fn controls(&self) -> Option<Arc<dyn CameraControls>> {
        Some(self.controls.clone())
    }

    fn camera_status(&self) -> Option<Arc<CameraStatus>> {
        Some(self.status.clone())
    }

    fn buffer_format(&self) -> Option<PlaneFormat> {
        self.buffer_format
    }

    fn lend_buffers(&mut self, format: PlaneFormat) {
        if self.buffer_format == Some(format) {
            let how = if self.stream.exports_dmabuf() {
                "as dma-bufs (zero copy)"
            } else {
                "mapped (the driver cannot export dma-bufs: one copy)"
            };
            log::info!(
                "{}: {} pictures go to the encoder as they are, {how}",
                self.path.display(),
                device::fourcc_text(format.fourcc)
            );
            self.lending = Some(format);
        }
    }
}

impl Drop for V4l2Source {
    fn drop(&mut self) {
        // Let go of the controls' fd too, so a lost camera's driver can be unloaded and
        // reloaded (a module stays in use while any of its nodes is open).
        self.controls.close();
    }
}

impl std::fmt::Debug for V4l2Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V4l2Source")
            .field("path", &self.path)
            .field("format", &self.negotiated)
            .finish()
    }
}

/// Opens the first capture device that delivers a frame. On failure, every device tried with
/// why it was passed over.
pub(crate) fn open_first_streaming(wanted: &Wanted) -> Result<V4l2Source, Vec<(PathBuf, String)>> {
    let mut passed_over = Vec::new();
    for path in device::capture_device_paths() {
        let status = Arc::new(CameraStatus::new());
        let controls = Arc::new(V4l2Controls::new(&path));
        match V4l2Source::open(&path, wanted, status, controls) {
            Ok(mut source) => match source.probe() {
                Ok(()) => return Ok(source),
                Err(why) => passed_over.push((path, why)),
            },
            Err(why) => passed_over.push((path, why)),
        }
    }
    Err(passed_over)
}
