//! Camera pixel formats → the tightly packed I420 that the encoder takes.
//!
//! One `Converter` per negotiated format: it knows the capture size and each plane's stride
//! (`bytesperline`, which drivers may pad beyond the visible width) and fills a pooled I420
//! buffer from the driver's planes. Every path checks plane lengths before reading, so a short
//! or corrupt buffer is an error for that frame, never a panic; the caller drops the frame and
//! carries on.
//!
//! Odd capture sizes are cropped to even ones (I420 halves both dimensions).

#[cfg(any(test, feature = "testing"))]
pub(crate) mod bench;
mod mjpeg;
mod planar;

use std::fmt;

pub(crate) use mjpeg::MjpegDecoder;

/// The camera formats rtcam can take, cheapest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Planar 4:2:0, U before V (`YU12`): a copy.
    I420,
    /// Planar 4:2:0, V before U (`YV12`): a copy.
    Yv12,
    /// Y plane, then interleaved U/V (`NV12`): copy and de-interleave.
    Nv12,
    /// Y plane, then interleaved V/U (`NV21`).
    Nv21,
    /// Packed 4:2:2 `Y0 U Y1 V` (`YUYV`, most UVC webcams): a repack.
    Yuyv,
    /// Packed 4:2:2 `U Y0 V Y1` (`UYVY`).
    Uyvy,
    /// Motion JPEG (`MJPG`, `JPEG`): a JPEG decode per frame.
    Mjpeg,
    /// H.264 elementary stream (`H264`): not converted, passed through when asked for.
    H264,
}

impl PixelFormat {
    /// Every format in order of preference (cost of turning it into I420). H.264 is last: it
    /// is only used when asked for by name.
    pub const BY_COST: [PixelFormat; 8] = [
        PixelFormat::I420,
        PixelFormat::Yv12,
        PixelFormat::Nv12,
        PixelFormat::Nv21,
        PixelFormat::Yuyv,
        PixelFormat::Uyvy,
        PixelFormat::Mjpeg,
        PixelFormat::H264,
    ];

    /// The format behind a V4L2 fourcc, with how many memory planes the driver uses for it
    /// (the multi-planar `M` variants keep each plane in its own buffer).
    pub fn from_fourcc(fourcc: [u8; 4]) -> Option<(PixelFormat, usize)> {
        Some(match &fourcc {
            b"YU12" => (PixelFormat::I420, 1),
            b"YM12" => (PixelFormat::I420, 3),
            b"YV12" => (PixelFormat::Yv12, 1),
            b"YM21" => (PixelFormat::Yv12, 3),
            b"NV12" => (PixelFormat::Nv12, 1),
            b"NM12" => (PixelFormat::Nv12, 2),
            b"NV21" => (PixelFormat::Nv21, 1),
            b"NM21" => (PixelFormat::Nv21, 2),
            b"YUYV" => (PixelFormat::Yuyv, 1),
            b"UYVY" => (PixelFormat::Uyvy, 1),
            b"MJPG" | b"JPEG" => (PixelFormat::Mjpeg, 1),
            b"H264" => (PixelFormat::H264, 1),
            _ => return None,
        })
    }

    /// The name users write (`--format`), the usual V4L2 fourcc.
    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::I420 => "YU12",
            PixelFormat::Yv12 => "YV12",
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Nv21 => "NV21",
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Uyvy => "UYVY",
            PixelFormat::Mjpeg => "MJPG",
            PixelFormat::H264 => "H264",
        }
    }

    /// Parses a user's `--format`: a fourcc or a common alias, any case.
    pub fn from_name(name: &str) -> Option<PixelFormat> {
        let upper = name.trim().to_ascii_uppercase();
        match upper.as_str() {
            "I420" | "YUV420" => return Some(PixelFormat::I420),
            "MJPEG" => return Some(PixelFormat::Mjpeg),
            "YUY2" => return Some(PixelFormat::Yuyv),
            _ => {}
        }
        let bytes: [u8; 4] = upper.as_bytes().try_into().ok()?;
        PixelFormat::from_fourcc(bytes).map(|(format, _)| format)
    }

    /// Lower is cheaper.
    pub fn cost(self) -> usize {
        PixelFormat::BY_COST
            .iter()
            .position(|f| *f == self)
            .unwrap_or(usize::MAX)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConvertError {
    /// A plane is shorter than the format and size need.
    ShortPlane {
        plane: usize,
        needed: usize,
        got: usize,
    },
    /// The driver delivered fewer planes than the format has.
    MissingPlane(usize),
    /// A stride shorter than a row.
    BadStride { plane: usize, stride: usize },
    /// The frame is not a decodable JPEG (truncated, garbage, unsupported).
    Jpeg(String),
    /// The JPEG's size is not the negotiated one.
    JpegSize {
        width: usize,
        height: usize,
        expected_width: usize,
        expected_height: usize,
    },
    /// H.264 is not converted (it is passed through).
    NotRaw(PixelFormat),
    /// The output buffer does not fit the picture.
    BadOutput { needed: usize, got: usize },
    /// A width or height under 2: no picture comes out (I420 needs whole 2×2 blocks).
    TooSmall { width: usize, height: usize },
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConvertError::ShortPlane { plane, needed, got } => write!(
                f,
                "frame plane {plane} has {got} bytes, the format needs {needed}"
            ),
            ConvertError::MissingPlane(plane) => write!(f, "frame plane {plane} is missing"),
            ConvertError::BadStride { plane, stride } => {
                write!(f, "plane {plane}: stride {stride} is shorter than a row")
            }
            ConvertError::Jpeg(why) => write!(f, "MJPEG frame not decodable: {why}"),
            ConvertError::JpegSize {
                width,
                height,
                expected_width,
                expected_height,
            } => write!(
                f,
                "MJPEG frame is {width}x{height}, the stream is {expected_width}x{expected_height}"
            ),
            ConvertError::NotRaw(format) => write!(f, "{format} frames are not raw pictures"),
            ConvertError::TooSmall { width, height } => {
                write!(f, "frame size {width}x{height} is too small (at least 2x2)")
            }
            ConvertError::BadOutput { needed, got } => {
                write!(
                    f,
                    "output buffer of {got} bytes, the picture needs {needed}"
                )
            }
        }
    }
}

