//! The H.264 encoder: OpenH264 set up for live streaming to browsers.
//!
//! Constrained baseline (every browser decodes it, profile-level-id 42e01f compatible), bitrate
//! rate control with frame skipping, low complexity, one slice, one thread: the lowest latency
//! per frame OpenH264 offers.
//!
//! Threads: OpenH264 encodes the slices of a picture in parallel, one per thread, but the
//! `openh264` crate always sets up a single slice (so its `num_threads` alone changes nothing)
//! and one temporal layer. With `threads` > 1 or `temporal_layers` > 1 the encoder is therefore
//! primed with one black frame, which makes the wrapper initialise OpenH264, and then switched
//! to that many fixed slices and temporal layers through the raw API. That switch resets
//! OpenH264 (new parameter sets, fresh rate control), so the stream's first real frame is an
//! IDR cut into `threads` slices, as is every frame after it.
//!
//! Temporal layers (hierarchical P): with 3, frames 0, 4, 8… are layer 0 and reference only
//! layer 0; frames 2, 6… are layer 1; odd frames are layer 2, referenced by nothing. Measured
//! on the test pattern at 1280x720, 30 fps, 1500 kbit/s: layer 0 carries about 40 % of the
//! bits at 7.5 fps, layers 0-1 about 65 % at 15 fps; encoding costs no more than with one layer.
//!
//! Rate control runs on the frames' capture timestamps (OpenH264's timestamp mode): it then
//! spreads an IDR's extra bits over the following frames instead of skipping several frames after
//! each IDR as its plain bitrate mode does (measured on the test pattern at 1280x720, 1500 kbit/s:
//! 25 of 300 frames skipped, a visible stall every 2 s, against none, at 1542 instead of
//! 1435 kbit/s). Frames are still skipped when the bitrate is too low for the picture.
//!
//! Every IDR access unit carries SPS and PPS in front of its slice, so any viewer can start
//! decoding at any IDR without having seen the stream's beginning.
//!
//! Periodic IDRs: OpenH264 counts its intra period in *encoded* frames, so when the rate control
//! skips frames (a big picture at a low bitrate) its IDRs come later than `idr_interval`. The
//! wrapper therefore also forces an IDR when `idr_interval` of capture time has passed since the
//! last one; a forced IDR restarts OpenH264's count, so the two never double up.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use openh264::encoder::{BitRate, FrameRate};
use openh264::encoder::{
    Complexity, Encoder, EncoderConfig, FrameType, IntraFramePeriod, Profile, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};

use super::level;
use super::limits::{self, Size, range_text};
use super::nal;
use super::parameter_sets::ParameterSets;
use super::{AccessUnit, EncoderSettings, Encoding};
use crate::source::Frame;

#[derive(Debug)]
pub(crate) enum EncodeError {
    /// Settings OpenH264 cannot use.
    InvalidSettings(String),
    /// A frame of another size than the settings say. The encoder does not resize or reinitialise
    /// on its own: a size change is a decision for the caller (new settings, new SDP).
    FrameSize {
        expected: (u32, u32),
        got: (u32, u32),
    },
    /// A frame whose buffer is shorter than its size requires.
    ShortFrame { expected: usize, got: usize },
    /// OpenH264 failed.
    OpenH264(String),
    /// A V4L2 encoding device failed or cannot be used (the message names what and why).
    Device(String),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::InvalidSettings(why) => write!(f, "invalid encoder settings: {why}"),
            EncodeError::FrameSize { expected, got } => write!(
                f,
                "frame is {}x{}, the encoder is set up for {}x{}",
                got.0, got.1, expected.0, expected.1
            ),
            EncodeError::ShortFrame { expected, got } => {
                write!(f, "frame buffer has {got} bytes, needs {expected}")
            }
            EncodeError::OpenH264(why) => write!(f, "OpenH264: {why}"),
            EncodeError::Device(why) => write!(f, "{why}"),
        }
    }
}

impl std::error::Error for EncodeError {}

impl From<openh264::Error> for EncodeError {
    fn from(err: openh264::Error) -> Self {
        EncodeError::OpenH264(err.to_string())
    }
}

pub(crate) struct H264Encoder {
    encoder: Encoder,
    settings: EncoderSettings,
    parameter_sets: ParameterSets,
    /// An IDR was asked for and has not come out yet (rate control may skip the frame it was
    /// asked on).
    idr_pending: bool,
    /// OpenH264 initialises on the first frame; before that runtime options cannot be set.
    started: bool,
    /// Capture time of the first frame: frame timestamps count from it.
    first_capture: Option<Instant>,
    /// Capture time of the frame that became the last IDR.
    last_idr: Option<Instant>,
    /// Reused output buffer.
    scratch: Vec<u8>,
}

