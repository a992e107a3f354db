//! Conversion benchmarks without a camera: test-pattern pictures re-packed into each camera
//! format (YUYV, NV12, YU12, and MJPEG 4:2:2 as UVC webcams send it), then timed through the
//! same `Converter` the V4L2 source uses; and `SyntheticCamera`, a frame source that feeds
//! such frames at a camera's pace, to measure capture + convert + encode CPU end to end.

use std::time::{Duration, Instant};

use super::{Converter, PixelFormat};
use crate::encode::{EncoderSettings, Pipeline};
use crate::source::frame_clock::FrameClock;
use crate::source::pattern::TestPattern;
use crate::source::{Frame, FramePool, FrameSource, SourceError, SourceInfo};

/// Different pictures cycled through, so the JPEG decoder sees varied content.
const DISTINCT_FRAMES: u64 = 8;

/// `DISTINCT_FRAMES` camera frames of the moving test pattern in `format` (tightly packed).
pub(crate) fn camera_frames(
    format: PixelFormat,
    width: u32,
    height: u32,
) -> Result<Vec<Vec<u8>>, String> {
    let mut pattern = TestPattern::new(width, height, 30).map_err(|e| e.to_string())?;
    let now = Instant::now();
    (0..DISTINCT_FRAMES)
        .map(|n| {
            let frame = pattern.render(n, now);
            repack(&frame, format)
        })
        .collect()
}

fn repack(frame: &Frame, format: PixelFormat) -> Result<Vec<u8>, String> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (y, u, v) = (frame.y(), frame.u(), frame.v());
    let chroma = |row: usize, col: usize| {
        let at = (row / 2) * (w / 2) + col / 2;
        (u[at], v[at])
    };
    Ok(match format {
        PixelFormat::I420 => frame.data.to_vec(),
        PixelFormat::Nv12 => {
            let mut out = y.to_vec();
            out.extend(u.iter().zip(v).flat_map(|(a, b)| [*a, *b]));
            out
        }
        PixelFormat::Yuyv => {
            let mut out = Vec::with_capacity(w * h * 2);
            for row in 0..h {
                for col in (0..w).step_by(2) {
                    let (cu, cv) = chroma(row, col);
                    out.extend([y[row * w + col], cu, y[row * w + col + 1], cv]);
                }
            }
            out
        }
        PixelFormat::Mjpeg => {
            let mut ycc = Vec::with_capacity(w * h * 3);
            for row in 0..h {
                for col in 0..w {
                    let (cu, cv) = chroma(row, col);
                    ycc.extend([y[row * w + col], cu, cv]);
                }
            }
            let mut jpeg = Vec::new();
            let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 85);
            encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_2);
            encoder
                .encode(&ycc, w as u16, h as u16, jpeg_encoder::ColorType::Ycbcr)
                .map_err(|e| e.to_string())?;
            jpeg
        }
        other => return Err(format!("no benchmark frames for {other}")),
    })
}

/// Per-frame conversion times in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertBench {
    pub format: PixelFormat,
    pub frames: usize,
    pub ms_p50: f64,
    pub ms_p95: f64,
    pub ms_mean: f64,
}

