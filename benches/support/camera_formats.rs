//! Camera formats at 1280x720: what turning each into I420 costs per frame, and the CPU of
//! capture + convert + encode at 30 fps per format. No camera is needed: a synthetic camera
//! feeds test-pattern pictures re-packed into the format (MJPEG as 4:2:2 JPEGs, as webcams
//! send them), converted on the capture thread exactly as the V4L2 source does.

use rtcam::bench::{PixelFormat, bench_camera_cpu, bench_convert};
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
        match bench_camera_cpu(format, WIDTH, HEIGHT, seconds) {
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