impl H264Encoder {
    pub(crate) fn new(settings: &EncoderSettings) -> Result<H264Encoder, EncodeError> {
        validate(settings)?;
        let mut encoder = H264Encoder {
            encoder: new_openh264(settings)?,
            settings: settings.clone(),
            parameter_sets: ParameterSets::default(),
            idr_pending: false,
            started: false,
            first_capture: None,
            last_idr: None,
            scratch: Vec::new(),
        };
        if settings.threads > 1 || settings.temporal_layers > 1 {
            encoder.use_layers(settings.threads, settings.temporal_layers)?;
        }
        Ok(encoder)
    }

    /// Switches the initialised encoder to `slices` fixed slices and `temporal` temporal layers
    /// (see the module comment).
    fn use_layers(&mut self, slices: u32, temporal: u32) -> Result<(), EncodeError> {
        let (width, height) = (self.settings.width as usize, self.settings.height as usize);
        let (luma, chroma) = (vec![0u8; width * height], vec![128u8; width * height / 4]);
        let black = YUVSlices::new(
            (&luma, &chroma, &chroma),
            (width, height),
            (width, width / 2, width / 2),
        );
        self.encoder.encode_at(&black, Timestamp::ZERO)?;
        let mut params = openh264_sys2::SEncParamExt::default();
        // SAFETY: the encoder is initialised (the priming frame went through). GetOption copies
        // the current parameters into an SEncParamExt; SetOption reads one back and re-initialises
        // OpenH264 with it. Only the slice layout and the temporal layers change, which the
        // wrapper does not track: it reads slices and layers back per frame from the bitstream
        // info, whatever their number.
        let status = unsafe {
            let api = self.encoder.raw_api();
            let p = std::ptr::from_mut(&mut params).cast();
            let got = api.get_option(openh264_sys2::ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, p);
            params.iTemporalLayerNum = temporal as i32;
            if slices > 1 {
                let layer = &mut params.sSpatialLayers[0].sSliceArgument;
                layer.uiSliceMode = openh264_sys2::SM_FIXEDSLCNUM_SLICE;
                layer.uiSliceNum = slices;
            }
            if got != 0 {
                got
            } else {
                api.set_option(openh264_sys2::ENCODER_OPTION_SVC_ENCODE_PARAM_EXT, p)
            }
        };
        if status != 0 {
            return Err(EncodeError::OpenH264(format!(
                "setting up {slices} slices and {temporal} temporal layers failed (status {status})"
            )));
        }
        // The reset makes the next frame an IDR already; asking too makes sure of it.
        self.encoder.force_intra_frame();
        self.started = true;
        Ok(())
    }