/// Converts `frames` frames of `format` at `width`×`height` to I420 and times each.
pub fn bench_convert(
    format: PixelFormat,
    width: u32,
    height: u32,
    frames: usize,
) -> Result<ConvertBench, String> {
    let inputs = camera_frames(format, width, height)?;
    let mut converter = Converter::new(format, width, height, &[packed_stride(format, width)]);
    let mut out = vec![0u8; converter.output_len()];
    let mut times = Vec::with_capacity(frames);
    for n in 0..frames {
        let input = &inputs[n % inputs.len()];
        let start = Instant::now();
        converter
            .convert(&[input], &mut out)
            .map_err(|e| e.to_string())?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    times.sort_by(f64::total_cmp);
    let pick = |p: usize| {
        times
            .get((times.len() * p / 100).min(times.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    Ok(ConvertBench {
        format,
        frames,
        ms_p50: pick(50),
        ms_p95: pick(95),
        ms_mean: mean,
    })
}

/// The luma stride of a tightly packed frame in `format`.
fn packed_stride(format: PixelFormat, width: u32) -> u32 {
    match format {
        PixelFormat::Yuyv | PixelFormat::Uyvy => width * 2,
        PixelFormat::Mjpeg | PixelFormat::H264 => 0,
        _ => width,
    }
}

/// A frame source that behaves like a camera delivering `format` at `fps`: it waits for each
/// frame's time, then converts a prepared camera frame to I420 on the capture thread, as the
/// V4L2 source does (minus the driver's DQBUF, a cheap ioctl).
pub(crate) struct SyntheticCamera {
    inputs: Vec<Vec<u8>>,
    converter: Converter,
    pool: FramePool,
    clock: FrameClock,
    width: u32,
    height: u32,
    fps: u32,
}

impl SyntheticCamera {
    pub(crate) fn new(
        format: PixelFormat,
        width: u32,
        height: u32,
        fps: u32,
    ) -> Result<SyntheticCamera, String> {
        let inputs = camera_frames(format, width, height)?;
        let converter = Converter::new(format, width, height, &[packed_stride(format, width)]);
        Ok(SyntheticCamera {
            pool: FramePool::new(converter.output_len()),
            inputs,
            converter,
            clock: FrameClock::new(fps),
            width,
            height,
            fps,
        })
    }
}

impl FrameSource for SyntheticCamera {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: "synthetic",
            name: format!("synthetic {} camera", self.converter.format()),
            width: self.width,
            height: self.height,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<Frame, SourceError> {
        let seq = self.clock.wait_next_slot();
        let mut data = self.pool.get();
        let input = &self.inputs[(seq % self.inputs.len() as u64) as usize];
        self.converter
            .convert(&[input], &mut data)
            .map_err(|e| SourceError::Failed(e.to_string()))?;
        Ok(Frame {
            width: self.width,
            height: self.height,
            data,
            seq,
            captured: Instant::now(),
        })
    }
}

/// CPU time this process has used so far (user + system).
pub(crate) fn process_cpu_time() -> Duration {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills one rusage.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv =
        |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Runs the real pipeline on a synthetic camera; returns CPU seconds per second and frames.
pub fn bench_camera_cpu(
    format: PixelFormat,
    width: u32,
    height: u32,
    seconds: f64,
) -> Result<(f64, u64), String> {
    let source = SyntheticCamera::new(format, width, height, 30)?;
    let (tx, rx) = smol::channel::bounded(8);
    let settings = EncoderSettings {
        bitrate_kbps: 1500,
        // What this measures: the software path, whatever the machine has.
        encoder: crate::encode::EncoderChoice::Software,
        ..EncoderSettings::default()
    };
    // A second to settle (encoder start, first IDR), then measure.
    let mut pipeline =
        Pipeline::start(Box::new(source), settings, tx).map_err(|e| e.to_string())?;
    let drain = std::thread::spawn(move || {
        let mut n = 0u64;
        while smol::block_on(rx.recv()).is_ok() {
            n += 1;
        }
        n
    });
    std::thread::sleep(Duration::from_secs(1));
    let (cpu0, wall0, frames0) = (
        process_cpu_time(),
        Instant::now(),
        pipeline.stats().frames_encoded,
    );
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let (cpu1, wall1, frames1) = (
        process_cpu_time(),
        Instant::now(),
        pipeline.stats().frames_encoded,
    );
    pipeline.stop();
    let _ = drain.join();
    let cpu = (cpu1 - cpu0).as_secs_f64() / (wall1 - wall0).as_secs_f64();
    Ok((cpu, frames1 - frames0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_benchmarked_format_converts_back_to_the_pattern() {
        let (w, h) = (320, 240);
        let mut pattern = TestPattern::new(w, h, 30).unwrap();
        let reference = pattern.render(0, Instant::now());
        for format in [
            PixelFormat::I420,
            PixelFormat::Nv12,
            PixelFormat::Yuyv,
            PixelFormat::Mjpeg,
        ] {
            let inputs = camera_frames(format, w, h).unwrap();
            let mut converter = Converter::new(format, w, h, &[packed_stride(format, w)]);
            let mut out = vec![0u8; converter.output_len()];
            converter.convert(&[&inputs[0]], &mut out).unwrap();
            // Below the stamp, whose capture time differs between the two renders.
            let below = crate::source::stamp::stamp_rows_px(w) as usize * w as usize;
            let luma_error = out[below..(w * h) as usize]
                .iter()
                .zip(&reference.y()[below..])
                .map(|(a, b)| u64::from(a.abs_diff(*b)))
                .sum::<u64>()
                / (u64::from(w * h) - below as u64);
            // Exact for the raw formats; JPEG at quality 85 is close.
            let limit = if format == PixelFormat::Mjpeg { 4 } else { 0 };
            assert!(
                luma_error <= limit,
                "{format}: mean luma error {luma_error}"
            );
        }
    }

    #[test]
    fn the_benchmark_reports_times() {
        let b = bench_convert(PixelFormat::Yuyv, 160, 120, 5).unwrap();
        assert_eq!(b.frames, 5);
        assert!(b.ms_p50 <= b.ms_p95);
    }
}
