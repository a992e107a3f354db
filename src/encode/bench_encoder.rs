//! `rtcam bench-encoder`: what each encoder costs on this board, in one command. Encodes a
//! number of frames (the test pattern, or a camera's) with every backend asked for, one after
//! the other, and prints per backend: milliseconds per frame (frame in → bitstream out), the
//! CPU it took as a percentage of one core at the configured frame rate, and the frame rate it
//! could sustain.
//!
//! For the M2M backend it also drains the encoder at the end (every picture comes out, then
//! the end of stream), checks that each bitstream carried its picture's sequence number and
//! capture time through the device, and with `restart` sets it up again at another size: the
//! VM test (tests/vm/checks-m2m.sh) runs exactly this against the kernel's vicodec.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::backend::{self, EncoderChoice, VideoEncoder};
use super::m2m::{self, CameraRead, M2mEncoder};
use super::{EncoderSettings, h264::EncodeError};
use crate::source::convert::PixelFormat;
use crate::source::pattern::TestPattern;
use crate::source::v4l2::V4l2Source;
use crate::source::v4l2::controls::V4l2Controls;
use crate::source::v4l2::negotiate::Wanted;
use crate::source::{CameraStatus, Capture, FrameSource};

/// What `rtcam bench-encoder` was asked (size, rate and bitrate come from the config).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchEncoderArgs {
    /// The backends to measure; empty: software and every M2M H.264 encoder found.
    pub encoders: Vec<EncoderChoice>,
    /// The M2M backend's coded format (H264; another fourcc only for test devices).
    pub codec: [u8; 4],
    /// A camera to take frames from; None: the test pattern.
    pub source: Option<PathBuf>,
    /// The camera's pixel format (`--format`); None: the cheapest it offers.
    pub format: Option<PixelFormat>,
    /// How an M2M encoder gets a camera's pictures.
    pub camera_input: CameraInput,
    pub frames: u32,
    /// After draining, set the M2M encoder up again at this size and encode a few frames.
    pub restart: Option<(u32, u32)>,
    pub json: bool,
}

impl Default for BenchEncoderArgs {
    fn default() -> Self {
        BenchEncoderArgs {
            encoders: Vec::new(),
            codec: m2m::H264,
            source: None,
            format: None,
            camera_input: CameraInput::AsIs,
            frames: 300,
            restart: None,
            json: false,
        }
    }
}

/// How an M2M encoder gets a camera's pictures (`--camera-input`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraInput {
    /// As the stream does: the camera's own buffers when the encoder takes their format
    /// (as dma-bufs where the drivers allow it), else converted to I420.
    AsIs,
    /// The camera's own buffers, copied (never as dma-bufs).
    Copy,
    /// Always converted to I420 first.
    I420,
}

impl std::str::FromStr for CameraInput {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "as-is" => Ok(CameraInput::AsIs),
            "copy" => Ok(CameraInput::Copy),
            "i420" => Ok(CameraInput::I420),
            _ => Err(format!("`{s}`: must be as-is, copy or i420")),
        }
    }
}

/// One backend's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchEncoderReport {
    pub encoder: String,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub frames: u32,
    /// Access units that came out, and how many of them were keyframes.
    pub units: u32,
    pub keyframes: u32,
    pub bytes: u64,
    /// Units whose sequence number and capture time are those of the frame they encode.
    pub timestamps_kept: u32,
    pub ms_per_frame_mean: f64,
    pub ms_per_frame_p50: f64,
    pub ms_per_frame_max: f64,
    /// Process CPU time spent encoding, as % of one core at `fps`.
    pub cpu_percent: f64,
    /// Frames per second the encoder could take one after the other.
    pub sustainable_fps: f64,
    /// M2M: units that came out of the drain (two frames are queued just before it), and that
    /// the device then reported the end of stream (EPIPE).
    pub drained_units: Option<u32>,
    pub end_of_stream: Option<bool>,
    /// M2M with a restart: units encoded at the new size, and whether the first was a keyframe.
    pub restart_units: Option<u32>,
    pub restart_keyframe_first: Option<bool>,
    /// How the pictures reached the encoder: `I420`, or the camera's buffers as dma-bufs
    /// or copied (M2M with a camera).
    pub input: String,
    /// Camera pictures the device read from the camera's buffers (no copy), and those copied
    /// as they were.
    pub camera_dmabuf: u32,
    pub camera_copied: u32,
    /// Why the backend could not be measured.
    pub error: Option<String>,
}

/// Runs the benchmark and prints one report per backend; fails when any backend failed.
pub fn run(settings: &EncoderSettings, args: &BenchEncoderArgs) -> std::process::ExitCode {
    let encoders = if args.encoders.is_empty() {
        let mut all = vec![EncoderChoice::Software];
        all.extend(
            m2m::discover::h264_encoders()
                .into_iter()
                .map(|f| EncoderChoice::V4l2M2m(Some(f.path))),
        );
        all
    } else {
        args.encoders.clone()
    };
    let mut ok = true;
    for choice in encoders {
        let report = measure(settings, &choice, args);
        ok &= report.error.is_none();
        if args.json {
            match serde_json::to_string(&report) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("rtcam bench-encoder: {e}"),
            }
        } else {
            println!("{}", describe(&report));
        }
    }
    if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

