//! The encoder thread's encoders: the main encoding at the configured size, and the low one at
//! half the width and height, which runs only while some viewer's link is too slow for the
//! main one.
//!
//! Both encode the same captured picture, one after the other on the encoder thread: main
//! first (its viewers see no extra delay), then a 2:1 downscale and the low encode, which costs
//! about a quarter of the main one. An encoding nobody watches is paused (the low one's encoder
//! is dropped, to give its memory back on small boards), and starts again with an IDR.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use log::{info, warn};

use super::backend::{self, VideoEncoder};
use super::h264::EncodeError;
use super::limits::Size;
use super::stats::Counters;
use super::{AccessUnit, EncoderChoice, EncoderSettings, Encoding};
use std::cell::OnceCell;

use crate::source::{CameraFrame, Frame, FramePool, PlaneFormat};

/// The low encoding's periodic IDRs are at least this far apart.
const LOW_IDR_INTERVAL: Duration = Duration::from_secs(10);

/// Requests to one encoding from any thread, taken by the encoder thread at the next frame.
#[derive(Debug)]
pub(super) struct Requests {
    keyframe: AtomicBool,
    /// A new bitrate in kbit/s; 0 when there is none.
    bitrate: AtomicU32,
    active: AtomicBool,
}

impl Requests {
    pub(super) fn new(active: bool) -> Requests {
        Requests {
            keyframe: AtomicBool::new(false),
            bitrate: AtomicU32::new(0),
            active: AtomicBool::new(active),
        }
    }

    pub(super) fn keyframe(&self) {
        self.keyframe.store(true, Ordering::Release);
    }

    pub(super) fn bitrate(&self, kbps: u32) {
        self.bitrate.store(kbps.max(1), Ordering::Release);
    }

    pub(super) fn activate(&self, active: bool) {
        self.active.store(active, Ordering::Release);
    }

    /// True once per keyframe request.
    pub(super) fn take_keyframe(&self) -> bool {
        self.keyframe.swap(false, Ordering::AcqRel)
    }

    pub(super) fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }
}

/// One encoding as the encoder thread runs it.
pub(super) struct Slot {
    encoding: Encoding,
    settings: EncoderSettings,
    /// None while paused (and, for the low encoding, before it first ran).
    encoder: Option<Box<dyn VideoEncoder>>,
    /// An access unit of this encoding was dropped on a full channel: its viewers need an IDR.
    pub(super) repair: bool,
    failing: bool,
    /// The low encoding's pictures, downscaled.
    pool: Option<FramePool>,
    /// Inactive at the last frame: the next one it encodes must be an IDR.
    paused: bool,
    /// The camera buffer format the encoder took as it is (`VideoEncoder::take_format`), and
    /// the one it refused (not asked again).
    taken: Option<PlaneFormat>,
    refused: Option<PlaneFormat>,
}

/// One captured picture as the encodings get it: I420, or a camera's own buffer, converted to
/// I420 at most once and only if something needs it (the low encoding, an encoder that takes
/// I420 only, a snapshot).
pub(super) struct RawPicture {
    /// The camera's picture, and buffers for its conversion.
    camera: Option<(CameraFrame, FramePool)>,
    i420: OnceCell<Result<Frame, String>>,
}

impl RawPicture {
    pub(super) fn i420(frame: Frame) -> RawPicture {
        RawPicture {
            camera: None,
            i420: OnceCell::from(Ok(frame)),
        }
    }

    pub(super) fn camera(frame: CameraFrame, pool: FramePool) -> RawPicture {
        RawPicture {
            camera: Some((frame, pool)),
            i420: OnceCell::new(),
        }
    }