    pub(crate) fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Encodes one frame. `force_idr` makes it (or, if rate control skips it, the next encoded
    /// frame) an IDR. None when rate control skipped the frame to hold the bitrate.
    pub(crate) fn encode(
        &mut self,
        frame: &Frame,
        force_idr: bool,
    ) -> Result<Option<AccessUnit>, EncodeError> {
        // Remembered before the checks, so a request made on a bad frame is not lost.
        self.idr_pending |= force_idr || self.idr_overdue(frame.captured);
        self.check(frame)?;
        // The first frame is an IDR anyway (and OpenH264 ignores the request before it starts).
        if self.idr_pending && self.started {
            self.encoder.force_intra_frame();
        }
        let (width, height) = (frame.width as usize, frame.height as usize);
        let yuv = YUVSlices::new(
            (frame.y(), frame.u(), frame.v()),
            (width, height),
            (width, width / 2, width / 2),
        );
        let timestamp = self.timestamp(frame.captured);
        let bitstream = self.encoder.encode_at(&yuv, timestamp)?;
        self.started = true;
        if bitstream.frame_type() == FrameType::Skip {
            return Ok(None);
        }
        let layer = (0..bitstream.num_layers())
            .filter_map(|i| bitstream.layer(i))
            .filter(|l| l.is_video())
            .map(|l| l.raw_info().uiTemporalId)
            .max()
            .unwrap_or(0);
        self.scratch.clear();
        bitstream.write_vec(&mut self.scratch);
        if self.scratch.is_empty() {
            return Ok(None);
        }
        let keyframe = nal::is_idr(&self.scratch);
        if keyframe {
            self.parameter_sets
                .complete_idr(&mut self.scratch)
                .map_err(|_| EncodeError::OpenH264("IDR without SPS/PPS".into()))?;
            self.idr_pending = false;
            self.last_idr = Some(frame.captured);
        }
        Ok(Some(AccessUnit {
            data: Arc::from(&self.scratch[..]),
            keyframe,
            encoding: Encoding::Main,
            layer: if keyframe { 0 } else { layer },
            width: frame.width,
            height: frame.height,
            seq: frame.seq,
            captured: frame.captured,
            handed: frame.captured,
        }))
    }

    /// Changes the target bitrate from the next frame on, without a new IDR.
    pub(crate) fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        check_bitrate(kbps)?;
        if !self.started {
            // Not initialised yet, so runtime options would be refused: start over instead.
            let settings = EncoderSettings {
                bitrate_kbps: kbps,
                ..self.settings.clone()
            };
            self.encoder = new_openh264(&settings)?;
            self.settings = settings;
            return Ok(());
        }
        let old_bps = self.settings.bitrate_kbps as i32 * 1000;
        let new_bps = kbps as i32 * 1000;
        // OpenH264 refuses a target above the maximum, and our maximum equals the target, so the
        // order of the two changes depends on the direction.
        if new_bps > old_bps {
            self.set_bitrate_option(openh264_sys2::ENCODER_OPTION_MAX_BITRATE, new_bps)?;
            self.set_bitrate_option(openh264_sys2::ENCODER_OPTION_BITRATE, new_bps)?;
        } else {
            self.set_bitrate_option(openh264_sys2::ENCODER_OPTION_BITRATE, new_bps)?;
            self.set_bitrate_option(openh264_sys2::ENCODER_OPTION_MAX_BITRATE, new_bps)?;
        }
        self.settings.bitrate_kbps = kbps;
        Ok(())
    }

    fn set_bitrate_option(
        &mut self,
        option: openh264_sys2::ENCODER_OPTION,
        bps: i32,
    ) -> Result<(), EncodeError> {
        // The overall target (SPATIAL_LAYER_ALL) for the target bitrate; the maximum is checked
        // per layer, and we have one layer.
        let layer = if option == openh264_sys2::ENCODER_OPTION_BITRATE {
            openh264_sys2::SPATIAL_LAYER_ALL
        } else {
            openh264_sys2::SPATIAL_LAYER_0
        };
        let mut info = openh264_sys2::SBitrateInfo {
            iLayer: layer,
            iBitrate: bps,
        };
        // SAFETY: the encoder is initialised (a frame went through), and SetOption only reads an
        // SBitrateInfo for these two options. Neither changes anything the wrapper relies on.
        let status = unsafe {
            self.encoder
                .raw_api()
                .set_option(option, std::ptr::from_mut(&mut info).cast())
        };
        if status != 0 {
            return Err(EncodeError::OpenH264(format!(
                "setting the bitrate to {bps} bit/s failed (status {status})"
            )));
        }
        Ok(())
    }

    fn check(&self, frame: &Frame) -> Result<(), EncodeError> {
        let expected = (self.settings.width, self.settings.height);
        let got = (frame.width, frame.height);
        if got != expected {
            return Err(EncodeError::FrameSize { expected, got });
        }
        let needed = frame.width as usize * frame.height as usize * 3 / 2;
        if frame.data.len() < needed {
            return Err(EncodeError::ShortFrame {
                expected: needed,
                got: frame.data.len(),
            });
        }
        Ok(())
    }

    /// Milliseconds since the first frame. OpenH264's rate control measures its bitrate windows
    /// with these, so they must follow real capture times.
    fn timestamp(&mut self, captured: Instant) -> Timestamp {
        let first = *self.first_capture.get_or_insert(captured);
        Timestamp::from_millis(captured.saturating_duration_since(first).as_millis() as u64)
    }

    /// True once `idr_interval` of capture time has passed since the last IDR.
    fn idr_overdue(&self, captured: Instant) -> bool {
        let interval = self.settings.idr_interval;
        match self.last_idr {
            Some(last) => {
                !interval.is_zero() && captured.saturating_duration_since(last) >= interval
            }
            None => false,
        }
    }
}

