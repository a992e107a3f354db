//! Every conversion path against a known picture, with padded strides, and broken input.

use super::*;

const W: usize = 8;
const H: usize = 4;
/// Bytes of row padding added to every stride, filled with a value that must never appear.
const PAD: usize = 6;
const JUNK: u8 = 0xEE;

/// The reference picture: every luma sample distinct, chroma one value per 2×2 block.
fn reference() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let y: Vec<u8> = (0..W * H).map(|i| 16 + i as u8 * 3).collect();
    let u: Vec<u8> = (0..W * H / 4).map(|i| 60 + i as u8 * 10).collect();
    let v: Vec<u8> = (0..W * H / 4).map(|i| 200 - i as u8 * 10).collect();
    (y, u, v)
}

fn expected_i420() -> Vec<u8> {
    let (y, u, v) = reference();
    [y, u, v].concat()
}

/// Rows of `row_len` bytes laid out with `stride`, padding filled with junk.
fn strided(rows: &[&[u8]], stride: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        out.extend_from_slice(row);
        out.resize(out.len() + stride - row.len(), JUNK);
    }
    out
}

fn plane_rows(plane: &[u8], width: usize) -> Vec<&[u8]> {
    plane.chunks(width).collect()
}

fn convert(
    format: PixelFormat,
    strides: &[u32],
    planes: &[&[u8]],
) -> Result<Vec<u8>, ConvertError> {
    let mut converter = Converter::new(format, W as u32, H as u32, strides);
    let mut out = vec![0u8; converter.output_len()];
    converter.convert(planes, &mut out).map(|()| out)
}

fn i420_buffer(v_first: bool) -> (Vec<u8>, usize) {
    let (y, u, v) = reference();
    let stride = W + PAD;
    let (first, second) = if v_first { (v, u) } else { (u, v) };
    let mut all = strided(&plane_rows(&y, W), stride);
    all.extend(strided(&plane_rows(&first, W / 2), stride / 2));
    all.extend(strided(&plane_rows(&second, W / 2), stride / 2));
    (all, stride)
}

#[test]
fn i420_and_yv12_in_one_buffer_with_padded_strides() {
    let (buf, stride) = i420_buffer(false);
    assert_eq!(
        convert(PixelFormat::I420, &[stride as u32], &[&buf]),
        Ok(expected_i420())
    );
    let (buf, stride) = i420_buffer(true);
    assert_eq!(
        convert(PixelFormat::Yv12, &[stride as u32], &[&buf]),
        Ok(expected_i420())
    );
}

#[test]
fn i420_in_three_planes() {
    let (y, u, v) = reference();
    let ys = strided(&plane_rows(&y, W), W + PAD);
    let us = strided(&plane_rows(&u, W / 2), W / 2 + 2);
    let vs = strided(&plane_rows(&v, W / 2), W / 2 + 4);
    let strides = [(W + PAD) as u32, (W / 2 + 2) as u32, (W / 2 + 4) as u32];
    assert_eq!(
        convert(PixelFormat::I420, &strides, &[&ys, &us, &vs]),
        Ok(expected_i420())
    );
}

fn interleaved(first: &[u8], second: &[u8]) -> Vec<u8> {
    first
        .iter()
        .zip(second)
        .flat_map(|(a, b)| [*a, *b])
        .collect()
}

#[test]
fn nv12_and_nv21_single_buffer_and_two_planes() {
    let (y, u, v) = reference();
    let stride = W + PAD;
    for (format, chroma) in [
        (PixelFormat::Nv12, interleaved(&u, &v)),
        (PixelFormat::Nv21, interleaved(&v, &u)),
    ] {
        let luma = strided(&plane_rows(&y, W), stride);
        let uv = strided(&plane_rows(&chroma, W), stride);
        let single = [luma.clone(), uv.clone()].concat();
        assert_eq!(
            convert(format, &[stride as u32], &[&single]),
            Ok(expected_i420()),
            "{format}"
        );
        let strides = [stride as u32, stride as u32];
        assert_eq!(
            convert(format, &strides, &[&luma, &uv]),
            Ok(expected_i420()),
            "{format} 2 planes"
        );
    }
}