    /// The picture as I420, converted on first use.
    pub(super) fn frame(&self) -> Result<&Frame, String> {
        self.i420
            .get_or_init(|| match &self.camera {
                Some((camera, pool)) => camera.to_i420(pool),
                None => Err("no picture".into()),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn seq(&self) -> u64 {
        match (&self.camera, self.i420.get()) {
            (Some((camera, _)), _) => camera.seq,
            (None, Some(Ok(frame))) => frame.seq,
            _ => 0,
        }
    }
}

impl Slot {
    /// The main encoding, encoder ready.
    /// The main encoding, encoder ready (and taking the camera's `taken` format as it is).
    pub(super) fn main(encoder: Box<dyn VideoEncoder>, taken: Option<PlaneFormat>) -> Slot {
        Slot {
            encoding: Encoding::Main,
            settings: encoder.settings().clone(),
            encoder: Some(encoder),
            repair: false,
            failing: false,
            pool: None,
            paused: false,
            taken,
            refused: None,
        }
    }

    /// The low encoding for a main one with `main` settings, None when half the size would be
    /// too small to encode. Its encoder starts when it is first asked for.
    pub(super) fn low(main: &EncoderSettings) -> Option<Slot> {
        let size = Size {
            width: main.width,
            height: main.height,
        }
        .halved()?;
        Some(Slot {
            encoding: Encoding::Low,
            settings: EncoderSettings {
                width: size.width,
                height: size.height,
                // One slice: the low picture is small enough for one core.
                threads: 1,
                bitrate_kbps: (main.bitrate_kbps / 3).max(*super::limits::BITRATE_KBPS.start()),
                // On a slow link an IDR is many frames' worth of bits and every periodic one
                // is a visible stall; viewers that need one (joining, after a loss they could
                // not repair) ask for it.
                idr_interval: main.idr_interval.max(LOW_IDR_INTERVAL),
                ..main.clone()
            },
            encoder: None,
            repair: false,
            failing: false,
            pool: Some(FramePool::new(
                size.width as usize * size.height as usize * 3 / 2,
            )),
            paused: true,
            taken: None,
            refused: None,
        })
    }

    pub(super) fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Encodes `picture` if the encoding is active; None when it is paused, the rate control
    /// skipped the frame, or encoding failed (counted and logged once).
    pub(super) fn encode(
        &mut self,
        picture: &RawPicture,
        requests: &Requests,
        counters: &Counters,
        force_idr: bool,
    ) -> Option<AccessUnit> {
        if !requests.is_active() {
            if !self.paused {
                info!("{:?} encoding paused: no viewer needs it", self.encoding);
                self.paused = true;
            }
            if self.pool.is_some() {
                self.encoder = None;
                self.taken = None;
            }
            return None;
        }
        let kbps = requests.bitrate.swap(0, Ordering::AcqRel);
        if kbps != 0 {
            self.settings.bitrate_kbps = kbps;
        }
        let resumed = std::mem::take(&mut self.paused);
        if resumed {
            info!(
                "{:?} encoding runs: {}x{}, {} kbit/s",
                self.encoding,
                self.settings.width,
                self.settings.height,
                self.settings.bitrate_kbps
            );
        }
        if self.encoder.is_none() {
            match backend::open(&self.settings).or_else(|err| {
                if self.pool.is_none() || self.settings.encoder == EncoderChoice::Software {
                    return Err(err);
                }
                // The low encoding is small enough for software: a board's encoder may run
                // out of instances.
                warn!(
                    "{:?} encoding on the board's encoder failed ({err}); software instead",
                    self.encoding
                );
                self.settings.encoder = EncoderChoice::Software;
                backend::open(&self.settings)
            }) {
                Ok((encoder, ..)) => self.encoder = Some(encoder),
                Err(err) => {
                    self.fail(counters, picture.seq(), &err.to_string());
                    return None;
                }
            }
        }
        let as_it_is = picture
            .camera
            .as_ref()
            .map(|(camera, _)| camera)
            .filter(|camera| self.takes(&camera.format));
        let encoder = self.encoder.as_mut()?;
        if kbps != 0
            && kbps != encoder.settings().bitrate_kbps
            && let Err(err) = encoder.set_bitrate(kbps)
        {
            warn!(
                "{:?} bitrate change to {kbps} kbit/s refused: {err}",
                self.encoding
            );
        }
        let force_idr = force_idr || resumed || requests.take_keyframe();
        let started = Instant::now();
        let result = match as_it_is {
            Some(camera) => {
                encoder
                    .encode_camera(camera, force_idr || self.repair)
                    .map(|(unit, read)| {
                        counters.camera_read(read);
                        unit
                    })
            }
            None => {
                let frame = match picture.frame() {
                    Ok(frame) => frame,
                    Err(why) => {
                        self.fail(counters, picture.seq(), &why);
                        return None;
                    }
                };
                let scaled;
                let frame = match &self.pool {
                    Some(pool) => {
                        scaled = halve(frame, pool, self.settings.width, self.settings.height);
                        &scaled
                    }
                    None => frame,
                };
                encoder.encode(frame, force_idr || self.repair)
            }
        };
        match result {
            Ok(Some(unit)) => {
                if self.failing {
                    info!("{:?} encoder recovered", self.encoding);
                    self.failing = false;
                }
                let done = Instant::now();
                counters.encoded(done, done - started, unit.keyframe);
                Some(AccessUnit {
                    encoding: self.encoding,
                    ..unit
                })
            }
            Ok(None) => {
                // Rate control skipped it; a requested IDR stays pending in the encoder.
                counters.skipped();
                None
            }
            Err(err) => {
                self.fail(counters, picture.seq(), &err.to_string());
                if matches!(err, EncodeError::Device(_)) {
                    // A device that failed (stuck, reset) is set up anew at the next frame,
                    // which then starts with an IDR.
                    self.encoder = None;
                    self.taken = None;
                }
                None
            }
        }
    }

    /// True when the encoder takes pictures in `format` as they are: the main encoding only
    /// (the low one scales), asking the encoder once per format.
    fn takes(&mut self, format: &PlaneFormat) -> bool {
        if self.pool.is_some() || self.refused == Some(*format) {
            return false;
        }
        if self.taken == Some(*format) {
            return true;
        }
        let Some(encoder) = self.encoder.as_mut() else {
            return false;
        };
        match encoder.take_format(format) {
            Ok(()) => {
                self.taken = Some(*format);
                true
            }
            Err(why) => {
                info!(
                    "{:?} encoding: camera pictures are converted to I420 ({why})",
                    self.encoding
                );
                self.refused = Some(*format);
                false
            }
        }
    }

    fn fail(&mut self, counters: &Counters, seq: u64, why: &str) {
        counters.error();
        if !self.failing {
            warn!("{:?} encoding of frame {seq} failed: {why}", self.encoding);
            self.failing = true;
        }
    }
}

/// `frame` at `width`x`height`, at most half its size: each pixel the average of a 2x2 block
/// (a box filter: exact for the 2:1 case, and cheap enough to be invisible next to the encode).
fn halve(frame: &Frame, pool: &FramePool, width: u32, height: u32) -> Frame {
    let mut data = pool.get();
    let sw = frame.width as usize;
    let (dw, dh) = (width as usize, height as usize);
    let (luma, rest) = data.split_at_mut(dw * dh);
    let (u, v) = rest.split_at_mut(dw * dh / 4);
    average_2x2(frame.y(), sw, luma, dw, dh);
    average_2x2(frame.u(), sw / 2, u, dw / 2, dh / 2);
    average_2x2(frame.v(), sw / 2, v, dw / 2, dh / 2);
    Frame {
        width,
        height,
        data,
        seq: frame.seq,
        captured: frame.captured,
    }
}

/// Each destination sample the rounded mean of the 2x2 block at twice its coordinates.
fn average_2x2(src: &[u8], src_stride: usize, dst: &mut [u8], width: usize, height: usize) {
    for (y, out) in dst.chunks_exact_mut(width).take(height).enumerate() {
        let top = &src[2 * y * src_stride..][..2 * width];
        let bottom = &src[(2 * y + 1) * src_stride..][..2 * width];
        for (x, px) in out.iter_mut().enumerate() {
            let sum = top[2 * x] as u16
                + top[2 * x + 1] as u16
                + bottom[2 * x] as u16
                + bottom[2 * x + 1] as u16;
            *px = ((sum + 2) / 4) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::m2m::fake::{Behaviour, Fake};
    use crate::encode::m2m::{self, M2mEncoder};
    use crate::source::FrameBuf;
    use crate::source::lent::CameraBuffer;
    use crate::source::lent::testing::MemoryLender;
    use std::sync::Arc;

    #[test]
    fn halving_averages_each_2x2_block_of_every_plane() {
        // 4x4 luma with a distinct value per 2x2 block; chroma 2x2.
        let y = [
            10, 20, 50, 50, //
            30, 40, 50, 50, //
            0, 0, 255, 255, //
            0, 0, 255, 254,
        ];
        let frame = Frame {
            width: 4,
            height: 4,
            data: FrameBuf::unpooled([&y[..], &[8, 8, 8, 8], &[100, 102, 104, 106]].concat()),
            seq: 7,
            captured: Instant::now(),
        };
        let half = halve(&frame, &FramePool::new(6), 2, 2);
        assert_eq!(half.y(), &[25, 50, 0, 255]);
        assert_eq!(half.u(), &[8]);
        assert_eq!(half.v(), &[103]);
        assert_eq!((half.width, half.height, half.seq), (2, 2, 7));
    }

    #[test]
    fn the_low_encoding_is_half_the_size_or_none() {
        let main = EncoderSettings::default();
        let low = Slot::low(&main).expect("720p has a low encoding");
        assert_eq!((low.settings().width, low.settings().height), (640, 360));
        let tiny = EncoderSettings {
            width: 100,
            height: 100,
            ..main
        };
        assert!(Slot::low(&tiny).is_none(), "50x50 is below the size limits");
    }

    fn camera_picture(lender: &Arc<MemoryLender>, seq: u64) -> RawPicture {
        let format = PlaneFormat::of_camera(*b"YUYV", 128, 128, 256).expect("yuyv");
        let frame = CameraFrame {
            buffer: CameraBuffer::new(lender.clone(), 0, 0, format.size as usize),
            format,
            seq,
            captured: Instant::now(),
        };
        RawPicture::camera(frame, FramePool::new(128 * 128 * 3 / 2))
    }

    fn settings(encoder: EncoderChoice) -> EncoderSettings {
        EncoderSettings {
            width: 128,
            height: 128,
            fps: 30,
            bitrate_kbps: 300,
            temporal_layers: 1,
            encoder,
            ..EncoderSettings::default()
        }
    }

    #[test]
    fn the_board_encoder_reads_camera_buffers_and_the_low_encoding_gets_them_converted() {
        let (fake, state) = Fake::new(Behaviour {
            output_formats: vec![*b"YU12", *b"YUYV"],
            ..Behaviour::default()
        });
        let main_settings = settings(EncoderChoice::V4l2M2m(None));
        let m2m = M2mEncoder::new(fake, &main_settings, m2m::H264).expect("fake encoder");
        let mut main = Slot::main(Box::new(m2m), None);
        let mut low = Slot::low(&settings(EncoderChoice::Software)).expect("64x64");
        let yuyv: Vec<u8> = (0..256 * 128).map(|i| (i % 241) as u8).collect();
        let lender = MemoryLender::new(vec![yuyv.clone()], true);
        let (counters, low_counters) = (Counters::new(), Counters::new());
        let requests = [Requests::new(true), Requests::new(true)];
        for seq in 1..=3 {
            let picture = camera_picture(&lender, seq);
            let unit = main
                .encode(&picture, &requests[0], &counters, false)
                .expect("main unit");
            assert_eq!(
                (unit.seq, unit.width, unit.encoding),
                (seq, 128, Encoding::Main)
            );
            let unit = low
                .encode(&picture, &requests[1], &low_counters, false)
                .expect("low unit");
            assert_eq!(
                (unit.seq, unit.width, unit.encoding),
                (seq, 64, Encoding::Low)
            );
        }
        assert_eq!(state.lock().expect("state").last_picture, yuyv);
        assert_eq!(counters.snapshot().camera_dmabuf, 3);
        assert_eq!(low_counters.snapshot().camera_dmabuf, 0);
        assert_eq!(lender.given_back(), vec![0, 0, 0], "each picture went back");
    }

    #[test]
    fn a_software_encoder_gets_camera_buffers_converted() {
        let main_settings = settings(EncoderChoice::Software);
        let (encoder, ..) = backend::open(&main_settings).expect("openh264");
        let mut main = Slot::main(encoder, None);
        let lender = MemoryLender::new(vec![vec![128; 256 * 128]], true);
        let counters = Counters::new();
        let requests = Requests::new(true);
        for seq in 1..=2 {
            let unit = main
                .encode(&camera_picture(&lender, seq), &requests, &counters, false)
                .expect("unit");
            assert_eq!((unit.seq, unit.width, unit.height), (seq, 128, 128));
        }
        let stats = counters.snapshot();
        assert_eq!((stats.camera_dmabuf, stats.camera_copied), (0, 0));
        assert_eq!(stats.frames_encoded, 2);
    }
}
