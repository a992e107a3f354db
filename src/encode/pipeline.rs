//! The capture and encoder threads.
//!
//! ```text
//! source ──next_frame──▶ [rtcam-capture] ──put──▶ Mailbox ──take──▶ [rtcam-encode] ──try_send──▶ channel
//! ```
//!
//! Nothing queues: the mailbox holds one raw frame (a newer one replaces it), and an encoded frame
//! that does not fit in the channel is dropped. Dropping an encoded P-frame breaks the picture of
//! every viewer until the next IDR, so after such a drop the next frame is forced to be an IDR.
//!
//! Stopping: closing the mailbox ends both threads. The capture thread notices after its current
//! `next_frame` returns (at most one frame interval); the encoder wakes at once. Either thread
//! ending on its own (source closed, output channel closed) closes the mailbox too, so the other
//! follows, and the encoder drops the channel's sender, which tells the receiver.

use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use log::{info, warn};
use smol::channel::{Sender, TrySendError};

use super::backend;
use super::encodings::{RawPicture, Requests, Slot};
use super::h264::EncodeError;
use super::mailbox::Mailbox;
use super::passthrough::Passthrough;
use super::snapshot::Picture;
use super::stats::Counters;
use super::{AccessUnit, EncoderSettings, Encoding, PipelineStats};
use crate::source::{
    CameraControls, CameraStatus, Capture, FramePool, FrameSource, SourceError, SourceInfo,
};

/// Pause before asking a failing source again.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub(crate) enum PipelineError {
    Encoder(EncodeError),
    /// A thread could not be started.
    Spawn(std::io::Error),
}

impl std::fmt::Display for PipelineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PipelineError::Encoder(err) => write!(f, "cannot start the encoder: {err}"),
            PipelineError::Spawn(err) => write!(f, "cannot start a pipeline thread: {err}"),
        }
    }
}

impl std::error::Error for PipelineError {}

impl From<EncodeError> for PipelineError {
    fn from(err: EncodeError) -> Self {
        PipelineError::Encoder(err)
    }
}

/// State the threads and the handle share.
struct Shared {
    mailbox: Mailbox<Capture>,
    /// Capture and the main encoding.
    counters: Counters,
    /// The low encoding.
    low_counters: Counters,
    /// Per encoding, by `Encoding::index`.
    requests: [Requests; 2],
    /// Snapshot requests, served a copy of the next frame the encoder takes.
    snapshot_waiters: Mutex<Vec<Sender<Picture>>>,
}

pub(crate) struct Pipeline {
    shared: Arc<Shared>,
    low_size: Option<(u32, u32)>,
    source_info: SourceInfo,
    controls: Option<Arc<dyn CameraControls>>,
    camera: Option<Arc<CameraStatus>>,
    settings: EncoderSettings,
    /// What encodes, e.g. `software (OpenH264)` (see `backend::open`).
    encoder_name: String,
    threads: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the threads. The encoder takes the picture size and frame rate from the source
    /// (frames of any other size could not be encoded); the rest of `settings` is used as given.
    pub(crate) fn start(
        source: Box<dyn FrameSource>,
        settings: EncoderSettings,
        out: Sender<AccessUnit>,
    ) -> Result<Pipeline, PipelineError> {
        let source_info = source.info();
        let settings = EncoderSettings {
            width: source_info.width,
            height: source_info.height,
            fps: source_info.fps,
            ..settings
        };
        let opened = backend::open(&settings)?;
        Pipeline::start_with(source, settings, opened, out)
    }