/// YUYV or UYVY rows of the reference picture (chroma repeated on both rows of a block).
fn packed_422(uyvy: bool) -> Vec<u8> {
    let (y, u, v) = reference();
    let mut rows = Vec::new();
    for row in 0..H {
        let mut bytes = Vec::new();
        for pair in 0..W / 2 {
            let (y0, y1) = (y[row * W + 2 * pair], y[row * W + 2 * pair + 1]);
            let c = (row / 2) * (W / 2) + pair;
            bytes.extend(if uyvy {
                [u[c], y0, v[c], y1]
            } else {
                [y0, u[c], y1, v[c]]
            });
        }
        rows.push(bytes);
    }
    let refs: Vec<&[u8]> = rows.iter().map(Vec::as_slice).collect();
    strided(&refs, W * 2 + PAD)
}

#[test]
fn yuyv_and_uyvy_with_padded_stride() {
    let stride = [(W * 2 + PAD) as u32];
    assert_eq!(
        convert(PixelFormat::Yuyv, &stride, &[&packed_422(false)]),
        Ok(expected_i420())
    );
    assert_eq!(
        convert(PixelFormat::Uyvy, &stride, &[&packed_422(true)]),
        Ok(expected_i420())
    );
}

#[test]
fn short_planes_and_strides_are_errors_not_panics() {
    let buf = packed_422(false);
    let stride = [(W * 2 + PAD) as u32];
    assert!(matches!(
        convert(PixelFormat::Yuyv, &stride, &[&buf[..buf.len() - 8]]),
        Err(ConvertError::ShortPlane { plane: 0, .. })
    ));
    assert!(matches!(
        convert(PixelFormat::Yuyv, &[4], &[&buf]),
        Err(ConvertError::BadStride {
            plane: 0,
            stride: 4
        })
    ));
    let (i420, s) = i420_buffer(false);
    assert!(matches!(
        convert(PixelFormat::I420, &[s as u32], &[&i420[..i420.len() - 1]]),
        Err(ConvertError::ShortPlane { plane: 2, .. })
    ));
    assert_eq!(
        convert(PixelFormat::Nv12, &[8, 8], &[]),
        Err(ConvertError::MissingPlane(0))
    );
    assert!(matches!(
        convert(PixelFormat::H264, &[8], &[&buf]),
        Err(ConvertError::NotRaw(PixelFormat::H264))
    ));
}

/// Found by fuzzing (`fuzz/run.sh convert`): a driver reporting a width or height of 0 or 1
/// made the row copies panic (`chunks_exact_mut(0)`) on the capture thread.
#[test]
fn sizes_under_two_are_errors_not_panics() {
    for format in PixelFormat::BY_COST {
        for (width, height) in [(0, 4), (1, 4), (8, 0), (8, 1), (0, 0)] {
            let mut converter = Converter::new(format, width, height, &[]);
            let result = converter.convert(&[&[0u8; 64], &[0; 64], &[0; 64]], &mut [0; 64]);
            let expected = ConvertError::TooSmall {
                width: width as usize,
                height: height as usize,
            };
            assert_eq!(result, Err(expected), "{format} {width}x{height}");
        }
    }
}

/// Found by fuzzing: a driver-reported size of u32::MAX × u32::MAX overflowed the output length
/// (`width * height * 3`), a panic in a debug build and a wrong buffer size in a release one.
#[test]
fn huge_sizes_and_strides_are_errors_not_panics() {
    for format in PixelFormat::BY_COST {
        let mut converter = Converter::new(format, u32::MAX, u32::MAX, &[u32::MAX; 3]);
        assert_eq!(converter.output_len(), usize::MAX / 2, "{format}");
        let result = converter.convert(&[&[0u8; 64], &[0; 64], &[0; 64]], &mut [0; 64]);
        assert!(
            matches!(result, Err(ConvertError::BadOutput { .. })),
            "{format}: {result:?}"
        );
        // A sane size with absurd strides: refused by the plane checks, which must not wrap (a
        // 32-bit usize on armv7 boards).
        let mut converter = Converter::new(format, 16, 16, &[u32::MAX; 3]);
        let mut out = vec![0; converter.output_len()];
        let planes: [&[u8]; 3] = [&[0; 4096], &[0; 4096], &[0; 4096]];
        assert!(converter.convert(&planes, &mut out).is_err(), "{format}");
    }
}