pub(crate) fn validate(settings: &EncoderSettings) -> Result<(), EncodeError> {
    Size::check(settings.width, settings.height).map_err(EncodeError::InvalidSettings)?;
    if !limits::FPS.contains(&settings.fps) {
        return Err(EncodeError::InvalidSettings(format!(
            "frame rate {} must be {}",
            settings.fps,
            range_text(&limits::FPS)
        )));
    }
    if !limits::THREADS.contains(&settings.threads) {
        return Err(EncodeError::InvalidSettings(format!(
            "{} encoder threads: must be {}",
            settings.threads,
            range_text(&limits::THREADS)
        )));
    }
    if !limits::TEMPORAL_LAYERS.contains(&settings.temporal_layers) {
        return Err(EncodeError::InvalidSettings(format!(
            "{} temporal layers: must be {}",
            settings.temporal_layers,
            range_text(&limits::TEMPORAL_LAYERS)
        )));
    }
    check_bitrate(settings.bitrate_kbps)
}

pub(crate) fn check_bitrate(kbps: u32) -> Result<(), EncodeError> {
    if !limits::BITRATE_KBPS.contains(&kbps) {
        return Err(EncodeError::InvalidSettings(format!(
            "bitrate {kbps} kbit/s must be {}",
            range_text(&limits::BITRATE_KBPS)
        )));
    }
    Ok(())
}

/// The IDR period in frames; 0 (no periodic IDR) for a zero interval.
pub(crate) fn idr_period_frames(settings: &EncoderSettings) -> u32 {
    let frames = settings.idr_interval.as_secs_f64() * f64::from(settings.fps);
    if settings.idr_interval.is_zero() {
        0
    } else {
        (frames.round() as u32).max(1)
    }
}