impl std::error::Error for ConvertError {}

/// Turns one negotiated camera format into I420 frames.
pub(crate) struct Converter {
    format: PixelFormat,
    /// The even size that comes out.
    width: usize,
    height: usize,
    /// The capture size, for checking JPEG headers.
    source_width: usize,
    source_height: usize,
    /// Bytes per row of each memory plane as the driver reported them (one for single-plane
    /// formats, where the chroma strides follow from the luma one).
    strides: Vec<usize>,
    jpeg: MjpegDecoder,
}

impl Converter {
    /// A converter for `format` at the driver's `width`×`height` and plane strides.
    pub(crate) fn new(format: PixelFormat, width: u32, height: u32, strides: &[u32]) -> Converter {
        Converter {
            format,
            width: width as usize & !1,
            height: height as usize & !1,
            source_width: width as usize,
            source_height: height as usize,
            strides: strides.iter().map(|&s| s as usize).collect(),
            jpeg: MjpegDecoder::new(),
        }
    }

    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn format(&self) -> PixelFormat {
        self.format
    }

    /// The size of the I420 pictures that come out (even).
    pub(crate) fn output_size(&self) -> (u32, u32) {
        (self.width as u32, self.height as u32)
    }

    /// Bytes of one output picture. Sizes from a broken driver whose picture would not fit in
    /// memory saturate: no buffer is that large, so every frame is refused as `BadOutput`.
    pub(crate) fn output_len(&self) -> usize {
        self.width.saturating_mul(self.height).saturating_mul(3) / 2
    }

    /// Converts one captured frame (its memory planes, each cut to `bytesused`) into `out`,
    /// tightly packed I420 of `output_size()`.
    pub(crate) fn convert(&mut self, planes: &[&[u8]], out: &mut [u8]) -> Result<(), ConvertError> {
        let needed = self.output_len();
        if out.len() < needed {
            return Err(ConvertError::BadOutput {
                needed,
                got: out.len(),
            });
        }
        let (w, h) = (self.width, self.height);
        // The row copies work in rows of the output width: there must be one.
        if w == 0 || h == 0 {
            return Err(ConvertError::TooSmall {
                width: self.source_width,
                height: self.source_height,
            });
        }
        let plane = |i: usize| planes.get(i).copied().ok_or(ConvertError::MissingPlane(i));
        let stride = |i: usize, fallback: usize| self.strides.get(i).copied().unwrap_or(fallback);
        match self.format {
            PixelFormat::I420 | PixelFormat::Yv12 => {
                let (y, u, v) = if planes.len() >= 3 {
                    let y = (plane(0)?, stride(0, w));
                    let u = (plane(1)?, stride(1, y.1 / 2));
                    let v = (plane(2)?, stride(2, y.1 / 2));
                    (y, u, v)
                } else {
                    // One buffer: Y, then the two chroma planes at half the luma stride.
                    let all = plane(0)?;
                    let y_stride = stride(0, w);
                    let c_stride = y_stride / 2;
                    // Saturating: driver-reported strides times rows overflow a 32-bit usize
                    // (the armv7 boards), and a saturated length is a ShortPlane error.
                    let y_len = y_stride.saturating_mul(self.source_height);
                    let c_len = c_stride.saturating_mul(self.source_height.div_ceil(2));
                    let (y, rest) = split(all, y_len, 0)?;
                    let (first, rest) = split(rest, c_len, 1)?;
                    let (second, _) = split(rest, c_len, 2)?;
                    ((y, y_stride), (first, c_stride), (second, c_stride))
                };
                let (u, v) = if self.format == PixelFormat::Yv12 {
                    (v, u)
                } else {
                    (u, v)
                };
                planar::from_i420(w, h, y, u, v, out)
            }
            PixelFormat::Nv12 | PixelFormat::Nv21 => {
                let (y, uv) = if planes.len() >= 2 {
                    let y = (plane(0)?, stride(0, w));
                    (y, (plane(1)?, stride(1, y.1)))
                } else {
                    let all = plane(0)?;
                    let y_stride = stride(0, w);
                    let (y, uv) = split(all, y_stride.saturating_mul(self.source_height), 0)?;
                    ((y, y_stride), (uv, y_stride))
                };
                planar::from_nv12(w, h, y, uv, self.format == PixelFormat::Nv21, out)
            }
            PixelFormat::Yuyv | PixelFormat::Uyvy => planar::from_packed_422(
                w,
                h,
                (plane(0)?, stride(0, w.saturating_mul(2))),
                self.format == PixelFormat::Uyvy,
                out,
            ),
            PixelFormat::Mjpeg => {
                let expected = (self.source_width, self.source_height);
                self.jpeg.decode_to_i420(plane(0)?, expected, (w, h), out)
            }
            PixelFormat::H264 => Err(ConvertError::NotRaw(PixelFormat::H264)),
        }
    }
}

/// Splits `len` bytes off the front of a plane.
fn split(data: &[u8], len: usize, plane: usize) -> Result<(&[u8], &[u8]), ConvertError> {
    if data.len() < len {
        return Err(ConvertError::ShortPlane {
            plane,
            needed: len,
            got: data.len(),
        });
    }
    Ok(data.split_at(len))
}

#[cfg(test)]
mod tests;