#[test]
fn odd_sizes_are_cropped_to_even() {
    // 9x5 YUYV (stride 18 plus padding): the output is the 8x4 top-left part.
    let mut converter = Converter::new(PixelFormat::Yuyv, 9, 5, &[(9 * 2 + 2 + PAD) as u32]);
    assert_eq!(converter.output_size(), (8, 4));
    let stride = 9 * 2 + 2 + PAD;
    let mut buf = packed_422(false);
    // Re-lay the 8-wide rows with the wider stride and one more row.
    let rows: Vec<Vec<u8>> = buf
        .chunks(W * 2 + PAD)
        .map(|r| r[..W * 2].to_vec())
        .collect();
    let refs: Vec<&[u8]> = rows
        .iter()
        .map(Vec::as_slice)
        .chain([&[0u8; 18][..]])
        .collect();
    buf = strided(&refs, stride);
    let mut out = vec![0u8; converter.output_len()];
    converter.convert(&[&buf], &mut out).expect("converts");
    assert_eq!(out, expected_i420());
}

/// A 32x16 JPEG: the left half one colour, the right half another (16-pixel blocks, so JPEG's
/// 4:2:0 blocks never mix them).
fn jpeg_two_halves() -> (Vec<u8>, [[u8; 3]; 2]) {
    let (w, h) = (32usize, 16usize);
    let colours = [[200u8, 40, 40], [30, 90, 220]];
    let mut rgb = Vec::with_capacity(w * h * 3);
    for _row in 0..h {
        for col in 0..w {
            rgb.extend_from_slice(&colours[col / 16]);
        }
    }
    let mut out = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut out, 95);
    encoder
        .encode(&rgb, w as u16, h as u16, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    (out, colours)
}

/// JFIF (full-range BT.601) YCbCr of an RGB colour.
fn ycbcr([r, g, b]: [u8; 3]) -> [f64; 3] {
    let (r, g, b) = (f64::from(r), f64::from(g), f64::from(b));
    [
        0.299 * r + 0.587 * g + 0.114 * b,
        128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b,
        128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b,
    ]
}

#[test]
fn mjpeg_decodes_to_the_colours_that_were_encoded() {
    let (jpeg, colours) = jpeg_two_halves();
    let mut converter = Converter::new(PixelFormat::Mjpeg, 32, 16, &[0]);
    let mut out = vec![0u8; converter.output_len()];
    // Padding after the image, as some cameras deliver it, is fine.
    let padded = [jpeg.clone(), vec![0; 100]].concat();
    converter.convert(&[&padded], &mut out).expect("decodes");
    let (y, u, v) = (&out[..512], &out[512..640], &out[640..768]);
    for (half, colour) in colours.iter().enumerate() {
        let [ey, eu, ev] = ycbcr(*colour);
        // The middle of each half, away from the edge between them.
        let (luma_col, chroma_col) = (half * 16 + 8, half * 8 + 4);
        let close = |got: u8, want: f64| (f64::from(got) - want).abs() <= 4.0;
        assert!(
            close(y[8 * 32 + luma_col], ey),
            "Y {} vs {ey}",
            y[8 * 32 + luma_col]
        );
        assert!(
            close(u[4 * 16 + chroma_col], eu),
            "U {} vs {eu}",
            u[4 * 16 + chroma_col]
        );
        assert!(
            close(v[4 * 16 + chroma_col], ev),
            "V {} vs {ev}",
            v[4 * 16 + chroma_col]
        );
    }
}