fn describe(r: &BenchEncoderReport) -> String {
    if let Some(error) = &r.error {
        return format!("{}: failed: {error}", r.encoder);
    }
    format!(
        "{}: {}x{} @ {} fps, {} frames: {:.2} ms/frame (median {:.2}, max {:.2}), CPU {:.0} % of \
         one core, sustains {:.0} fps, {} units ({} keyframes, {:.0} kbit/s)",
        r.encoder,
        r.width,
        r.height,
        r.fps,
        r.frames,
        r.ms_per_frame_mean,
        r.ms_per_frame_p50,
        r.ms_per_frame_max,
        r.cpu_percent,
        r.sustainable_fps,
        r.units,
        r.keyframes,
        r.bytes as f64 * 8.0 / 1000.0 / (f64::from(r.frames.max(1)) / f64::from(r.fps.max(1)))
    )
}

/// Frames to encode: the test pattern or a camera.
enum Frames {
    Pattern(TestPattern, Instant),
    Camera(Box<V4l2Source>),
}

impl Frames {
    fn next(&mut self, seq: u64, fps: u32) -> Result<Capture, String> {
        match self {
            Frames::Pattern(pattern, start) => {
                let at = *start + Duration::from_nanos(seq * 1_000_000_000 / u64::from(fps));
                Ok(Capture::Raw(pattern.render(seq, at)))
            }
            Frames::Camera(camera) => camera.next_capture().map_err(|e| e.to_string()),
        }
    }

    /// The picture size: the camera decides it, as in the stream.
    fn size(&self, pattern_size: (u32, u32)) -> (u32, u32) {
        match self {
            Frames::Pattern(..) => pattern_size,
            Frames::Camera(camera) => {
                let info = camera.info();
                (info.width, info.height)
            }
        }
    }
}

fn measure(
    settings: &EncoderSettings,
    choice: &EncoderChoice,
    args: &BenchEncoderArgs,
) -> BenchEncoderReport {
    let mut report = BenchEncoderReport {
        encoder: choice.to_string(),
        fps: settings.fps,
        ..BenchEncoderReport::default()
    };
    if let Err(e) = measure_into(settings, choice, args, &mut report) {
        report.error = Some(e);
    }
    report
}

