//! The "no signal" picture viewers see while the camera is gone: dark grey, a large NO SIGNAL,
//! the reason, and a seconds counter so it is visibly live. Drawn with the same I420 view the
//! test pattern uses; carries no frame stamp, so a viewer can tell it from real frames.

use std::time::Instant;

use super::i420::I420Mut;
use super::{Frame, FramePool};

const BACKGROUND: (u8, u8, u8) = (40, 128, 128);
const TEXT_LUMA: u8 = 220;
/// A thin bar of dim colours along the bottom, so the placeholder is obviously a picture.
const BAR_COLOURS: [(u8, u8, u8); 4] =
    [(60, 160, 100), (70, 90, 150), (60, 100, 90), (90, 128, 128)];

pub(crate) struct NoSignal {
    width: u32,
    height: u32,
    /// Background, bars, title and reason, drawn once.
    base: Vec<u8>,
    pool: FramePool,
}

impl NoSignal {
    /// A placeholder of `width`×`height` (even, at least 16×16) saying `reason`.
    pub(crate) fn new(width: u32, height: u32, reason: &str) -> NoSignal {
        let (width, height) = (width.max(16) & !1, height.max(16) & !1);
        let len = width as usize * height as usize * 3 / 2;
        let mut base = vec![0u8; len];
        if let Some(mut planes) = I420Mut::packed(&mut base, width, height) {
            fill(
                &mut planes,
                0,
                height as usize,
                0,
                width as usize,
                BACKGROUND,
            );
            let (w, h) = (width as usize, height as usize);
            let bar_top = (h - h / 12) & !1;
            let bar_width = (w / BAR_COLOURS.len()) & !1;
            for (i, colour) in BAR_COLOURS.iter().enumerate() {
                fill(
                    &mut planes,
                    bar_top,
                    h,
                    i * bar_width,
                    (i + 1) * bar_width,
                    *colour,
                );
            }
            let title_scale = (w / (6 * 12)).max(1);
            let title_y = (h / 2).saturating_sub(7 * title_scale);
            draw_centred(&mut planes, "NO SIGNAL", title_y, title_scale);
            let small = (title_scale / 3).max(1);
            draw_centred(&mut planes, reason, h / 2 + 2 * title_scale, small);
        }
        NoSignal {
            width,
            height,
            base,
            pool: FramePool::new(len),
        }
    }

    /// One placeholder frame; `since` is when the signal was lost (shown in seconds).
    pub(crate) fn frame(&self, seq: u64, captured: Instant, since: Instant) -> Frame {
        let mut data = self.pool.get();
        data.copy_from_slice(&self.base);
        if let Some(mut planes) = I420Mut::packed(&mut data, self.width, self.height) {
            let h = self.height as usize;
            let scale = (self.width as usize / (6 * 36)).max(1);
            let seconds = captured.saturating_duration_since(since).as_secs();
            let y = (h - h / 12).saturating_sub(10 * scale) & !1;
            draw_centred(&mut planes, &format!("{seconds} S"), y, scale);
        }
        Frame {
            width: self.width,
            height: self.height,
            data,
            seq,
            captured,
        }
    }
}

fn fill(
    planes: &mut I420Mut<'_>,
    top: usize,
    bottom: usize,
    left: usize,
    right: usize,
    (y, u, v): (u8, u8, u8),
) {
    let (w, h) = (planes.width(), planes.height());
    let (right, bottom) = (right.min(w), bottom.min(h));
    for row in top..bottom {
        planes.y_row(row)[left..right].fill(y);
    }
    for row in top / 2..bottom / 2 {
        let (ur, vr) = planes.uv_rows(row);
        ur[left / 2..right / 2].fill(u);
        vr[left / 2..right / 2].fill(v);
    }
}

/// Draws `text` (upper-cased; unknown characters as blanks) centred horizontally at `top`,
/// each font pixel `scale`×`scale`. Whatever does not fit is cut off.
fn draw_centred(planes: &mut I420Mut<'_>, text: &str, top: usize, scale: usize) {
    let (w, h) = (planes.width(), planes.height());
    let chars: Vec<char> = text.to_uppercase().chars().collect();
    let advance = 6 * scale;
    let fit = (w / advance).min(chars.len());
    let left = (w - fit * advance) / 2;
    for (i, c) in chars.iter().take(fit).enumerate() {
        let rows = glyph(*c);
        for (gy, bits) in rows.iter().enumerate() {
            for gx in 0..5 {
                if bits & (0x10 >> gx) == 0 {
                    continue;
                }
                let x = left + i * advance + gx * scale;
                for dy in 0..scale {
                    let y = top + gy * scale + dy;
                    if y < h && x + scale <= w {
                        planes.y_row(y)[x..x + scale].fill(TEXT_LUMA);
                    }
                }
            }
        }
    }
}

/// A 5×7 font: each row's five pixels in the low bits, leftmost in bit 4.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '_' => [0, 0, 0, 0, 0, 0, 0x1F],
        '/' => [0x01, 0x01, 0x02, 0x04, 0x08, 0x10, 0x10],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::stamp;

    #[test]
    fn the_placeholder_shows_text_on_grey_and_has_no_stamp() {
        let placeholder = NoSignal::new(320, 240, "camera gone");
        let now = Instant::now();
        let frame = placeholder.frame(7, now, now);
        assert_eq!((frame.width, frame.height, frame.seq), (320, 240, 7));
        assert!(stamp::read(frame.y(), 320, 240, 320).is_none());
        let y = frame.y();
        let bright = y.iter().filter(|&&v| v == TEXT_LUMA).count();
        let grey = y.iter().filter(|&&v| v == BACKGROUND.0).count();
        assert!(bright > 500, "text pixels: {bright}");
        assert!(grey > y.len() / 2, "background pixels: {grey}");
        // The title sits in the middle rows.
        let middle = &y[120 * 320 - 8 * 320..120 * 320];
        assert!(middle.contains(&TEXT_LUMA));
    }

    #[test]
    fn the_counter_changes_the_picture_and_odd_or_tiny_sizes_are_safe() {
        let placeholder = NoSignal::new(320, 240, "x");
        let start = Instant::now();
        let a = placeholder.frame(1, start, start);
        let b = placeholder.frame(2, start + std::time::Duration::from_secs(3), start);
        assert_ne!(&a.data[..], &b.data[..]);
        let tiny = NoSignal::new(3, 5, "a very long reason that cannot fit anywhere at all");
        assert_eq!((tiny.width, tiny.height), (16, 16));
        let _ = tiny.frame(0, start, start);
    }
}
