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

/// Whether a test or benchmark that cannot run here must fail rather than skip: in CI
/// (`RTCAM_CI=1`, which `.ci/run` sets, or the `CI` variable most CI services set), a skip is a
/// silent pass of something nobody checked.
pub fn skips_fail() -> bool {
    let set =
        |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    set("RTCAM_CI") || set("CI")
}

/// Leaves a test or benchmark out, saying why on stderr; in CI (`skips_fail`) panics instead,
/// so the run fails with the reason.
pub fn skip(reason: &str) {
    assert!(
        !skips_fail(),
        "{reason}: not skipped in CI (RTCAM_CI or CI is set), so this fails"
    );
    eprintln!("skipped: {reason}");
}
