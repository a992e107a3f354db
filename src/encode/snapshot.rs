//! Snapshots: a copy of the next frame the encoder takes, as a JPEG.
//!
//! Nothing is kept between requests (no standing copy of the last frame, which would cost a
//! frame's worth of memory all the time); a request waits at most one frame interval. The
//! HTTP side (`net/snapshot.rs`) asks for one frame at a time and shares its JPEG.

use jpeg_encoder::{Encoder, EncodingError, JpegColorType, SamplingFactor};

use crate::source::Frame;

/// A frame's pixels, owned (I420, tightly packed).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Picture {
    pub width: u32,
    pub height: u32,
    pub i420: Vec<u8>,
}

impl Picture {
    pub(crate) fn of(frame: &Frame) -> Picture {
        Picture {
            width: frame.width,
            height: frame.height,
            i420: frame.data.to_vec(),
        }
    }

    /// JPEG at `quality` (1-100), 4:2:0 like the source, no colour conversion.
    pub(crate) fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, String> {
        let (w, h) = (self.width as usize, self.height as usize);
        if self.i420.len() < w * h * 3 / 2 || w > u16::MAX as usize || h > u16::MAX as usize {
            return Err(format!("picture {w}x{h} has a wrong size"));
        }
        let mut out = Vec::with_capacity(w * h / 4);
        let mut encoder = Encoder::new(&mut out, quality);
        encoder.set_sampling_factor(SamplingFactor::F_2_2);
        encoder
            .encode_image(I420Image(self))
            .map_err(|e: EncodingError| format!("JPEG encoding failed: {e}"))?;
        Ok(out)
    }
}

/// Feeds the encoder YCbCr rows straight from the I420 planes.
struct I420Image<'a>(&'a Picture);

impl jpeg_encoder::ImageBuffer for I420Image<'_> {
    fn get_jpeg_color_type(&self) -> JpegColorType {
        JpegColorType::Ycbcr
    }

    fn width(&self) -> u16 {
        self.0.width as u16
    }

    fn height(&self) -> u16 {
        self.0.height as u16
    }

    fn fill_buffers(&self, y: u16, buffers: &mut [Vec<u8>; 4]) {
        let (w, h) = (self.0.width as usize, self.0.height as usize);
        let y = y as usize;
        let planes = &self.0.i420;
        let (luma, chroma) = planes.split_at(w * h);
        let (u, v) = chroma.split_at(w * h / 4);
        let row = (y / 2) * (w / 2);
        buffers[0].extend_from_slice(&luma[y * w..(y + 1) * w]);
        for x in 0..w {
            buffers[1].push(u[row + x / 2]);
            buffers[2].push(v[row + x / 2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::pattern::TestPattern;
    use std::time::Instant;

    #[test]
    fn a_frame_becomes_a_decodable_jpeg_of_the_same_size() {
        let mut pattern = TestPattern::new(320, 240, 30).unwrap();
        let frame = pattern.render(0, Instant::now());
        let jpeg = Picture::of(&frame).to_jpeg(85).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI marker");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "EOI marker");
        // The SOF0 segment carries the size: height then width, big-endian.
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let height = u16::from_be_bytes([jpeg[sof + 5], jpeg[sof + 6]]);
        let width = u16::from_be_bytes([jpeg[sof + 7], jpeg[sof + 8]]);
        assert_eq!((width, height), (320, 240));
    }

    #[test]
    fn a_short_buffer_is_an_error() {
        let p = Picture {
            width: 64,
            height: 64,
            i420: vec![0; 10],
        };
        assert!(p.to_jpeg(80).is_err());
    }
}
