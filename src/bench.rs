//! Benchmark drivers (feature `testing`), for `cargo bench` in `benches/`: what it measures is
//! the product's own code, driven here.

pub use crate::encode::bench::{EncodeBench, bench_encode, bench_encode_threads};
pub use crate::source::convert::PixelFormat;
pub use crate::source::convert::bench::{bench_camera_cpu, bench_convert};
pub use crate::streamer::bench::{PacketBench, bench_packets, sender_turn};

/// Renders `frames` frames of the moving test pattern (with its stamp) at `width`x`height`, as
/// the capture thread does; returns a checksum of sampled pixels so none of it is optimised
/// away.
pub fn bench_render(width: u32, height: u32, frames: u32) -> Result<u64, String> {
    use std::time::{Duration, Instant};
    let mut pattern =
        crate::source::pattern::TestPattern::new(width, height, 30).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let mut sum = 0u64;
    for i in 0..u64::from(frames) {
        let frame = pattern.render(i, start + Duration::from_nanos(i * 33_333_333));
        sum += u64::from(frame.data[(i as usize * 7919) % frame.data.len()]);
    }
    Ok(sum)
}
