//! The uncompressed paths: planar and semi-planar 4:2:0 (copies and a de-interleave) and packed
//! 4:2:2 (yuvutils-rs, SIMD). Each checks its planes against size and stride first.

use yuvutils_rs::{
    BufferStoreMut, YuvPackedImage, YuvPlanarImageMut, uyvy422_to_yuv420, yuyv422_to_yuv420,
};

use super::ConvertError;

/// A plane and its stride in bytes.
pub type Plane<'a> = (&'a [u8], usize);

/// Checks that `rows` rows of `row_len` bytes fit a plane with this stride.
fn check(
    plane: usize,
    (data, stride): Plane<'_>,
    row_len: usize,
    rows: usize,
) -> Result<(), ConvertError> {
    if stride < row_len {
        return Err(ConvertError::BadStride { plane, stride });
    }
    let needed = if rows == 0 {
        0
    } else {
        (rows - 1) * stride + row_len
    };
    if data.len() < needed {
        return Err(ConvertError::ShortPlane {
            plane,
            needed,
            got: data.len(),
        });
    }
    Ok(())
}

/// Splits a packed I420 output buffer into its three planes.
fn out_planes(out: &mut [u8], w: usize, h: usize) -> (&mut [u8], &mut [u8], &mut [u8]) {
    let luma = w * h;
    let (y, chroma) = out.split_at_mut(luma);
    let (u, v) = chroma.split_at_mut(luma / 4);
    (y, u, &mut v[..luma / 4])
}

fn copy_rows(dst: &mut [u8], dst_stride: usize, (src, stride): Plane<'_>, rows: usize) {
    for (row, out) in dst.chunks_exact_mut(dst_stride).take(rows).enumerate() {
        let start = row * stride;
        out.copy_from_slice(&src[start..start + dst_stride]);
    }
}

/// Planar 4:2:0 with any strides: three row-by-row copies.
pub fn from_i420(
    w: usize,
    h: usize,
    y: Plane<'_>,
    u: Plane<'_>,
    v: Plane<'_>,
    out: &mut [u8],
) -> Result<(), ConvertError> {
    let (cw, ch) = (w / 2, h / 2);
    check(0, y, w, h)?;
    check(1, u, cw, ch)?;
    check(2, v, cw, ch)?;
    let (out_y, out_u, out_v) = out_planes(out, w, h);
    copy_rows(out_y, w, y, h);
    copy_rows(out_u, cw, u, ch);
    copy_rows(out_v, cw, v, ch);
    Ok(())
}

/// Y plane plus interleaved chroma (NV12: U first; NV21: V first).
pub fn from_nv12(
    w: usize,
    h: usize,
    y: Plane<'_>,
    uv: Plane<'_>,
    v_first: bool,
    out: &mut [u8],
) -> Result<(), ConvertError> {
    let (cw, ch) = (w / 2, h / 2);
    check(0, y, w, h)?;
    check(1, uv, w, ch)?;
    let (out_y, out_u, out_v) = out_planes(out, w, h);
    copy_rows(out_y, w, y, h);
    let (out_first, out_second) = if v_first {
        (out_v, out_u)
    } else {
        (out_u, out_v)
    };
    let (uv_data, uv_stride) = uv;
    for row in 0..ch {
        let src = &uv_data[row * uv_stride..row * uv_stride + w];
        let first = &mut out_first[row * cw..(row + 1) * cw];
        let second = &mut out_second[row * cw..(row + 1) * cw];
        // A plain zip: the compiler vectorises this de-interleave.
        for ((pair, a), b) in src
            .chunks_exact(2)
            .zip(first.iter_mut())
            .zip(second.iter_mut())
        {
            *a = pair[0];
            *b = pair[1];
        }
    }
    Ok(())
}

/// Packed 4:2:2 (YUYV or UYVY) → I420. `scratch` holds a repacked copy when rows are padded.
pub fn from_packed_422(
    w: usize,
    h: usize,
    src: Plane<'_>,
    uyvy: bool,
    scratch: &mut Vec<u8>,
    out: &mut [u8],
) -> Result<(), ConvertError> {
    check(0, src, w * 2, h)?;
    let row_len = w * 2;
    let (data, stride) = src;
    // yuvutils-rs 0.8 takes only tightly packed input (it checks the length against
    // 2 * width * height whatever the stride), so padded rows are packed first: one memcpy
    // pass, a small fraction of the conversion.
    let data = if stride == row_len {
        &data[..row_len * h]
    } else {
        scratch.clear();
        for row in 0..h {
            scratch.extend_from_slice(&data[row * stride..row * stride + row_len]);
        }
        &scratch[..]
    };
    let stride = row_len;
    let (out_y, out_u, out_v) = out_planes(out, w, h);
    let packed = YuvPackedImage {
        yuy: data,
        yuy_stride: stride as u32,
        width: w as u32,
        height: h as u32,
    };
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(out_y),
        y_stride: w as u32,
        u_plane: BufferStoreMut::Borrowed(out_u),
        u_stride: (w / 2) as u32,
        v_plane: BufferStoreMut::Borrowed(out_v),
        v_stride: (w / 2) as u32,
        width: w as u32,
        height: h as u32,
    };
    let converted = if uyvy {
        uyvy422_to_yuv420(&mut planar, &packed)
    } else {
        yuyv422_to_yuv420(&mut planar, &packed)
    };
    // The sizes were checked above; an error here would be a library disagreement.
    converted.map_err(|e| ConvertError::Library(format!("packed 4:2:2 conversion: {e}")))
}
