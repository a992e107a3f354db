//! The encoder interface and its two backends: OpenH264 in software (`H264Encoder`) and the
//! board's own encoder through V4L2 memory-to-memory (`M2mEncoder`). The pipeline holds a
//! `Box<dyn VideoEncoder>` per encoding and does not care which.
//!
//! `auto` picks the first M2M device whose CAPTURE side offers H.264 and that takes I420, tries
//! to set it up, and falls back to software with the reason in the log. An M2M encoder may also
//! take a camera's own buffers (`take_format`, `encode_camera`); OpenH264 takes I420 only.

use std::fmt;
use std::path::{Path, PathBuf};

use log::{info, warn};

use super::h264::{EncodeError, H264Encoder};
use super::m2m::{self, CameraRead, M2mEncoder};
use super::{AccessUnit, EncoderSettings};
use crate::source::{CameraFrame, Frame, PlaneFormat};

/// One encoder, as the encoder thread drives it.
pub(crate) trait VideoEncoder: Send {
    /// Encodes one frame; `force_idr` makes it (or the next frame out) an IDR. None when the
    /// rate control skipped the frame.
    fn encode(&mut self, frame: &Frame, force_idr: bool)
    -> Result<Option<AccessUnit>, EncodeError>;
    /// Changes the target bitrate from the next frame on, without an IDR.
    fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError>;
    fn settings(&self) -> &EncoderSettings;

    /// Takes pictures in `format` (a camera's own buffers, `encode_camera`) from now on,
    /// without converting them; why not, otherwise (it then takes I420 only).
    fn take_format(&mut self, _format: &PlaneFormat) -> Result<(), String> {
        Err("it takes I420 only".into())
    }

    /// Encodes a picture in a camera's own buffer, of a format `take_format` took; the
    /// encoder is done with the buffer when this returns.
    fn encode_camera(
        &mut self,
        _frame: &CameraFrame,
        _force_idr: bool,
    ) -> Result<(Option<AccessUnit>, CameraRead), EncodeError> {
        Err(EncodeError::Device("this encoder takes I420 only".into()))
    }
}

impl VideoEncoder for H264Encoder {
    fn encode(
        &mut self,
        frame: &Frame,
        force_idr: bool,
    ) -> Result<Option<AccessUnit>, EncodeError> {
        H264Encoder::encode(self, frame, force_idr)
    }

    fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        H264Encoder::set_bitrate(self, kbps)
    }

    fn settings(&self) -> &EncoderSettings {
        H264Encoder::settings(self)
    }
}

impl<D: m2m::io::Io> VideoEncoder for M2mEncoder<D> {
    fn encode(
        &mut self,
        frame: &Frame,
        force_idr: bool,
    ) -> Result<Option<AccessUnit>, EncodeError> {
        M2mEncoder::encode(self, frame, force_idr)
    }

    fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        M2mEncoder::set_bitrate(self, kbps)
    }

    fn settings(&self) -> &EncoderSettings {
        M2mEncoder::settings(self)
    }

    fn take_format(&mut self, format: &PlaneFormat) -> Result<(), String> {
        M2mEncoder::take_format(self, format)
    }

    fn encode_camera(
        &mut self,
        frame: &CameraFrame,
        force_idr: bool,
    ) -> Result<(Option<AccessUnit>, CameraRead), EncodeError> {
        M2mEncoder::encode_camera(self, frame, force_idr)
    }
}

/// Which encoder to use (`--encoder`, `[video] encoder`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum EncoderChoice {
    /// The board's encoder if there is a usable one, else software.
    #[default]
    Auto,
    Software,
    /// A V4L2 M2M encoder: this node, or the first usable one.
    V4l2M2m(Option<PathBuf>),
}

impl std::str::FromStr for EncoderChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(EncoderChoice::Auto),
            "software" => Ok(EncoderChoice::Software),
            "v4l2m2m" => Ok(EncoderChoice::V4l2M2m(None)),
            _ => match s.strip_prefix("v4l2m2m:") {
                Some(path) if path.starts_with('/') => {
                    Ok(EncoderChoice::V4l2M2m(Some(PathBuf::from(path))))
                }
                _ => Err(format!(
                    "encoder `{s}`: must be auto, software, v4l2m2m or v4l2m2m:/dev/videoN"
                )),
            },
        }
    }
}

impl fmt::Display for EncoderChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncoderChoice::Auto => write!(f, "auto"),
            EncoderChoice::Software => write!(f, "software"),
            EncoderChoice::V4l2M2m(None) => write!(f, "v4l2m2m"),
            EncoderChoice::V4l2M2m(Some(path)) => write!(f, "v4l2m2m:{}", path.display()),
        }
    }
}

