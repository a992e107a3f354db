//! The test pattern's scenery: a precomputed I420 picture wider than the frame, drawn once, from
//! which each frame copies a window. Copying is a few memcpys per row, so a frame costs a fraction
//! of a millisecond even at 1080p, while the moving content still gives the encoder real work
//! (edges, gradients, fine stripes that motion search has to follow).
//!
//! The picture wraps around in both directions, so a window may start anywhere.

use crate::source::i420::I420Mut;

pub(super) struct Background {
    width: usize,
    height: usize,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
}

/// 75% colour bars (SMPTE order) and black.
const BARS: [[u8; 3]; 8] = [
    [191, 191, 191],
    [191, 191, 0],
    [0, 191, 191],
    [0, 191, 0],
    [191, 0, 191],
    [191, 0, 0],
    [0, 0, 191],
    [16, 16, 16],
];
const GRID_SPACING: usize = 64;
const GRID_LINE: usize = 2;
const CHECKER: usize = 32;

impl Background {
    /// Draws a `width`×`height` background (both even).
    pub(super) fn new(width: usize, height: usize) -> Self {
        let (width, height) = (width & !1, height & !1);
        let mut y = vec![0u8; width * height];
        let mut u = vec![0u8; width * height / 4];
        let mut v = vec![0u8; width * height / 4];
        for row in 0..height {
            for col in 0..width {
                let rgb = scenery(col, row, width, height);
                y[row * width + col] = luma(rgb);
                if row.is_multiple_of(2) && col.is_multiple_of(2) {
                    let at = row / 2 * (width / 2) + col / 2;
                    (u[at], v[at]) = chroma(rgb);
                }
            }
        }
        Background {
            width,
            height,
            y,
            u,
            v,
        }
    }

    pub(super) fn width(&self) -> usize {
        self.width
    }

    /// Fills `out` with the window whose top-left corner is (`x`, `y`), wrapping around the
    /// edges. Odd coordinates are rounded down so chroma stays aligned. `out` must not be larger
    /// than the background.
    pub(super) fn copy_window(&self, x: usize, y: usize, out: &mut I420Mut<'_>) {
        let (x, y) = ((x % self.width) & !1, (y % self.height) & !1);
        let (out_width, out_height) = (out.width(), out.height());
        debug_assert!(out_width <= self.width && out_height <= self.height);
        for row in 0..out_height {
            let src_row = (y + row) % self.height;
            let src = &self.y[src_row * self.width..(src_row + 1) * self.width];
            copy_wrapped(src, x, out.y_row(row));
        }
        let chroma_width = self.width / 2;
        for row in 0..out_height / 2 {
            let src_row = (y / 2 + row) % (self.height / 2);
            let span = src_row * chroma_width..(src_row + 1) * chroma_width;
            let (u, v) = out.uv_rows(row);
            copy_wrapped(&self.u[span.clone()], x / 2, u);
            copy_wrapped(&self.v[span], x / 2, v);
        }
    }
}

impl Background {
    /// Like `copy_window`, magnified `zoom_percent / 100` times about the window's centre
    /// (nearest neighbour: a simulated zoom, not a scaler).
    pub(super) fn copy_window_zoomed(
        &self,
        x: usize,
        y: usize,
        zoom_percent: usize,
        out: &mut I420Mut<'_>,
    ) {
        let zoom = zoom_percent.max(100);
        let (out_width, out_height) = (out.width(), out.height());
        let (x, y) = (x & !1, y & !1);
        // The part of the background seen, centred where the unzoomed window is centred.
        let seen_w = out_width * 100 / zoom;
        let seen_h = out_height * 100 / zoom;
        let left = ((x + out_width / 2 + self.width - seen_w / 2) % self.width) & !1;
        let top = ((y + out_height / 2 + self.height - seen_h / 2) % self.height) & !1;
        let map = |start: usize, seen: usize, out: usize, wrap: usize| -> Vec<usize> {
            (0..out).map(|i| (start + i * seen / out) % wrap).collect()
        };
        let cols = map(left, seen_w, out_width, self.width);
        let rows = map(top, seen_h, out_height, self.height);
        for (row, &src_row) in rows.iter().enumerate() {
            let src = &self.y[src_row * self.width..(src_row + 1) * self.width];
            for (dst, &col) in out.y_row(row).iter_mut().zip(&cols) {
                *dst = src[col];
            }
        }
        let chroma_width = self.width / 2;
        let chroma_cols = map(left / 2, seen_w / 2, out_width / 2, chroma_width);
        let chroma_rows = map(top / 2, seen_h / 2, out_height / 2, self.height / 2);
        for (row, &src_row) in chroma_rows.iter().enumerate() {
            let span = src_row * chroma_width..(src_row + 1) * chroma_width;
            let (u, v) = out.uv_rows(row);
            for (i, &col) in chroma_cols.iter().enumerate() {
                u[i] = self.u[span.start + col];
                v[i] = self.v[span.start + col];
            }
        }
    }
}

