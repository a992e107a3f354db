//! The uncompressed paths: planar and semi-planar 4:2:0 (copies and a de-interleave) and packed
//! 4:2:2 (a repack). Each checks its planes against size and stride first.

use super::ConvertError;

/// A plane and its stride in bytes.
pub(super) type Plane<'a> = (&'a [u8], usize);

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
    // Saturating: a hostile stride times the rows can overflow (easily with a 32-bit usize),
    // and an impossible length must fail the check below rather than wrap past it.
    let needed = match rows.checked_sub(1) {
        None => 0,
        Some(last) => last.saturating_mul(stride).saturating_add(row_len),
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
pub(super) fn from_i420(
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
pub(super) fn from_nv12(
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

/// Packed 4:2:2 (YUYV or UYVY) → I420: luma copied, each chroma sample the average of the two
/// rows it covers.
///
/// A plain loop over pairs of rows, which the compiler vectorises. yuvutils-rs 0.8.3 (the
/// developers' guide's choice) was tried first: its SSE and AVX2 paths leave the last 16 luma
/// samples of every row at zero (`packed_422_rows_keep_their_last_pixels` catches it), and its
/// NEON path on the boards could not be checked, so it is not used.
pub(super) fn from_packed_422(
    w: usize,
    h: usize,
    src: Plane<'_>,
    uyvy: bool,
    out: &mut [u8],
) -> Result<(), ConvertError> {
    check(0, src, w.saturating_mul(2), h)?;
    let (data, stride) = src;
    let (out_y, out_u, out_v) = out_planes(out, w, h);
    let cw = w / 2;
    // Byte offsets of Y0, U, Y1, V within a 4-byte macropixel.
    let (y0, u, y1, v) = if uyvy { (1, 0, 3, 2) } else { (0, 1, 2, 3) };
    for pair in 0..h / 2 {
        let top = &data[2 * pair * stride..][..w * 2];
        let bottom = &data[(2 * pair + 1) * stride..][..w * 2];
        let (y_top, y_bottom) = out_y[2 * pair * w..(2 * pair + 2) * w].split_at_mut(w);
        let u_row = &mut out_u[pair * cw..(pair + 1) * cw];
        let v_row = &mut out_v[pair * cw..(pair + 1) * cw];
        for (i, (a, b)) in top.chunks_exact(4).zip(bottom.chunks_exact(4)).enumerate() {
            y_top[2 * i] = a[y0];
            y_top[2 * i + 1] = a[y1];
            y_bottom[2 * i] = b[y0];
            y_bottom[2 * i + 1] = b[y1];
            u_row[i] = (u16::from(a[u]) + u16::from(b[u])).div_ceil(2) as u8;
            v_row[i] = (u16::from(a[v]) + u16::from(b[v])).div_ceil(2) as u8;
        }
    }
    Ok(())
}
