//! Encoder micro-benchmark: how long OpenH264 takes per frame on this machine, as the pipeline
//! uses it (test pattern, 1500 kbit/s, 30 fps, low complexity, one thread).
//!
//! Frames carry capture times 1/30 s apart, so the rate control behaves as it would live even
//! though the benchmark runs flat out.

use std::time::{Duration, Instant};

use super::EncoderSettings;
use super::h264::{EncodeError, H264Encoder};
use crate::source::pattern::{PatternError, TestPattern};

const BITRATE_KBPS: u32 = 1500;
const FPS: u32 = 30;

#[derive(Debug, Clone, PartialEq)]
pub struct EncodeBench {
    pub width: u32,
    pub height: u32,
    /// Frames fed to the encoder.
    pub frames: u32,
    /// Of those, how many the rate control skipped.
    pub skipped: u32,
    /// Encode call times over all frames fed, in milliseconds.
    pub ms_per_frame_p50: f64,
    pub ms_per_frame_p95: f64,
    pub ms_per_frame_mean: f64,
    /// Test pattern render time per frame (not part of the encode times), in milliseconds.
    pub render_ms_mean: f64,
    /// Bitrate of the produced stream at the nominal frame rate, in kbit/s.
    pub kbps: f64,
}

/// Why a benchmark could not run (the pattern or the encoder refused the settings).
#[derive(Debug)]
pub struct BenchError(String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

impl From<PatternError> for BenchError {
    fn from(err: PatternError) -> Self {
        BenchError(err.to_string())
    }
}

impl From<EncodeError> for BenchError {
    fn from(err: EncodeError) -> Self {
        BenchError(err.to_string())
    }
}

/// Encodes `frames` frames of the moving test pattern at `width`×`height` and times each call.
pub fn bench_encode(width: u32, height: u32, frames: u32) -> Result<EncodeBench, BenchError> {
    bench_encode_threads(width, height, frames, 1)
}

/// As `bench_encode`, with `threads` encoder threads (and as many slices).
pub fn bench_encode_threads(
    width: u32,
    height: u32,
    frames: u32,
    threads: u32,
) -> Result<EncodeBench, BenchError> {
    let mut pattern = TestPattern::new(width, height, FPS)?;
    let mut encoder = H264Encoder::new(&EncoderSettings {
        width,
        height,
        fps: FPS,
        bitrate_kbps: BITRATE_KBPS,
        idr_interval: Duration::from_secs(2),
        threads,
        ..EncoderSettings::default()
    })?;
    let start = Instant::now();
    let mut encode_times = Vec::with_capacity(frames as usize);
    let mut render_total = Duration::ZERO;
    let (mut skipped, mut bytes) = (0u32, 0usize);
    for n in 0..u64::from(frames) {
        let captured = start + Duration::from_nanos(n * 1_000_000_000 / u64::from(FPS));
        let before_render = Instant::now();
        let frame = pattern.render(n, captured);
        let before_encode = Instant::now();
        let unit = encoder.encode(&frame, false)?;
        encode_times.push(before_encode.elapsed());
        render_total += before_encode - before_render;
        match unit {
            Some(unit) => bytes += unit.data.len(),
            None => skipped += 1,
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let count = encode_times.len().max(1);
    let mean = ms(encode_times.iter().sum::<Duration>()) / count as f64;
    encode_times.sort_unstable();
    let percentile = |p: usize| {
        encode_times
            .get((encode_times.len() * p / 100).min(encode_times.len().saturating_sub(1)))
            .map_or(0.0, |&d| ms(d))
    };
    let seconds = f64::from(frames) / f64::from(FPS);
    Ok(EncodeBench {
        width,
        height,
        frames,
        skipped,
        ms_per_frame_p50: percentile(50),
        ms_per_frame_p95: percentile(95),
        ms_per_frame_mean: mean,
        render_ms_mean: ms(render_total) / count as f64,
        kbps: if seconds > 0.0 {
            bytes as f64 * 8.0 / 1000.0 / seconds
        } else {
            0.0
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_plausible_numbers() {
        let bench = bench_encode(160, 120, 20).expect("bench runs");
        assert_eq!((bench.width, bench.height, bench.frames), (160, 120, 20));
        assert!(bench.skipped < bench.frames, "everything skipped");
        assert!(bench.kbps > 0.0);
        assert!(bench.ms_per_frame_p50 > 0.0 && bench.ms_per_frame_p50 <= bench.ms_per_frame_p95);
    }

    #[test]
    fn invalid_size_is_an_error() {
        let err = bench_encode(161, 120, 1).unwrap_err();
        assert!(err.to_string().contains("must be even"), "{err}");
    }
}
