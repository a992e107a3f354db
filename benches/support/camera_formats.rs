//! Camera formats at 1280x720: what turning each into I420 costs per frame, and the CPU of
//! capture + convert + encode at 30 fps per format. No camera is needed: a synthetic camera
//! feeds test-pattern pictures re-packed into the format (MJPEG as 4:2:2 JPEGs, as webcams
//! send them), converted on the capture thread exactly as the V4L2 source does.

use std::time::{Duration, Instant};

use rtcam::encode::{EncoderSettings, Pipeline};
use rtcam::source::convert::PixelFormat;
use rtcam::source::convert::bench::{SyntheticCamera, bench_convert, process_cpu_time};
use serde_json::{Value, json};

const FORMATS: [PixelFormat; 4] = [
    PixelFormat::I420,
    PixelFormat::Nv12,
    PixelFormat::Yuyv,
    PixelFormat::Mjpeg,
];
const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;

pub fn run(results: &mut serde_json::Map<String, Value>) {
    println!("== camera formats: conversion to I420 per frame at {WIDTH}x{HEIGHT}");
    let mut convert = serde_json::Map::new();
    for format in FORMATS {
        match bench_convert(format, WIDTH, HEIGHT, 300) {
            Ok(b) => {
                println!(
                    "{format}: p50 {:.3} ms, p95 {:.3} ms, mean {:.3} ms",
                    b.ms_p50, b.ms_p95, b.ms_mean
                );
                convert.insert(
                    format.to_string(),
                    json!({"p50_ms": b.ms_p50, "p95_ms": b.ms_p95, "mean_ms": b.ms_mean}),
                );
            }
            Err(e) => println!("{format}: failed: {e}"),
        }
    }
    results.insert("convert_720p".into(), Value::Object(convert));

    let seconds: f64 = std::env::var("RTCAM_BENCH_CAMERA_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    println!(
        "\n== camera formats: capture + convert + encode CPU at {WIDTH}x{HEIGHT} 30 fps, \
         1500 kbit/s ({seconds} s each)"
    );
    let mut cpu = serde_json::Map::new();
    for format in FORMATS {
        match camera_cpu(format, seconds) {
            Ok((cpu_s_per_s, frames)) => {
                println!(
                    "{format}: {cpu_s_per_s:.3} CPU-s/s ({:.1} % of one core), {frames} frames encoded",
                    cpu_s_per_s * 100.0
                );
                cpu.insert(
                    format.to_string(),
                    json!({"cpu_s_per_s": cpu_s_per_s, "frames": frames}),
                );
            }
            Err(e) => println!("{format}: failed: {e}"),
        }
    }
    results.insert("camera_cpu_720p30".into(), Value::Object(cpu));
    println!();
}

/// Runs the real pipeline on a synthetic camera; returns CPU seconds per second and frames.
fn camera_cpu(format: PixelFormat, seconds: f64) -> Result<(f64, u64), String> {
    let source = SyntheticCamera::new(format, WIDTH, HEIGHT, 30)?;
    let (tx, rx) = smol::channel::bounded(8);
    let settings = EncoderSettings {
        bitrate_kbps: 1500,
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
