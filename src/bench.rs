//! Benchmark drivers (feature `testing`), for `cargo bench` in `benches/`: what it measures is
//! the product's own code, driven here.

pub use crate::encode::bench::{EncodeBench, bench_encode, bench_encode_threads};
pub use crate::source::convert::PixelFormat;
pub use crate::source::convert::bench::{bench_camera_cpu, bench_convert};
