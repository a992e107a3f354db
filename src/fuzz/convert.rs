//! Camera frames → I420 with whatever format, size, strides and plane lengths a driver (or a
//! broken one) reports.

use crate::source::convert::{Converter, PixelFormat};

/// Output buffers are capped: a hostile size must be refused by the converter's own check, not
/// by this harness running out of memory.
const MAX_OUT: usize = 16 << 20;

/// Reads the frame's description off the front of `data`, zeros once it runs out:
/// format (1 byte), width and height (u32 LE each), stride count (1) and strides (u32 each),
/// plane count (1) and the lengths of all planes but the last (u32 each); the rest of the bytes
/// are the planes.
pub fn convert(data: &[u8]) {
    let mut input = Reader(data);
    let format = PixelFormat::BY_COST[usize::from(input.u8()) % PixelFormat::BY_COST.len()];
    let (width, height) = (input.u32(), input.u32());
    let strides: Vec<u32> = (0..input.u8() % 4).map(|_| input.u32()).collect();
    let plane_count = usize::from(input.u8() % 4);
    let lengths: Vec<usize> = (1..plane_count).map(|_| input.u32() as usize).collect();
    let mut rest = input.0;
    let mut planes = Vec::with_capacity(plane_count);
    for length in lengths {
        let (plane, after) = rest.split_at(length.min(rest.len()));
        planes.push(plane);
        rest = after;
    }
    if plane_count > 0 {
        planes.push(rest);
    }

    let mut converter = Converter::new(format, width, height, &strides);
    let mut out = vec![0; converter.output_len().min(MAX_OUT)];
    // Twice: production reuses a converter (and its JPEG buffers) frame after frame.
    for _ in 0..2 {
        let _ = std::hint::black_box(converter.convert(&planes, &mut out));
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        let (&first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        first
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
}