fn new_openh264(settings: &EncoderSettings) -> Result<Encoder, EncodeError> {
    let config = EncoderConfig::new()
        .usage_type(UsageType::CameraVideoRealTime)
        .rate_control_mode(RateControlMode::Timestamp)
        .bitrate(BitRate::from_bps(settings.bitrate_kbps * 1000))
        .skip_frames(true)
        .max_frame_rate(FrameRate::from_hz(settings.fps as f32))
        .profile(Profile::Baseline)
        .level(level::openh264(level::for_stream(
            settings.width,
            settings.height,
            settings.fps,
            settings.bitrate_kbps,
        )))
        .complexity(Complexity::Low)
        .intra_frame_period(IntraFramePeriod::from_num_frames(idr_period_frames(
            settings,
        )))
        .num_threads(settings.threads as u16);
    Ok(Encoder::with_api_config(
        OpenH264API::from_source(),
        config,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::nal::{NAL_IDR, NAL_PPS, NAL_SLICE, NAL_SPS};
    use crate::source::pattern::TestPattern;
    use std::time::Duration;

    fn settings(width: u32, height: u32, idr_interval: Duration) -> EncoderSettings {
        EncoderSettings {
            width,
            height,
            fps: 30,
            bitrate_kbps: 1000,
            idr_interval,
            threads: 1,
            temporal_layers: 1,
            encoder: crate::encode::EncoderChoice::Software,
        }
    }

    /// Renders frame `n` of a pattern with capture times 1/30 s apart, as a real source would.
    fn frames(pattern: &mut TestPattern, count: u64) -> impl Iterator<Item = Frame> + '_ {
        let start = Instant::now();
        (0..count).map(move |n| pattern.render(n, start + Duration::from_millis(n * 1000 / 30)))
    }

    fn nal_types(data: &[u8]) -> Vec<u8> {
        nal::nal_units(data).filter_map(nal::nal_type).collect()
    }

    const NEVER: Duration = Duration::from_secs(3600);

    #[test]
    fn first_output_is_an_idr_with_parameter_sets_in_constrained_baseline() {
        let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
        let mut encoder = H264Encoder::new(&settings(320, 240, NEVER)).expect("encoder");
        let frame = frames(&mut pattern, 1).next().expect("a frame");
        let first = encoder
            .encode(&frame, false)
            .expect("encodes")
            .expect("not skipped");
        assert!(first.keyframe);
        assert_eq!(nal_types(&first.data), vec![NAL_SPS, NAL_PPS, NAL_IDR]);
        let sps = nal::nal_units(&first.data).next().expect("an SPS");
        let [profile, constraints, level] = nal::sps_profile_level_id(sps).expect("a full SPS");
        assert_eq!(profile, 66, "baseline profile_idc");
        assert_eq!(
            level,
            level::for_stream(320, 240, 30, 1000),
            "the level the SDP answer announces"
        );
        assert!(
            constraints & 0x40 != 0,
            "constraint_set1_flag (constrained baseline)"
        );
    }

    #[test]
    fn forced_and_periodic_idrs_carry_parameter_sets() {
        let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
        // One second at 30 fps: an IDR every 30 frames.
        let mut encoder =
            H264Encoder::new(&settings(320, 240, Duration::from_secs(1))).expect("encoder");
        let mut keyframes = Vec::new();
        for frame in frames(&mut pattern, 90) {
            let force = frame.seq == 45;
            let Some(unit) = encoder.encode(&frame, force).expect("encodes") else {
                continue;
            };
            let types = nal_types(&unit.data);
            assert_eq!(
                unit.keyframe,
                types.contains(&NAL_IDR),
                "frame {}",
                frame.seq
            );
            if unit.keyframe {
                assert!(
                    nal::has_sps_pps(&unit.data),
                    "IDR {} lacks SPS/PPS",
                    frame.seq
                );
                keyframes.push(frame.seq);
            } else {
                assert!(types.contains(&NAL_SLICE), "frame {}: {types:?}", frame.seq);
            }
        }
        // Periodic at 0 and 30, forced at 45, and the period restarts there.
        assert_eq!(keyframes, [0, 30, 45, 75]);
    }

    #[test]
    fn idr_interval_holds_in_capture_time_when_frames_come_slower() {
        // Set up for 30 fps with an IDR each second, but frames arrive at 10 fps (as if the
        // rate control or the camera dropped two of three): OpenH264's own period of 30 frames
        // would mean an IDR every 3 s.
        let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
        let mut encoder =
            H264Encoder::new(&settings(320, 240, Duration::from_secs(1))).expect("encoder");
        let start = Instant::now();
        let mut keyframes = Vec::new();
        for n in 0..35 {
            let frame = pattern.render(n, start + Duration::from_millis(n * 100));
            if encoder
                .encode(&frame, false)
                .expect("encodes")
                .is_some_and(|unit| unit.keyframe)
            {
                keyframes.push(n);
            }
        }
        assert_eq!(keyframes, [0, 10, 20, 30]);
    }

    #[test]
    fn wrong_frame_size_is_an_error() {
        let mut small = TestPattern::new(160, 120, 30).expect("pattern");
        let mut encoder = H264Encoder::new(&settings(320, 240, NEVER)).expect("encoder");
        let frame = frames(&mut small, 1).next().expect("a frame");
        match encoder.encode(&frame, false) {
            Err(EncodeError::FrameSize { expected, got }) => {
                assert_eq!((expected, got), ((320, 240), (160, 120)));
            }
            other => panic!("expected a size error, got {other:?}"),
        }
    }

    #[test]
    fn short_frame_buffer_is_an_error() {
        let mut encoder = H264Encoder::new(&settings(160, 120, NEVER)).expect("encoder");
        let frame = Frame {
            width: 160,
            height: 120,
            data: crate::source::FrameBuf::unpooled(vec![0; 160 * 120]),
            seq: 0,
            captured: Instant::now(),
        };
        assert!(matches!(
            encoder.encode(&frame, false),
            Err(EncodeError::ShortFrame { .. })
        ));
    }

    #[test]
    fn rejects_unusable_settings() {
        let bad = [
            settings(321, 240, NEVER),
            settings(0, 240, NEVER),
            settings(4096, 2160, NEVER),
            EncoderSettings {
                fps: 0,
                ..settings(320, 240, NEVER)
            },
            EncoderSettings {
                bitrate_kbps: 1,
                ..settings(320, 240, NEVER)
            },
            EncoderSettings {
                threads: 0,
                ..settings(320, 240, NEVER)
            },
            EncoderSettings {
                threads: limits::THREADS.end() + 1,
                ..settings(320, 240, NEVER)
            },
        ];
        for settings in bad {
            assert!(
                matches!(
                    H264Encoder::new(&settings),
                    Err(EncodeError::InvalidSettings(_))
                ),
                "{settings:?} accepted"
            );
        }
    }

    #[test]
    fn temporal_layers_can_be_dropped_without_breaking_decoding() {
        let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
        let mut encoder = H264Encoder::new(&EncoderSettings {
            temporal_layers: 3,
            bitrate_kbps: 2000,
            ..settings(320, 240, NEVER)
        })
        .expect("encoder");
        // Three viewers: all layers, layers 0-1, layer 0 only.
        let mut decoders: Vec<openh264::decoder::Decoder> = (0..3)
            .map(|_| openh264::decoder::Decoder::new().expect("decoder"))
            .collect();
        let mut decoded = [0usize; 3];
        let mut layers = Vec::new();
        let t0 = Instant::now();
        for seq in 0..48u64 {
            let frame = pattern.render(seq, t0 + Duration::from_millis(seq * 33));
            let Some(unit) = encoder.encode(&frame, false).expect("encodes") else {
                continue;
            };
            layers.push(unit.layer);
            let top_layer_is_referenced = nal::nal_units(&unit.data)
                .any(|n| nal::nal_type(n) == Some(NAL_SLICE) && n[0] & 0x60 != 0);
            assert!(
                unit.layer < 2 || !top_layer_is_referenced,
                "layer 2 frames are not references"
            );
            for (max_layer, decoder) in decoders.iter_mut().enumerate() {
                if unit.layer as usize <= 2 - max_layer {
                    let picture = decoder.decode(&unit.data).expect("decodes");
                    assert!(picture.is_some(), "every frame sent decodes");
                    decoded[max_layer] += 1;
                }
            }
        }
        assert_eq!(
            &layers[..8],
            &[0, 2, 1, 2, 0, 2, 1, 2],
            "hierarchical P: {layers:?}"
        );
        assert!(decoded[0] > decoded[1] && decoded[1] > decoded[2] && decoded[2] >= 10);
    }

    #[test]
    fn bitrate_changes_at_runtime_in_both_directions() {
        let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
        // Both rates below what this small picture would take at best quality (~200 kbit/s),
        // so the rate control, not the content, sets them.
        let mut encoder = H264Encoder::new(&EncoderSettings {
            bitrate_kbps: 160,
            ..settings(320, 240, NEVER)
        })
        .expect("encoder");
        // Two seconds each at 160, 50 and again 160 kbit/s.
        let mut bytes = [0usize; 3];
        for frame in frames(&mut pattern, 180) {
            match frame.seq {
                60 => encoder.set_bitrate(50).expect("lowering"),
                120 => encoder.set_bitrate(160).expect("raising"),
                _ => {}
            }
            if let Some(unit) = encoder.encode(&frame, false).expect("encodes") {
                // Leave the first half second of each part to the rate control's reaction.
                if frame.seq % 60 >= 15 {
                    bytes[(frame.seq / 60) as usize] += unit.data.len();
                }
            }
        }
        let kbps = bytes.map(|b| b as f64 * 8.0 / 1.5 / 1000.0);
        assert!(kbps[1] < 80.0, "asked for 50 kbit/s, got {kbps:?}");
        assert!(
            kbps[0] > 2.0 * kbps[1] && kbps[2] > 2.0 * kbps[1],
            "{kbps:?}"
        );
        assert_eq!(encoder.settings().bitrate_kbps, 160);
    }

    #[test]
    fn threads_cut_every_picture_into_as_many_decodable_slices() {
        for threads in [2, *limits::THREADS.end()] {
            let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
            let mut encoder = H264Encoder::new(&EncoderSettings {
                threads,
                ..settings(320, 240, NEVER)
            })
            .expect("encoder");
            let mut decoder = openh264::decoder::Decoder::new().expect("decoder");
            let mut encoded = 0;
            for frame in frames(&mut pattern, 10) {
                let Some(unit) = encoder.encode(&frame, false).expect("encodes") else {
                    continue;
                };
                let types = nal_types(&unit.data);
                let (slice_type, count) = if encoded == 0 {
                    assert!(unit.keyframe, "the stream starts with an IDR");
                    assert_eq!(types[..2], [NAL_SPS, NAL_PPS], "{types:?}");
                    (NAL_IDR, types.len() - 2)
                } else {
                    assert!(!unit.keyframe, "frame {}: {types:?}", frame.seq);
                    (NAL_SLICE, types.len())
                };
                assert_eq!(count, threads as usize, "frame {}: {types:?}", frame.seq);
                assert!(
                    types[types.len() - count..]
                        .iter()
                        .all(|&t| t == slice_type)
                );
                let picture = decoder.decode(&unit.data).expect("decodes");
                assert!(picture.is_some(), "frame {} gave no picture", frame.seq);
                encoded += 1;
            }
            assert!(encoded >= 5, "{threads} threads: {encoded} frames");
        }
    }

    #[test]
    fn idr_period_is_rounded_to_frames() {
        assert_eq!(
            idr_period_frames(&settings(320, 240, Duration::from_secs(2))),
            60
        );
        assert_eq!(
            idr_period_frames(&settings(320, 240, Duration::from_millis(10))),
            1
        );
        assert_eq!(idr_period_frames(&settings(320, 240, Duration::ZERO)), 0);
    }
}