/// Found by fuzzing (`fuzz/run.sh convert`, after about 500,000 inputs): a corrupt progressive
/// JPEG on which zune-jpeg 0.5.15 fails an assertion in its upsampler, which took down the
/// capture thread.
#[test]
fn a_jpeg_the_decoder_panics_on_is_an_error_and_the_next_frame_decodes() {
    let mut converter = Converter::new(PixelFormat::Mjpeg, 16, 16, &[]);
    let mut out = vec![0u8; converter.output_len()];
    let broken = include_bytes!("fuzz-progressive-16x16.jpg");
    let err = converter.convert(&[broken], &mut out).unwrap_err();
    assert!(err.to_string().contains("decoder failed"), "{err}");
    let mut good = Vec::new();
    jpeg_encoder::Encoder::new(&mut good, 90)
        .encode(&[128; 16 * 16 * 3], 16, 16, jpeg_encoder::ColorType::Rgb)
        .expect("encodes");
    converter
        .convert(&[&good], &mut out)
        .expect("the next frame decodes");
}

#[test]
fn truncated_garbage_and_wrong_size_mjpeg_are_clear_errors_and_the_next_frame_decodes() {
    let (jpeg, _) = jpeg_two_halves();
    let mut converter = Converter::new(PixelFormat::Mjpeg, 32, 16, &[0]);
    let mut out = vec![0u8; converter.output_len()];
    let truncated = converter
        .convert(&[&jpeg[..jpeg.len() / 2]], &mut out)
        .unwrap_err();
    assert!(truncated.to_string().contains("truncated"), "{truncated}");
    let garbage: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
    let err = converter.convert(&[&garbage], &mut out).unwrap_err();
    assert!(err.to_string().contains("start-of-image"), "{err}");
    // Valid markers around garbage: the decoder itself must refuse it.
    let mut framed = vec![0xFF, 0xD8];
    framed.extend(&garbage);
    framed.extend([0xFF, 0xD9]);
    assert!(matches!(
        converter.convert(&[&framed], &mut out),
        Err(ConvertError::Jpeg(_))
    ));
    let mut small = Converter::new(PixelFormat::Mjpeg, 64, 32, &[0]);
    let mut small_out = vec![0u8; small.output_len()];
    assert!(matches!(
        small.convert(&[&jpeg], &mut small_out),
        Err(ConvertError::JpegSize {
            width: 32,
            height: 16,
            ..
        })
    ));
    // The decoder is still usable after all that.
    assert!(converter.convert(&[&jpeg], &mut out).is_ok());
}

#[test]
fn format_names_and_costs() {
    assert_eq!(PixelFormat::from_name("yuyv"), Some(PixelFormat::Yuyv));
    assert_eq!(PixelFormat::from_name("MJPEG"), Some(PixelFormat::Mjpeg));
    assert_eq!(PixelFormat::from_name("h264"), Some(PixelFormat::H264));
    assert_eq!(PixelFormat::from_name("I420"), Some(PixelFormat::I420));
    assert_eq!(PixelFormat::from_name("RGB3"), None);
    assert_eq!(
        PixelFormat::from_fourcc(*b"NM12"),
        Some((PixelFormat::Nv12, 2))
    );
    assert!(PixelFormat::I420.cost() < PixelFormat::Nv12.cost());
    assert!(PixelFormat::Nv12.cost() < PixelFormat::Yuyv.cost());
    assert!(PixelFormat::Yuyv.cost() < PixelFormat::Mjpeg.cost());
}

/// Wide rows, where SIMD code has a main loop and a tail (yuvutils-rs 0.8.3 got the tail wrong).
#[test]
fn packed_422_rows_keep_their_last_pixels() {
    for w in [16usize, 34, 64, 330, 1280] {
        let h = 4;
        let y: Vec<u8> = (0..w * h).map(|i| (i * 7 % 200) as u8 + 16).collect();
        let mut packed = Vec::new();
        for row in 0..h {
            for col in (0..w).step_by(2) {
                packed.extend([y[row * w + col], 100, y[row * w + col + 1], 150]);
            }
        }
        let mut c = Converter::new(PixelFormat::Yuyv, w as u32, h as u32, &[(w * 2) as u32]);
        let mut out = vec![0u8; c.output_len()];
        c.convert(&[&packed], &mut out).unwrap();
        assert_eq!(&out[..w * h], &y[..], "luma at width {w}");
        assert!(
            out[w * h..w * h + w * h / 4].iter().all(|&u| u == 100),
            "U at width {w}"
        );
        assert!(
            out[w * h + w * h / 4..].iter().all(|&v| v == 150),
            "V at width {w}"
        );
    }
}