/// Copies `dst.len()` bytes of the circular row `src` starting at `from`.
fn copy_wrapped(src: &[u8], from: usize, dst: &mut [u8]) {
    let first = dst.len().min(src.len() - from);
    let (head, tail) = dst.split_at_mut(first);
    head.copy_from_slice(&src[from..from + first]);
    tail.copy_from_slice(&src[..tail.len()]);
}

/// The RGB colour at background pixel (`x`, `y`).
fn scenery(x: usize, y: usize, width: usize, height: usize) -> [u8; 3] {
    let base = if y < height * 55 / 100 {
        // Two sets of bars across the width.
        BARS[(x * 16 / width) % BARS.len()]
    } else if y < height * 70 / 100 {
        // A grey ramp up and back down, so it joins itself seamlessly where the picture wraps.
        let up = (x * 2 * 255 / width) as i32;
        let level = (255 - (up - 255).abs()) as u8;
        [level, level, level]
    } else if x < width / 2 {
        let (cx, cy) = (x / CHECKER, y / CHECKER);
        if (cx + cy).is_multiple_of(2) {
            BARS[(cx / 2 + cy) % 6]
        } else {
            [40, 40, 40]
        }
    } else if ((x + y) / 16).is_multiple_of(2) {
        // Fine diagonal stripes: detail that motion search has to track.
        [220, 200, 60]
    } else {
        [30, 60, 120]
    };
    let on_grid = x % GRID_SPACING < GRID_LINE || y % GRID_SPACING < GRID_LINE;
    if on_grid {
        // Contrast with whatever is underneath.
        if luma(base) > 128 {
            [24, 24, 24]
        } else {
            [230, 230, 230]
        }
    } else {
        base
    }
}

/// BT.601 limited-range luma of an RGB colour.
fn luma([r, g, b]: [u8; 3]) -> u8 {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

/// BT.601 limited-range (U, V) of an RGB colour.
fn chroma([r, g, b]: [u8; 3]) -> (u8, u8) {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    let u = ((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128;
    let v = ((112 * r - 94 * g - 18 * b + 128) >> 8) + 128;
    (u as u8, v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_conversion_matches_bt601_limited_range() {
        assert_eq!(luma([0, 0, 0]), 16);
        assert_eq!(luma([255, 255, 255]), 235);
        assert_eq!(chroma([128, 128, 128]), (128, 128));
        // Pure blue: U high, V slightly low.
        let (u, v) = chroma([0, 0, 255]);
        assert!(u > 230 && v < 128);
    }

    #[test]
    fn window_wraps_around_the_right_and_bottom_edges() {
        let bg = Background::new(64, 32);
        let mut buf = vec![0u8; 16 * 8 * 3 / 2];
        let mut out = I420Mut::packed(&mut buf, 16, 8).expect("valid size");
        // Starts 6 columns before the right edge and 4 rows before the bottom.
        bg.copy_window(58, 28, &mut out);
        for row in 0..8 {
            let src_row = (28 + row) % 32;
            for col in 0..16 {
                let src_col = (58 + col) % 64;
                assert_eq!(
                    buf[row * 16 + col],
                    bg.y[src_row * 64 + src_col],
                    "luma at ({col}, {row})"
                );
            }
        }
        let u_out = &buf[16 * 8..16 * 8 + 32];
        for row in 0..4 {
            for col in 0..8 {
                let (src_row, src_col) = ((14 + row) % 16, (29 + col) % 32);
                assert_eq!(u_out[row * 8 + col], bg.u[src_row * 32 + src_col]);
            }
        }
    }

    #[test]
    fn background_has_structure_to_encode() {
        let bg = Background::new(256, 128);
        let distinct: std::collections::BTreeSet<u8> = bg.y.iter().copied().collect();
        assert!(distinct.len() > 50, "only {} luma levels", distinct.len());
    }
}