fn measure_into(
    settings: &EncoderSettings,
    choice: &EncoderChoice,
    args: &BenchEncoderArgs,
    report: &mut BenchEncoderReport,
) -> Result<(), String> {
    let mut frames = match &args.source {
        None => Frames::Pattern(
            TestPattern::new(settings.width, settings.height, settings.fps)
                .map_err(|e| e.to_string())?,
            Instant::now(),
        ),
        Some(path) => {
            let wanted = Wanted {
                width: settings.width,
                height: settings.height,
                fps: settings.fps,
                format: args.format,
            };
            let status = Arc::new(CameraStatus::new());
            let controls = Arc::new(V4l2Controls::new(path));
            Frames::Camera(Box::new(V4l2Source::open(path, &wanted, status, controls)?))
        }
    };
    let (width, height) = frames.size((settings.width, settings.height));
    let settings = EncoderSettings {
        width,
        height,
        encoder: choice.clone(),
        ..settings.clone()
    };
    report.width = settings.width;
    report.height = settings.height;
    // The M2M backend is driven directly (drain, restart); `backend::open` for the rest.
    let mut m2m_encoder = match choice {
        EncoderChoice::V4l2M2m(Some(path)) => {
            let e = M2mEncoder::open(path, &settings, args.codec).map_err(|e| e.to_string())?;
            report.encoder = format!("{choice} ({})", e.card());
            Some(e)
        }
        _ => None,
    };
    // A camera's own buffers go to the encoder as in the stream (`Pipeline::start`).
    if let (Frames::Camera(camera), Some(m2m)) = (&mut frames, m2m_encoder.as_mut())
        && args.camera_input != CameraInput::I420
        && let Some(format) = camera.buffer_format()
    {
        m2m.take_format(&format)
            .map_err(|why| format!("the encoder does not take the camera's buffers: {why}"))?;
        if args.camera_input == CameraInput::Copy {
            m2m.copy_camera_buffers();
        }
        camera.lend_buffers(format);
    }
    let mut other = None;
    let encoder: &mut dyn VideoEncoder = match m2m_encoder.as_mut() {
        Some(m2m) => m2m,
        None => {
            let (e, _, name) = backend::open(&settings).map_err(|e| e.to_string())?;
            report.encoder = name;
            other.insert(e).as_mut()
        }
    };
    let mut times = Vec::with_capacity(args.frames as usize);
    let mut cpu = Duration::ZERO;
    for seq in 0..u64::from(args.frames) {
        let picture = frames.next(seq, settings.fps)?;
        let (wall, cpu_before) = (Instant::now(), process_cpu());
        let (unit, seq, captured) = match &picture {
            Capture::Raw(frame) => (
                encoder.encode(frame, false).map_err(|e| e.to_string())?,
                frame.seq,
                frame.captured,
            ),
            Capture::Camera(frame) => {
                let (unit, read) = encoder
                    .encode_camera(frame, false)
                    .map_err(|e| e.to_string())?;
                match read {
                    CameraRead::Dmabuf => report.camera_dmabuf += 1,
                    CameraRead::Copied => report.camera_copied += 1,
                }
                (unit, frame.seq, frame.captured)
            }
            Capture::Encoded { .. } => return Err("the camera delivers H.264".into()),
        };
        cpu += process_cpu().saturating_sub(cpu_before);
        times.push(wall.elapsed());
        drop(picture);
        report.frames += 1;
        if let Some(unit) = unit {
            report.units += 1;
            report.keyframes += u32::from(is_keyframe(
                args.codec,
                &unit,
                (report.width, report.height),
            )?);
            report.bytes += unit.data.len() as u64;
            if (unit.seq, unit.captured) == (seq, captured) {
                report.timestamps_kept += 1;
            }
        }
    }
    report.input = match m2m_encoder.as_ref() {
        Some(m2m) => m2m.input_description(),
        None => "I420".into(),
    };
    let total: Duration = times.iter().sum();
    times.sort();
    let n = times.len().max(1) as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    report.ms_per_frame_mean = ms(total) / n;
    report.ms_per_frame_p50 = times.get(times.len() / 2).map_or(0.0, |&d| ms(d));
    report.ms_per_frame_max = times.last().map_or(0.0, |&d| ms(d));
    report.cpu_percent = cpu.as_secs_f64() / n * f64::from(settings.fps) * 100.0;
    report.sustainable_fps = if total.is_zero() {
        0.0
    } else {
        n / total.as_secs_f64()
    };
    if let Some(m2m) = m2m_encoder.as_mut() {
        drain_and_restart(m2m, &settings, args, report).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn drain_and_restart(
    m2m: &mut M2mEncoder,
    settings: &EncoderSettings,
    args: &BenchEncoderArgs,
    report: &mut BenchEncoderReport,
) -> Result<(), EncodeError> {
    // Two frames in flight when the drain starts: both must come out before the end.
    let mut pattern = TestPattern::new(settings.width, settings.height, settings.fps)
        .map_err(|e| EncodeError::InvalidSettings(e.to_string()))?;
    let next_seq = u64::from(args.frames);
    for seq in next_seq..next_seq + 2 {
        m2m.submit(&pattern.render(seq, Instant::now()), false)?;
    }
    let (drained, ended) = m2m.drain()?;
    if drained.iter().map(|u| u.seq).ne(next_seq..next_seq + 2) {
        return Err(EncodeError::Device(format!(
            "the drain gave frames {:?}, not the two queued",
            drained.iter().map(|u| u.seq).collect::<Vec<_>>()
        )));
    }
    report.drained_units = Some(drained.len() as u32);
    report.end_of_stream = Some(ended);
    let Some((width, height)) = args.restart else {
        return Ok(());
    };
    let resized = EncoderSettings {
        width,
        height,
        ..settings.clone()
    };
    m2m.restart(&resized)?;
    let mut pattern = TestPattern::new(width, height, settings.fps)
        .map_err(|e| EncodeError::InvalidSettings(e.to_string()))?;
    let (mut units, mut first_key) = (0, None);
    for seq in 0..30 {
        if let Some(unit) = m2m.encode(&pattern.render(seq, Instant::now()), false)? {
            let key =
                is_keyframe(args.codec, &unit, (width, height)).map_err(EncodeError::Device)?;
            first_key.get_or_insert(key);
            units += 1;
        }
    }
    report.restart_units = Some(units);
    report.restart_keyframe_first = first_key;
    Ok(())
}

/// Whether `unit` is a keyframe; for FWHT also checks the size the device says it encoded.
///
/// FWHT is vicodec's codec (the kernel's test encoder, for the VM test): its encoder sets no
/// KEYFRAME flag on its buffers; the frame header says instead (big-endian width at byte 12,
/// height at 16, flags at 20, `V4L2_FWHT_FL_I_FRAME` = bit 10).
fn is_keyframe(codec: [u8; 4], unit: &super::AccessUnit, size: (u32, u32)) -> Result<bool, String> {
    if &codec != b"FWHT" {
        return Ok(unit.keyframe);
    }
    let word = |at: usize| {
        unit.data
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
    };
    let (Some(width), Some(height), Some(flags)) = (word(12), word(16), word(20)) else {
        return Err(format!(
            "an FWHT frame of {} bytes has no header",
            unit.data.len()
        ));
    };
    if (width, height) != size {
        return Err(format!(
            "asked for {}x{}, the device encoded {width}x{height}",
            size.0, size.1
        ));
    }
    Ok(flags & (1 << 10) != 0)
}

/// CPU time of the whole process (every encoder thread), on CLOCK_PROCESS_CPUTIME_ID.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
