//! Packed 24-bit RGB → I420, for helpers that only deliver RGB (libcamera's vimc pipeline, the
//! virtual camera the VM test uses, offers nothing else). BT.601 limited range, the same
//! matrix the rest of rtcam assumes; chroma from the average of each 2×2 block.

/// Byte order of a packed 24-bit pixel in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RgbOrder {
    /// R, G, B (libcamera's `BGR888`, V4L2's `RGB3`).
    Rgb,
    /// B, G, R (libcamera's `RGB888`, V4L2's `BGR3`).
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "cam is asked for R, G, B; kept for pipelines without it"
        )
    )]
    Bgr,
}

/// Converts one `width`×`height` frame (both even, no row padding) into `out` (I420, tightly
/// packed). Lengths are checked; a mismatch is an error, never a panic.
pub(crate) fn to_i420(
    order: RgbOrder,
    rgb: &[u8],
    width: usize,
    height: usize,
    out: &mut [u8],
) -> Result<(), String> {
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
        return Err(format!("{width}x{height}: odd sizes are not converted"));
    }
    let luma = width * height;
    if rgb.len() != luma * 3 || out.len() != luma * 3 / 2 {
        return Err(format!(
            "{width}x{height}: {} RGB bytes for {} I420 bytes",
            rgb.len(),
            out.len()
        ));
    }
    let (r_at, b_at) = match order {
        RgbOrder::Rgb => (0, 2),
        RgbOrder::Bgr => (2, 0),
    };
    let (y_plane, chroma) = out.split_at_mut(luma);
    let (u_plane, v_plane) = chroma.split_at_mut(luma / 4);
    let pixel = |x: usize, y: usize| {
        let p = &rgb[(y * width + x) * 3..][..3];
        (i32::from(p[r_at]), i32::from(p[1]), i32::from(p[b_at]))
    };
    for y in 0..height {
        for x in 0..width {
            let (r, g, b) = pixel(x, y);
            y_plane[y * width + x] = clamp(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
        }
    }
    for cy in 0..height / 2 {
        for cx in 0..width / 2 {
            let (mut r, mut g, mut b) = (0, 0, 0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let p = pixel(cx * 2 + dx, cy * 2 + dy);
                r += p.0;
                g += p.1;
                b += p.2;
            }
            let (r, g, b) = (r / 4, g / 4, b / 4);
            let at = cy * (width / 2) + cx;
            u_plane[at] = clamp(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
            v_plane[at] = clamp(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
        }
    }
    Ok(())
}

fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(order: RgbOrder, rgb: [u8; 3]) -> Vec<u8> {
        let px = match order {
            RgbOrder::Rgb => rgb,
            RgbOrder::Bgr => [rgb[2], rgb[1], rgb[0]],
        };
        let mut out = vec![0u8; 4 * 2 * 3 / 2];
        to_i420(order, &px.repeat(8), 4, 2, &mut out).expect("converts");
        out
    }

    #[test]
    fn primaries_land_on_their_bt601_values_in_either_byte_order() {
        for order in [RgbOrder::Rgb, RgbOrder::Bgr] {
            // White, black and red: Y, then U, then V.
            let white = solid(order, [255, 255, 255]);
            assert_eq!((white[0], white[8], white[10]), (235, 128, 128));
            let black = solid(order, [0, 0, 0]);
            assert_eq!((black[0], black[8], black[10]), (16, 128, 128));
            let red = solid(order, [255, 0, 0]);
            assert_eq!((red[0], red[8], red[10]), (82, 90, 240), "{order:?}");
        }
    }

    #[test]
    fn wrong_lengths_and_odd_sizes_are_errors() {
        let mut out = vec![0u8; 12];
        assert!(to_i420(RgbOrder::Rgb, &[0; 23], 4, 2, &mut out).is_err());
        assert!(to_i420(RgbOrder::Rgb, &[0; 24], 4, 2, &mut out[..11]).is_err());
        assert!(to_i420(RgbOrder::Rgb, &[0; 9], 3, 1, &mut [0; 4]).is_err());
    }
}