    /// `start` with the encoder already open (`backend::open`'s answer), for `settings` at the
    /// source's size and rate.
    fn start_with(
        mut source: Box<dyn FrameSource>,
        settings: EncoderSettings,
        (mut encoder, resolved, mut encoder_name): (
            Box<dyn backend::VideoEncoder>,
            super::EncoderChoice,
            String,
        ),
        out: Sender<AccessUnit>,
    ) -> Result<Pipeline, PipelineError> {
        let source_info = source.info();
        // The board's encoder may take the camera's own buffers: no conversion on the CPU, and
        // no copy where it can read them as dma-bufs.
        let taken = source
            .buffer_format()
            .filter(|format| match encoder.take_format(format) {
                Ok(()) => true,
                Err(why) => {
                    if resolved != super::EncoderChoice::Software {
                        info!("camera pictures are converted to I420 for the encoder: {why}");
                    }
                    false
                }
            });
        if let Some(format) = taken {
            source.lend_buffers(format);
            encoder_name = format!(
                "{encoder_name}, camera {} as it is",
                crate::source::v4l2::device::fourcc_text(format.fourcc)
            );
        }
        let conversions =
            FramePool::new(settings.width as usize * settings.height as usize * 3 / 2);
        // The low encoding uses the same kind of encoder (a second M2M context of the device).
        let settings = EncoderSettings {
            // A hardware encoder makes no temporal layers: every unit is layer 0, and the hub
            // must not count on dropping layers for slow viewers.
            temporal_layers: if resolved == super::EncoderChoice::Software {
                settings.temporal_layers
            } else {
                1
            },
            encoder: resolved,
            ..settings
        };
        let low = Slot::low(&settings);
        let shared = Arc::new(Shared {
            mailbox: Mailbox::new(),
            counters: Counters::new(),
            low_counters: Counters::new(),
            requests: [Requests::new(true), Requests::new(false)],
            snapshot_waiters: Mutex::new(Vec::new()),
        });
        let mut pipeline = Pipeline {
            shared: Arc::clone(&shared),
            controls: source.controls(),
            camera: source.camera_status(),
            source_info,
            low_size: low
                .as_ref()
                .map(|l| (l.settings().width, l.settings().height)),
            settings,
            encoder_name,
            threads: Vec::with_capacity(2),
        };
        let encode_shared = Arc::clone(&shared);
        let passthrough = Passthrough::new(pipeline.controls.clone());
        let encode_thread = thread::Builder::new()
            .name("rtcam-encode".into())
            .spawn(move || {
                encode_loop(
                    Slot::main(encoder, taken),
                    low,
                    passthrough,
                    conversions,
                    &encode_shared,
                    out,
                )
            })
            .map_err(PipelineError::Spawn)?;
        pipeline.threads.push(encode_thread);
        // On failure `pipeline` is dropped here, which stops the encoder thread again.
        let capture_thread = thread::Builder::new()
            .name("rtcam-capture".into())
            .spawn(move || capture_loop(source, &shared))
            .map_err(PipelineError::Spawn)?;
        pipeline.threads.push(capture_thread);
        info!(
            "pipeline started: {} {}x{} @ {} fps, {} kbit/s, encoder {}",
            pipeline.source_info.name,
            pipeline.settings.width,
            pipeline.settings.height,
            pipeline.settings.fps,
            pipeline.settings.bitrate_kbps,
            pipeline.encoder_name
        );
        Ok(pipeline)
    }

    /// Makes the encoding's next frame an IDR. Cheap; any thread.
    pub(crate) fn request_keyframe(&self, encoding: Encoding) {
        self.shared.requests[encoding.index()].keyframe();
    }

    /// Changes the encoding's target bitrate from its next frame on. Any thread; a rejected
    /// value is logged by the encoder thread and otherwise ignored.
    pub(crate) fn set_bitrate(&mut self, encoding: Encoding, kbps: u32) {
        self.shared.requests[encoding.index()].bitrate(kbps);
        if encoding == Encoding::Main {
            self.settings.bitrate_kbps = kbps;
        }
    }

    /// Runs or pauses an encoding. The low encoding exists only when half the picture is not
    /// too small (see `low_size`).
    pub(crate) fn set_active(&self, encoding: Encoding, active: bool) {
        self.shared.requests[encoding.index()].activate(active);
    }

    /// True when the source hands over its own H.264 (nothing is encoded here).
    pub(crate) fn passthrough(&self) -> bool {
        self.camera
            .as_ref()
            .is_some_and(|c| c.idr_on_request().is_some())
    }

    /// The low encoding's picture size, None when the stream has none.
    pub(crate) fn low_size(&self) -> Option<(u32, u32)> {
        self.low_size
    }

    pub(crate) fn stats(&self) -> PipelineStats {
        let low = self.shared.low_counters.snapshot();
        let main = self.shared.counters.snapshot();
        PipelineStats {
            low_frames_encoded: low.frames_encoded,
            low_encode_us_p50: low.encode_us_p50,
            // With the main encoding paused (every viewer on a slow link) the low one shows
            // that the encoder still works.
            last_encode: main.last_encode.max(low.last_encode),
            ..main
        }
    }