/// An encoder set up for `settings`, and what it is (for the log and `status`), e.g.
/// `software (OpenH264)` or `v4l2m2m:/dev/video11 (bcm2835-codec-encode)`. For the M2M
/// backends `settings.encoder` is resolved to the device that was chosen, so a second encoding
/// gets the same kind.
pub(crate) fn open(
    settings: &EncoderSettings,
) -> Result<(Box<dyn VideoEncoder>, EncoderChoice, String), EncodeError> {
    let software = |settings: &EncoderSettings| -> Result<_, EncodeError> {
        let encoder: Box<dyn VideoEncoder> = Box::new(H264Encoder::new(settings)?);
        Ok((
            encoder,
            EncoderChoice::Software,
            "software (OpenH264)".to_owned(),
        ))
    };
    let hardware = |path: &Path| -> Result<_, EncodeError> {
        let encoder = M2mEncoder::open(path, settings, m2m::H264)?;
        let name = format!("v4l2m2m:{} ({})", path.display(), encoder.card());
        let encoder: Box<dyn VideoEncoder> = Box::new(encoder);
        Ok((encoder, EncoderChoice::V4l2M2m(Some(path.into())), name))
    };
    match &settings.encoder {
        EncoderChoice::Software => software(settings),
        EncoderChoice::V4l2M2m(Some(path)) => hardware(path),
        EncoderChoice::V4l2M2m(None) => match m2m::discover::h264_encoders().first() {
            Some(found) => hardware(&found.path),
            None => Err(EncodeError::Device(
                "no V4L2 memory-to-memory H.264 encoder found".into(),
            )),
        },
        EncoderChoice::Auto => {
            let mut why = "no V4L2 memory-to-memory H.264 encoder found".to_owned();
            for found in m2m::discover::h264_encoders() {
                match hardware(&found.path) {
                    Ok(chosen) => {
                        info!("encoder: {} (auto)", chosen.2);
                        return Ok(chosen);
                    }
                    Err(err) => {
                        warn!("encoder {} not usable: {err}", found.path.display());
                        why = err.to_string();
                    }
                }
            }
            info!("encoder: software (auto: {why})");
            software(settings)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::m2m::fake::{Behaviour, Fake};
    use crate::encode::nal;
    use crate::source::pattern::TestPattern;
    use std::time::{Duration, Instant};

    fn settings(encoder: EncoderChoice) -> EncoderSettings {
        EncoderSettings {
            width: 320,
            height: 240,
            fps: 30,
            bitrate_kbps: 500,
            idr_interval: Duration::from_secs(3600),
            threads: 1,
            temporal_layers: 1,
            encoder,
        }
    }

    /// What the pipeline relies on from any backend.
    fn serves_the_pipeline(mut encoder: Box<dyn VideoEncoder>, name: &str) {
        let mut pattern = TestPattern::new(320, 240, 30).expect("pattern");
        let start = Instant::now();
        let mut units = Vec::new();
        for seq in 0..12u64 {
            let captured = start + Duration::from_millis(33 * seq);
            let frame = pattern.render(seq, captured);
            if seq == 6 {
                encoder.set_bitrate(300).expect("bitrate change");
            }
            if let Some(unit) = encoder.encode(&frame, seq == 8).expect("encodes") {
                assert_eq!((unit.seq, unit.captured), (seq, captured), "{name}");
                assert_eq!((unit.width, unit.height), (320, 240), "{name}");
                units.push(unit);
            }
        }
        assert!(units.len() >= 10, "{name}: {} units", units.len());
        let first = &units[0];
        assert!(first.keyframe && nal::has_sps_pps(&first.data), "{name}");
        let after_request: Vec<_> = units.iter().filter(|u| u.seq >= 8).collect();
        assert!(
            after_request[0].keyframe && nal::has_sps_pps(&after_request[0].data),
            "{name}: the requested IDR, with SPS/PPS"
        );
        assert!(
            units.iter().filter(|u| u.keyframe).count() == 2,
            "{name}: IDRs only at the start and on request"
        );
        assert_eq!(encoder.settings().bitrate_kbps, 300, "{name}");
        assert!(encoder.set_bitrate(0).is_err(), "{name}: 0 kbit/s refused");
    }

    #[test]
    fn both_backends_serve_the_pipeline_alike() {
        let (software, choice, name) = open(&settings(EncoderChoice::Software)).expect("software");
        assert_eq!(
            (choice, name.as_str()),
            (EncoderChoice::Software, "software (OpenH264)")
        );
        serves_the_pipeline(software, "software");
        let (fake, _) = Fake::new(Behaviour::default());
        let m2m =
            M2mEncoder::new(fake, &settings(EncoderChoice::V4l2M2m(None)), m2m::H264).expect("m2m");
        serves_the_pipeline(Box::new(m2m), "v4l2m2m");
    }

    #[test]
    fn a_missing_device_falls_back_only_when_auto() {
        let missing = PathBuf::from("/nonexistent/video11");
        let err = open(&settings(EncoderChoice::V4l2M2m(Some(missing.clone()))))
            .err()
            .expect("no such device");
        assert!(err.to_string().contains("/nonexistent/video11"), "{err}");
        // Auto on a machine without an M2M H.264 encoder (this one, and CI's) is software.
        if m2m::discover::h264_encoders().is_empty() {
            let (_, choice, _) = open(&settings(EncoderChoice::Auto)).expect("falls back");
            assert_eq!(choice, EncoderChoice::Software);
        }
    }

    #[test]
    fn the_encoder_option_reads_and_prints_back() {
        for text in ["auto", "software", "v4l2m2m", "v4l2m2m:/dev/video11"] {
            let choice: EncoderChoice = text.parse().expect(text);
            assert_eq!(choice.to_string(), text);
        }
        assert_eq!(
            "v4l2m2m:/dev/video11".parse(),
            Ok(EncoderChoice::V4l2M2m(Some("/dev/video11".into())))
        );
        for bad in ["hardware", "v4l2m2m:", "v4l2m2m:video11", ""] {
            assert!(bad.parse::<EncoderChoice>().is_err(), "{bad:?}");
        }
    }
}
