//! libcamera cameras (Raspberry Pi camera modules; any camera libcamera drives) through a
//! helper process (`helpers`): rtcam starts `rpicam-vid` or `cam`, reads raw frames from its
//! pipe (`source::helper`) and hands them out as I420.
//!
//! Why a helper and not the libcamera library: libcamera is C++ with no stable ABI, Raspberry
//! Pi OS ships its own fork that changes ABI between releases, and rtcam is one static binary
//! cross-built elsewhere. A program the OS built against its own libcamera keeps working
//! across those releases; rtcam only depends on its command line and its frames.
//!
//! Controls (`settings`) are applied by starting the helper anew with them; the stream goes
//! on (a pause, not a disconnect). A helper that fails is the supervisor's business like any
//! camera: "no signal" and a new helper with back-off.

pub(crate) mod helpers;
pub(crate) mod rgb;
pub(crate) mod settings;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use self::helpers::{Helper, Launch, Pixels, launch};
use self::settings::LibcameraControls;
use super::helper::{Decode, HelperProcess};
use super::v4l2::negotiate::Wanted;
use super::{
    CameraControls, CameraStatus, Capture, Frame, FrameBuf, FramePool, FrameSource, SourceError,
    SourceInfo,
};

/// How long a fresh helper may take to deliver its first frame (starting the camera, the ISP
/// and its tuning takes a second or two on a Pi; much longer under emulation).
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(20);
/// The shortest wait for a later frame before the camera counts as silent.
const MIN_FRAME_TIMEOUT: Duration = Duration::from_secs(2);

/// Unique capture-script file names within this process.
static SCRIPTS: AtomicU64 = AtomicU64::new(0);

pub(crate) struct LibcameraSource {
    helper: Helper,
    index: u32,
    /// What the camera is called in logs (`imx708 (libcamera:0)`).
    name: String,
    width: u32,
    height: u32,
    fps: u32,
    process: Option<HelperProcess<FrameBuf>>,
    /// The controls generation the running helper was started with.
    generation: u64,
    script: PathBuf,
    frame_timeout: Duration,
    first_frame: bool,
    seq: u64,
    /// The first frame, read while opening.
    pending: Option<Frame>,
    status: Arc<CameraStatus>,
    controls: Arc<LibcameraControls>,
}

impl LibcameraSource {
    /// Starts the helper for camera `index` at the size and rate closest to `wanted` and
    /// waits for its first frame (a camera that cannot stream fails here, not later).
    pub(crate) fn open(
        helper: &Helper,
        index: u32,
        model: &str,
        wanted: &Wanted,
        status: Arc<CameraStatus>,
        controls: Arc<LibcameraControls>,
    ) -> Result<LibcameraSource, String> {
        // I420 needs even sizes; the Pi's ISP writes rows padded to 64 bytes, so a width that
        // is a multiple of 64 keeps rpicam-vid's frames tightly packed.
        let align = match helper.kind {
            helpers::HelperKind::Rpicam => 64,
            helpers::HelperKind::Cam => 2,
        };
        let width = (wanted.width / align * align).max(align);
        let height = (wanted.height & !1).max(2);
        let fps = wanted.fps.max(1);
        let script = std::env::temp_dir().join(format!(
            "rtcam-libcamera-{}-{}.yaml",
            std::process::id(),
            SCRIPTS.fetch_add(1, Ordering::Relaxed)
        ));
        let mut source = LibcameraSource {
            helper: helper.clone(),
            index,
            name: format!("{model} (libcamera:{index} via {})", helper.name()),
            width,
            height,
            fps,
            process: None,
            generation: controls.generation(),
            script,
            frame_timeout: MIN_FRAME_TIMEOUT.max(Duration::from_secs_f64(4.0 / f64::from(fps))),
            first_frame: true,
            seq: 0,
            pending: None,
            status,
            controls,
        };
        source.start()?;
        status_format(&source);
        source.probe()?;
        Ok(source)
    }

    /// The helper invocation for the current control values.
    fn launch(&self) -> Launch {
        launch(
            &self.helper,
            self.index,
            (self.width, self.height, self.fps),
            &self.controls.snapshot(),
            &self.script,
        )
    }

    fn start(&mut self) -> Result<(), String> {
        // One helper at a time: the camera opens exclusively.
        self.process = None;
        self.generation = self.controls.generation();
        let run = self.launch();
        if let Some(script) = &run.script {
            std::fs::write(&self.script, script)
                .map_err(|e| format!("cannot write {}: {e}", self.script.display()))?;
        }
        log::debug!("libcamera helper: {}", run.argv.join(" "));
        let decode = decoder(run.pixels, self.width, self.height);
        let frame_len = run.pixels.frame_len(self.width, self.height);
        self.process = Some(HelperProcess::spawn(&run.argv, frame_len, decode)?);
        self.first_frame = true;
        Ok(())
    }

    /// Waits for the first frame, kept for the first `next_capture`.
    fn probe(&mut self) -> Result<(), String> {
        let frame = self.read().map_err(|e| e.to_string())?;
        self.pending = Some(frame);
        Ok(())
    }

    fn read(&mut self) -> Result<Frame, SourceError> {
        if self.controls.generation() != self.generation {
            log::info!("{}: restarting the helper with the new settings", self.name);
            self.start().map_err(SourceError::Failed)?;
        }
        let timeout = if self.first_frame {
            FIRST_FRAME_TIMEOUT
        } else {
            self.frame_timeout
        };
        let process = self
            .process
            .as_mut()
            .ok_or_else(|| SourceError::Failed("the helper is not running".into()))?;
        let frame = process.next(timeout).map_err(SourceError::Failed)?;
        self.first_frame = false;
        self.seq += 1;
        Ok(Frame {
            width: self.width,
            height: self.height,
            data: frame.picture,
            seq: self.seq,
            captured: frame.read_at,
        })
    }
}

fn status_format(source: &LibcameraSource) {
    let run = source.launch();
    source.status.set_format(format!(
        "libcamera {} {}x{} @ {} fps via {}",
        run.pixels.name(),
        source.width,
        source.height,
        source.fps,
        source.helper.name()
    ));
}

/// Raw helper frames → pooled I420 pictures.
fn decoder(pixels: Pixels, width: u32, height: u32) -> Decode<FrameBuf> {
    let pool = FramePool::new(width as usize * height as usize * 3 / 2);
    Box::new(move |raw: &[u8]| {
        let mut out = pool.get();
        match pixels {
            Pixels::I420 => {
                if raw.len() != out.len() {
                    return Err(format!(
                        "{} bytes for a {} byte picture",
                        raw.len(),
                        out.len()
                    ));
                }
                out.copy_from_slice(raw);
            }
            Pixels::Rgb(order) => {
                rgb::to_i420(order, raw, width as usize, height as usize, &mut out)?;
            }
        }
        Ok(out)
    })
}

impl FrameSource for LibcameraSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "libcamera",
            name: self.name.clone(),
            width: self.width,
            height: self.height,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        if let Some(frame) = self.pending.take() {
            return Ok(frame);
        }
        self.read()
    }

    fn next_capture(&mut self) -> Result<Capture, SourceError> {
        self.next_frame().map(Capture::Raw)
    }

    fn controls(&self) -> Option<Arc<dyn CameraControls>> {
        Some(self.controls.clone())
    }

    fn camera_status(&self) -> Option<Arc<CameraStatus>> {
        Some(self.status.clone())
    }
}

impl Drop for LibcameraSource {
    fn drop(&mut self) {
        self.process = None;
        let _ = std::fs::remove_file(&self.script);
    }
}

#[cfg(test)]
mod tests;