    pub(crate) fn source_info(&self) -> &SourceInfo {
        &self.source_info
    }

    /// Sends a copy of the next frame to `reply` (for a JPEG snapshot).
    pub(crate) fn request_snapshot(&self, reply: Sender<Picture>) {
        if let Ok(mut waiters) = self.shared.snapshot_waiters.lock() {
            waiters.push(reply);
        }
    }

    /// The source's camera controls, if it has any (see `FrameSource::controls`).
    pub(crate) fn controls(&self) -> Option<Arc<dyn CameraControls>> {
        self.controls.clone()
    }

    /// Live facts about the source's camera (format, state, dropped frames), if it has one.
    pub(crate) fn camera_status(&self) -> Option<Arc<CameraStatus>> {
        self.camera.clone()
    }

    /// What encodes (backend and device), for `status`.
    pub(crate) fn encoder_name(&self) -> &str {
        &self.encoder_name
    }

    /// The settings the encoder started with (size and frame rate from the source).
    pub(crate) fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Stops both threads and waits for them. Also done on drop.
    pub(crate) fn stop(&mut self) {
        self.shared.mailbox.close();
        for thread in self.threads.drain(..) {
            let name = thread.thread().name().unwrap_or("pipeline").to_owned();
            if thread.join().is_err() {
                warn!("{name} thread panicked");
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.stop();
    }
}

fn capture_loop(mut source: Box<dyn FrameSource>, shared: &Shared) {
    // The failure being retried, if any: logged when it starts and when it ends, not per retry.
    let mut failing: Option<String> = None;
    while !shared.mailbox.is_closed() {
        match source.next_capture() {
            Ok(frame) => {
                if let Some(why) = failing.take() {
                    info!("source recovered (after: {why})");
                }
                if source.take_keyframe_request() {
                    for requests in &shared.requests {
                        requests.keyframe();
                    }
                }
                shared.counters.captured(frame.captured());
                if shared.mailbox.put(frame).is_some() && !shared.mailbox.is_closed() {
                    shared.counters.dropped_in_mailbox();
                }
            }
            Err(SourceError::Failed(why)) => {
                if failing.is_none() {
                    warn!("source failed: {why}; retrying");
                }
                failing = Some(why);
                thread::sleep(RETRY_PAUSE);
            }
            Err(SourceError::Closed) => {
                info!("source closed; pipeline ends");
                break;
            }
        }
    }
    shared.mailbox.close();
}

fn encode_loop(
    mut main: Slot,
    mut low: Option<Slot>,
    mut passthrough: Passthrough,
    conversions: FramePool,
    shared: &Shared,
    out: Sender<AccessUnit>,
) {
    // The last capture was a camera access unit (passthrough), not a raw frame we encode:
    // switching between the two changes the SPS, so each switch starts with an IDR.
    let mut last_was_passthrough = false;
    while let Some(capture) = shared.mailbox.take() {
        let handed = Instant::now();
        let units = match capture {
            Capture::Raw(frame) => {
                let after_passthrough = std::mem::take(&mut last_was_passthrough);
                let picture = RawPicture::i420(frame);
                encode_raw(&picture, &mut main, low.as_mut(), shared, after_passthrough)
            }
            Capture::Camera(frame) => {
                let after_passthrough = std::mem::take(&mut last_was_passthrough);
                let picture = RawPicture::camera(frame, conversions.clone());
                encode_raw(&picture, &mut main, low.as_mut(), shared, after_passthrough)
            }
            Capture::Encoded {
                data,
                width,
                height,
                seq,
                captured,
            } => {
                let wanted_idr = shared.requests[Encoding::Main.index()].take_keyframe();
                if !last_was_passthrough || main.repair {
                    passthrough.resync(handed);
                } else if wanted_idr {
                    passthrough.request_idr(handed);
                }
                last_was_passthrough = true;
                let Some((data, keyframe)) = passthrough.process(data) else {
                    // Held back until the camera's next IDR.
                    shared.counters.skipped();
                    continue;
                };
                let encoded = Instant::now();
                shared.counters.encoded(encoded, encoded - handed, keyframe);
                let unit = AccessUnit {
                    data: Arc::from(data),
                    keyframe,
                    encoding: Encoding::Main,
                    layer: 0,
                    width,
                    height,
                    seq,
                    captured,
                    handed,
                };
                [Some(unit), None]
            }
        };
        for unit in units.into_iter().flatten() {
            let unit = AccessUnit { handed, ..unit };
            let (keyframe, encoding) = (unit.keyframe, unit.encoding);
            let slot = match encoding {
                Encoding::Main => &mut main,
                Encoding::Low => match low.as_mut() {
                    Some(slot) => slot,
                    None => continue,
                },
            };
            match out.try_send(unit) {
                Ok(()) => slot.repair &= !keyframe,
                Err(TrySendError::Full(_)) => {
                    shared.counters.dropped_channel_full();
                    slot.repair = true;
                }
                Err(TrySendError::Closed(_)) => {
                    info!("nobody takes encoded frames any more; pipeline ends");
                    shared.mailbox.close();
                    return;
                }
            }
        }
    }
    shared.mailbox.close();
}

/// One raw picture through the encodings (main, then low), serving snapshots first.
fn encode_raw(
    picture: &RawPicture,
    main: &mut Slot,
    low: Option<&mut Slot>,
    shared: &Shared,
    after_passthrough: bool,
) -> [Option<AccessUnit>; 2] {
    serve_snapshots(picture, shared);
    let main_requests = &shared.requests[Encoding::Main.index()];
    let main_unit = main.encode(picture, main_requests, &shared.counters, after_passthrough);
    let low_unit = low.and_then(|slot| {
        let requests = &shared.requests[Encoding::Low.index()];
        slot.encode(picture, requests, &shared.low_counters, false)
    });
    [main_unit, low_unit]
}

fn serve_snapshots(picture: &RawPicture, shared: &Shared) {
    let Ok(mut waiters) = shared.snapshot_waiters.lock() else {
        return;
    };
    if waiters.is_empty() {
        return;
    }
    let frame = match picture.frame() {
        Ok(frame) => frame,
        Err(why) => {
            warn!("no snapshot of this frame: {why}");
            return;
        }
    };
    let picture = Picture::of(frame);
    for waiter in waiters.drain(..) {
        let _ = waiter.try_send(picture.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::m2m::fake::{Behaviour, Fake};
    use crate::encode::m2m::{self, M2mEncoder};
    use crate::source::lent::CameraBuffer;
    use crate::source::lent::testing::MemoryLender;
    use crate::source::pattern::TestPattern;
    use crate::source::{CameraFrame, Frame, PlaneFormat};
    use smol::channel::{self, Receiver};
    use std::collections::VecDeque;

    /// Generous bound so a broken pipeline fails the test instead of hanging it.
    const PATIENCE: Duration = Duration::from_secs(30);

    fn settings() -> EncoderSettings {
        EncoderSettings {
            width: 0,
            height: 0,
            fps: 0,
            bitrate_kbps: 500,
            // Only first, forced and repair IDRs in these tests.
            idr_interval: Duration::from_secs(3600),
            threads: 1,
            temporal_layers: 3,
            encoder: crate::encode::EncoderChoice::Software,
        }
    }

    fn pattern(fps: u32) -> Box<dyn FrameSource> {
        Box::new(TestPattern::new(160, 120, fps).expect("valid pattern"))
    }

    fn recv(rx: &Receiver<AccessUnit>) -> Option<AccessUnit> {
        smol::block_on(smol::future::or(async { rx.recv().await.ok() }, async {
            smol::Timer::after(PATIENCE).await;
            panic!("no encoded frame within {PATIENCE:?}");
        }))
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn the_low_encoding_runs_at_half_the_size_while_asked_for() {
        let (tx, rx) = channel::bounded(16);
        let source = Box::new(TestPattern::new(320, 240, 60).expect("valid pattern"));
        let mut pipeline = Pipeline::start(source, settings(), tx).expect("starts");
        assert_eq!(pipeline.low_size(), Some((160, 120)));
        for _ in 0..5 {
            assert_eq!(recv(&rx).expect("a frame").encoding, Encoding::Main);
        }
        pipeline.set_bitrate(Encoding::Low, 150);
        pipeline.set_active(Encoding::Low, true);
        let first_low = std::iter::from_fn(|| recv(&rx))
            .find(|u| u.encoding == Encoding::Low)
            .expect("low units");
        assert!(first_low.keyframe, "the low encoding starts with an IDR");
        assert_eq!((first_low.width, first_low.height), (160, 120));
        let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
        let picture = decoder.decode(&first_low.data).expect("decodes");
        assert_eq!(
            picture.map(|p| openh264::formats::YUVSource::dimensions(&p)),
            Some((160, 120))
        );

        // Main paused: only low units, until main runs again (with an IDR).
        pipeline.set_active(Encoding::Main, false);
        let mut only_low = 0;
        for unit in std::iter::from_fn(|| recv(&rx)).take(40) {
            if unit.encoding == Encoding::Low {
                only_low += 1;
            } else {
                only_low = 0;
            }
        }
        assert!(only_low >= 10, "main kept encoding while paused");
        pipeline.set_active(Encoding::Main, true);
        let back = std::iter::from_fn(|| recv(&rx))
            .find(|u| u.encoding == Encoding::Main)
            .expect("main units again");
        assert!(back.keyframe, "main resumes with an IDR");
        assert!(pipeline.stats().low_frames_encoded > 0);
    }

    #[test]
    fn frames_arrive_in_order_starting_with_a_keyframe() {
        let (tx, rx) = channel::bounded(8);
        let pipeline = Pipeline::start(pattern(60), settings(), tx).expect("starts");
        assert_eq!(pipeline.source_info().kind, "test");
        assert_eq!(
            (pipeline.settings().width, pipeline.settings().height),
            (160, 120)
        );
        let received: Vec<AccessUnit> = (0..10).map(|_| recv(&rx).expect("a frame")).collect();
        assert!(received[0].keyframe);
        assert!(crate::encode::nal::has_sps_pps(&received[0].data));
        for pair in received.windows(2) {
            assert!(
                pair[1].seq > pair[0].seq,
                "seq {} after {}",
                pair[1].seq,
                pair[0].seq
            );
        }
        for frame in &received {
            assert_eq!((frame.width, frame.height), (160, 120));
            assert!(frame.captured <= frame.handed);
        }
        let stats = pipeline.stats();
        assert!(stats.frames_encoded >= 10 && stats.frames_captured >= 10);
        assert!(stats.keyframes >= 1 && stats.encode_us_p50.is_some());
        assert!(stats.last_capture.is_some() && stats.last_encode.is_some());
    }

    #[test]
    fn requested_keyframe_arrives_soon() {
        let (tx, rx) = channel::bounded(8);
        let pipeline = Pipeline::start(pattern(60), settings(), tx).expect("starts");
        assert!(recv(&rx).expect("first frame").keyframe);
        // Nothing asks for IDRs yet, so none come.
        for _ in 0..5 {
            assert!(!recv(&rx).expect("a frame").keyframe);
        }
        pipeline.request_keyframe(Encoding::Main);
        // Frames already in the channel or the mailbox come first.
        let soon = (0..12).any(|_| recv(&rx).expect("a frame").keyframe);
        assert!(soon, "no keyframe within 12 frames of the request");
    }

    #[test]
    fn a_slow_consumer_makes_frames_drop_not_queue_and_then_repairs_with_an_idr() {
        let (tx, rx) = channel::bounded(2);
        let pipeline = Pipeline::start(pattern(120), settings(), tx).expect("starts");
        wait_for("frames dropped on the full channel", || {
            pipeline.stats().dropped_channel_full >= 5
        });
        assert_eq!(rx.len(), 2, "the channel holds what fits, nothing more");
        let stats = pipeline.stats();
        assert!(stats.frames_dropped >= stats.dropped_channel_full);
        // The two queued frames predate the drops; the next one sent must let viewers recover.
        recv(&rx).expect("queued frame");
        recv(&rx).expect("queued frame");
        assert!(recv(&rx).expect("frame after the drops").keyframe);
    }

    #[test]
    fn stop_ends_both_threads_and_closes_the_channel() {
        let (tx, rx) = channel::bounded(8);
        let mut pipeline = Pipeline::start(pattern(30), settings(), tx).expect("starts");
        recv(&rx).expect("a frame");
        pipeline.stop();
        assert!(pipeline.threads.is_empty());
        // The encoder thread dropped the sender: after what is queued, the channel ends.
        while recv(&rx).is_some() {}
        let captured = pipeline.stats().frames_captured;
        thread::sleep(Duration::from_millis(50));
        assert_eq!(
            pipeline.stats().frames_captured,
            captured,
            "capture went on after stop"
        );
    }

    /// A source that plays a script, then reports itself closed.
    struct Scripted {
        steps: VecDeque<Result<(), &'static str>>,
        pattern: TestPattern,
        seq: u64,
    }

    impl FrameSource for Scripted {
        fn info(&self) -> SourceInfo {
            self.pattern.info()
        }

        fn next_frame(&mut self) -> Result<Frame, SourceError> {
            match self.steps.pop_front() {
                Some(Ok(())) => {
                    self.seq += 1;
                    // Paced like a camera, so the mailbox does not replace frames.
                    thread::sleep(Duration::from_millis(20));
                    Ok(self.pattern.render(self.seq, Instant::now()))
                }
                Some(Err(why)) => Err(SourceError::Failed(why.into())),
                None => Err(SourceError::Closed),
            }
        }
    }

    #[test]
    fn source_failures_are_retried_and_closing_the_source_ends_the_pipeline() {
        let source = Scripted {
            steps: VecDeque::from([Err("flaky"), Err("flaky"), Ok(()), Err("again"), Ok(())]),
            pattern: TestPattern::new(160, 120, 30).expect("valid pattern"),
            seq: 0,
        };
        let (tx, rx) = channel::bounded(8);
        let pipeline = Pipeline::start(Box::new(source), settings(), tx).expect("starts");
        let mut seqs = Vec::new();
        while let Some(frame) = recv(&rx) {
            seqs.push(frame.seq);
        }
        // The channel closed by itself once the source was done.
        assert!(
            !seqs.is_empty() && seqs.iter().all(|&seq| seq == 1 || seq == 2),
            "{seqs:?}"
        );
        assert_eq!(pipeline.stats().frames_captured, 2);
    }

    #[test]
    fn a_camera_failure_keeps_frames_flowing_and_recovery_starts_with_an_idr() {
        use crate::source::failing::{FailingSource, FaultSwitch};
        use crate::source::supervised::{Opener, Supervised};
        let switch = FaultSwitch::new();
        let camera = |s: &FaultSwitch| -> Box<dyn FrameSource> {
            Box::new(FailingSource::new(pattern(30), s.clone()))
        };
        let reopen = switch.clone();
        let opener: Opener = Box::new(move || {
            if reopen.is_failing() {
                Err("injected: unplugged".into())
            } else {
                Ok(Box::new(FailingSource::new(pattern(30), reopen.clone()))
                    as Box<dyn FrameSource>)
            }
        });
        let source = Supervised::new(camera(&switch), "test camera", opener);
        let (tx, rx) = channel::bounded(8);
        let pipeline = Pipeline::start(Box::new(source), settings(), tx).expect("starts");
        assert!(recv(&rx).expect("first frame").keyframe);
        for _ in 0..3 {
            assert!(!recv(&rx).expect("a frame").keyframe);
        }
        switch.fail();
        // Placeholder frames keep coming (encoded as P-frames: same stream, new picture).
        for _ in 0..10 {
            assert!(
                !recv(&rx)
                    .expect("a frame while the camera is gone")
                    .keyframe
            );
        }
        let status = pipeline
            .camera_status()
            .expect("a supervised source reports");
        assert_eq!(status.state(), crate::source::CameraState::Retrying);
        switch.recover();
        let idr = (0..40).any(|_| recv(&rx).expect("a frame").keyframe);
        assert!(idr, "no IDR after the camera came back");
        assert_eq!(status.state(), crate::source::CameraState::Streaming);
    }

    #[test]
    fn a_closed_output_channel_ends_the_pipeline() {
        let (tx, rx) = channel::bounded(8);
        let pipeline = Pipeline::start(pattern(60), settings(), tx).expect("starts");
        drop(rx);
        wait_for("the mailbox to close", || {
            pipeline.shared.mailbox.is_closed()
        });
    }

    /// A 128x128 YUYV camera: lends its buffers (memfds) once asked to, else hands out I420.
    struct LendingCamera {
        lender: Arc<MemoryLender>,
        asked: Arc<Mutex<Option<PlaneFormat>>>,
        lent: Arc<std::sync::atomic::AtomicU32>,
        pattern: TestPattern,
        seq: u64,
    }

    const BUFFERS: u32 = 4;

    fn yuyv_format() -> PlaneFormat {
        PlaneFormat::of_camera(*b"YUYV", 128, 128, 256).expect("yuyv")
    }

    impl LendingCamera {
        fn new() -> LendingCamera {
            let pictures = (0..BUFFERS as u8)
                .map(|n| (0..256 * 128).map(|i| (i % 239) as u8 ^ n).collect())
                .collect();
            LendingCamera {
                lender: MemoryLender::new(pictures, true),
                asked: Arc::default(),
                lent: Arc::default(),
                pattern: TestPattern::new(128, 128, 30).expect("pattern"),
                seq: 0,
            }
        }
    }

    impl FrameSource for LendingCamera {
        fn info(&self) -> SourceInfo {
            self.pattern.info()
        }

        fn next_frame(&mut self) -> Result<Frame, SourceError> {
            self.seq += 1;
            Ok(self.pattern.render(self.seq, Instant::now()))
        }

        fn next_capture(&mut self) -> Result<Capture, SourceError> {
            thread::sleep(Duration::from_millis(10));
            let Some(format) = *self.asked.lock().expect("asked") else {
                return self.next_frame().map(Capture::Raw);
            };
            self.seq += 1;
            let index = (self.seq % u64::from(BUFFERS)) as u32;
            self.lent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Capture::Camera(CameraFrame {
                buffer: CameraBuffer::new(self.lender.clone(), index, 0, format.size as usize),
                format,
                seq: self.seq,
                captured: Instant::now(),
            }))
        }

        fn buffer_format(&self) -> Option<PlaneFormat> {
            Some(yuyv_format())
        }

        fn lend_buffers(&mut self, format: PlaneFormat) {
            *self.asked.lock().expect("asked") = Some(format);
        }
    }

    fn sized(encoder: crate::encode::EncoderChoice) -> EncoderSettings {
        EncoderSettings {
            width: 128,
            height: 128,
            fps: 30,
            encoder,
            ..settings()
        }
    }

    #[test]
    fn a_board_encoder_that_takes_the_cameras_format_gets_its_buffers_and_gives_them_back() {
        let camera = LendingCamera::new();
        let (asked, lent, lender) = (
            camera.asked.clone(),
            camera.lent.clone(),
            camera.lender.clone(),
        );
        let (fake, _state) = Fake::new(Behaviour {
            output_formats: vec![*b"YU12", *b"YUYV"],
            ..Behaviour::default()
        });
        let choice = crate::encode::EncoderChoice::V4l2M2m(None);
        let encoder = M2mEncoder::new(fake, &sized(choice.clone()), m2m::H264).expect("fake");
        let opened: (Box<dyn backend::VideoEncoder>, _, _) = (
            Box::new(encoder),
            choice.clone(),
            "v4l2m2m (fake)".to_owned(),
        );
        let (tx, rx) = channel::bounded(64);
        let mut pipeline =
            Pipeline::start_with(Box::new(camera), sized(choice), opened, tx).expect("starts");
        assert_eq!(*asked.lock().expect("asked"), Some(yuyv_format()));
        assert_eq!(
            pipeline.encoder_name(),
            "v4l2m2m (fake), camera YUYV as it is"
        );
        let first = recv(&rx).expect("a unit");
        assert!(first.keyframe, "starts with an IDR");
        let mut last = first.seq;
        for _ in 0..10 {
            let unit = recv(&rx).expect("a unit");
            assert!(unit.seq > last && (unit.width, unit.height) == (128, 128));
            last = unit.seq;
        }
        let stats = pipeline.stats();
        assert!(stats.camera_dmabuf >= 11, "{stats:?}");
        assert_eq!(stats.camera_copied, 0);
        pipeline.stop();
        let lent = lent.load(std::sync::atomic::Ordering::SeqCst) as usize;
        assert_eq!(
            lender.given_back().len(),
            lent,
            "every lent buffer went back"
        );
    }

    #[test]
    fn a_software_encoder_never_asks_the_camera_for_its_buffers() {
        let camera = LendingCamera::new();
        let asked = camera.asked.clone();
        let (tx, rx) = channel::bounded(64);
        let mut pipeline = Pipeline::start(Box::new(camera), settings(), tx).expect("starts");
        assert!(recv(&rx).expect("a unit").keyframe);
        assert_eq!(*asked.lock().expect("asked"), None);
        assert_eq!(pipeline.encoder_name(), "software (OpenH264)");
        pipeline.stop();
    }
}
