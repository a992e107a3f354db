//! MJPEG frames → I420 with zune-jpeg.
//!
//! The JPEG is decoded to full-resolution YCbCr (no colour conversion: camera JPEGs are YCbCr
//! already), then chroma is averaged over 2×2 blocks. Webcam MJPEG often leaves out the Huffman
//! tables (the UVC spec's default tables apply); zune-jpeg fills them in.
//!
//! Cameras and USB hiccups deliver truncated frames. zune-jpeg decodes those leniently (grey
//! at the bottom), so the end-of-image marker is checked first: such a frame is an error and
//! is dropped rather than shown damaged.

use std::panic::{AssertUnwindSafe, catch_unwind};

use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

use super::ConvertError;

pub(crate) struct MjpegDecoder {
    /// Interleaved Y, Cb, Cr at full resolution, reused between frames.
    ycc: Vec<u8>,
}

impl Default for MjpegDecoder {
    fn default() -> Self {
        MjpegDecoder::new()
    }
}

impl MjpegDecoder {
    pub(crate) fn new() -> MjpegDecoder {
        MjpegDecoder { ycc: Vec::new() }
    }

    /// Decodes `jpeg`, which must be `expected` (width, height), into `out`: packed I420 of
    /// `out_size` (the expected size rounded down to even).
    pub(crate) fn decode_to_i420(
        &mut self,
        jpeg: &[u8],
        expected: (usize, usize),
        out_size: (usize, usize),
        out: &mut [u8],
    ) -> Result<(), ConvertError> {
        let jpeg = check_markers(jpeg)?;
        let (ew, eh) = expected;
        let options = DecoderOptions::default()
            .jpeg_set_out_colorspace(ColorSpace::YCbCr)
            .set_max_width(ew.max(16))
            .set_max_height(eh.max(16));
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        decoder
            .decode_headers()
            .map_err(|e| ConvertError::Jpeg(e.to_string()))?;
        let info = decoder
            .info()
            .ok_or_else(|| ConvertError::Jpeg("no image header".into()))?;
        let (width, height) = (usize::from(info.width), usize::from(info.height));
        if (width, height) != expected {
            return Err(ConvertError::JpegSize {
                width,
                height,
                expected_width: ew,
                expected_height: eh,
            });
        }
        if decoder.output_colorspace() != Some(ColorSpace::YCbCr) {
            return Err(ConvertError::Jpeg(format!(
                "colour space {:?} is not YCbCr",
                decoder.input_colorspace()
            )));
        }
        self.ycc.resize(width * height * 3, 0);
        // zune-jpeg 0.5.15 asserts on some corrupt progressive frames (found by fuzzing: its
        // upsamplers' `input.len() * 2 <= scratch_space.len()`, on every architecture). A
        // broken frame from a camera costs that frame, not the capture thread. The buffer is
        // only bytes, rewritten whole by the next decode.
        let ycc = &mut self.ycc;
        catch_unwind(AssertUnwindSafe(|| decoder.decode_into(ycc)))
            .map_err(|panic| {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                ConvertError::Jpeg(format!("the decoder failed on this frame: {why}"))
            })?
            .map_err(|e| ConvertError::Jpeg(e.to_string()))?;
        ycc_to_i420(&self.ycc, width, out_size, out);
        Ok(())
    }
}

/// The JPEG without trailing padding, if it starts with SOI and ends with EOI.
fn check_markers(jpeg: &[u8]) -> Result<&[u8], ConvertError> {
    if jpeg.len() < 4 || jpeg[..2] != [0xFF, 0xD8] {
        return Err(ConvertError::Jpeg("no start-of-image marker".into()));
    }
    // Some cameras pad the buffer with zeros after the image.
    let end = jpeg.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if end < 4 || jpeg[end - 2..end] != [0xFF, 0xD9] {
        return Err(ConvertError::Jpeg(
            "truncated (no end-of-image marker)".into(),
        ));
    }
    Ok(&jpeg[..end])
}

/// Interleaved full-resolution YCbCr (`src_width` wide) → packed I420 of `(w, h)`.
fn ycc_to_i420(ycc: &[u8], src_width: usize, (w, h): (usize, usize), out: &mut [u8]) {
    let luma = w * h;
    let (out_y, chroma) = out.split_at_mut(luma);
    let (out_u, out_v) = chroma.split_at_mut(luma / 4);
    let row_bytes = src_width * 3;
    for row in 0..h {
        let src = &ycc[row * row_bytes..row * row_bytes + w * 3];
        for (y, px) in out_y[row * w..(row + 1) * w]
            .iter_mut()
            .zip(src.chunks_exact(3))
        {
            *y = px[0];
        }
    }
    let cw = w / 2;
    for row in 0..h / 2 {
        let top = &ycc[2 * row * row_bytes..][..w * 3];
        let bottom = &ycc[(2 * row + 1) * row_bytes..][..w * 3];
        for col in 0..cw {
            let (a, b) = (&top[col * 6..col * 6 + 6], &bottom[col * 6..col * 6 + 6]);
            let average = |c: usize| {
                let sum =
                    u16::from(a[c]) + u16::from(a[c + 3]) + u16::from(b[c]) + u16::from(b[c + 3]);
                ((sum + 2) / 4) as u8
            };
            out_u[row * cw + col] = average(1);
            out_v[row * cw + col] = average(2);
        }
    }
}
