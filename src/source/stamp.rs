//! The frame stamp: a machine-readable block pattern in the top-left corner of each picture that
//! carries the frame's sequence number and capture time through the encoder, the network and the
//! browser's decoder, so a viewer can measure glass-to-glass latency and spot lost frames.
//!
//! # Format (a browser-side reader implements this same spec; change both or neither)
//!
//! **Payload**, 14 bytes, big-endian:
//!
//! | bytes  | field        | meaning                                                       |
//! |--------|--------------|---------------------------------------------------------------|
//! | 0..4   | `seq`        | `u32`, the low 32 bits of the frame's sequence number         |
//! | 4..12  | `capture_us` | `u64`, capture time in microseconds since the Unix epoch      |
//! | 12..14 | `crc`        | `u16`, CRC-16/CCITT-FALSE of bytes 0..12                      |
//!
//! CRC-16/CCITT-FALSE: polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR
//! (check value: `"123456789"` → 0x29B1).
//!
//! The payload is 112 bits, numbered from the most significant bit of byte 0 (bit 0) to the
//! least significant bit of byte 13 (bit 111).
//!
//! **Layout.** Cell size `c` = 16 px if the picture width is at least 480, else 8 px.
//! `cells_per_row = floor(width / c)`. Bit `i` fills the `c`×`c` square whose top-left pixel is
//! `((i % cells_per_row) * c, (i / cells_per_row) * c)`. The stamp takes
//! `ceil(112 / cells_per_row)` cell rows from the top of the picture; it must fit in the height.
//!
//! **Writing.** Every luma sample of a cell is 235 for a 1 bit and 16 for a 0 bit. The chroma
//! samples (U and V) covering each drawn cell (the `c/2`×`c/2` chroma square at
//! `(col * c/2, row * c/2)`) are 128, so the cells are neutral grey/white/black in RGB.
//!
//! **Reading.** For each cell, average the luma over its central `c/2`×`c/2` square (luma pixels
//! `c/4 .. c/4 + c/2` in both directions from the cell's corner); the bit is 1 if the average is
//! at least 126. Rebuild the 14 bytes and accept them only if the CRC matches.
//!
//! Cell sizes of 8 and 16 px line up with the encoder's 8×8 transforms and 16×16 macroblocks, and
//! the extreme luma levels leave wide margins, so the stamp survives low-bitrate H.264.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::i420::I420Mut;

/// Payload length in bytes.
pub(crate) const PAYLOAD_LEN: usize = 14;
/// Payload length in bits (one cell each).
pub(crate) const PAYLOAD_BITS: usize = PAYLOAD_LEN * 8;

const LUMA_ONE: u8 = 235;
const LUMA_ZERO: u8 = 16;
const CHROMA_NEUTRAL: u8 = 128;
/// Roughly mid-way between `LUMA_ZERO` and `LUMA_ONE`.
#[cfg(any(test, feature = "client"))]
const LUMA_THRESHOLD: u32 = 126;

/// What a stamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Low 32 bits of the frame's sequence number.
    pub seq: u32,
    /// Capture time, microseconds since the Unix epoch.
    pub capture_us: u64,
}

impl Stamp {
    /// The 14-byte payload, CRC included.
    pub(crate) fn to_bytes(self) -> [u8; PAYLOAD_LEN] {
        let mut bytes = [0u8; PAYLOAD_LEN];
        bytes[0..4].copy_from_slice(&self.seq.to_be_bytes());
        bytes[4..12].copy_from_slice(&self.capture_us.to_be_bytes());
        let crc = crc16_ccitt_false(&bytes[..12]);
        bytes[12..14].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    /// Parses a payload; None if the CRC does not match.
    #[cfg(any(test, feature = "client"))]
    pub(crate) fn from_bytes(bytes: &[u8; PAYLOAD_LEN]) -> Option<Stamp> {
        let crc = u16::from_be_bytes([bytes[12], bytes[13]]);
        if crc16_ccitt_false(&bytes[..12]) != crc {
            return None;
        }
        let mut seq = [0u8; 4];
        seq.copy_from_slice(&bytes[0..4]);
        let mut capture_us = [0u8; 8];
        capture_us.copy_from_slice(&bytes[4..12]);
        Some(Stamp {
            seq: u32::from_be_bytes(seq),
            capture_us: u64::from_be_bytes(capture_us),
        })
    }
}

/// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final XOR).
pub(crate) fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xffff;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// The stamp's place in a picture of a given width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Cell edge in luma pixels (8 or 16).
    cell: usize,
    cells_per_row: usize,
    rows: usize,
}

impl Layout {
    /// None if the picture is narrower than one cell.
    fn for_width(width: u32) -> Option<Layout> {
        let cell = if width >= 480 { 16 } else { 8 };
        let cells_per_row = width as usize / cell;
        if cells_per_row == 0 {
            return None;
        }
        Some(Layout {
            cell,
            cells_per_row,
            rows: PAYLOAD_BITS.div_ceil(cells_per_row),
        })
    }

    /// The stamp of a picture twice as wide, after a 2:1 downscale (the low encoding's
    /// pictures carry their source's stamp that way).
    #[cfg(any(test, feature = "client"))]
    fn halved(width: u32, height: u32) -> Option<Layout> {
        let full = Layout::for_width(width.checked_mul(2)?)?;
        let layout = Layout {
            cell: full.cell / 2,
            ..full
        };
        (layout.height_px() <= height as usize
            && layout.cells_per_row * layout.cell <= width as usize)
            .then_some(layout)
    }

    /// None if the stamp does not fit in the picture.
    fn for_picture(width: u32, height: u32) -> Option<Layout> {
        Layout::for_width(width).filter(|layout| layout.height_px() <= height as usize)
    }

    fn height_px(&self) -> usize {
        self.rows * self.cell
    }

    /// Top-left luma pixel (x, y) of the cell that carries `bit`.
    fn cell_origin(&self, bit: usize) -> (usize, usize) {
        (
            (bit % self.cells_per_row) * self.cell,
            (bit / self.cells_per_row) * self.cell,
        )
    }
}

/// Height in pixels of the stamp in a picture of this width (`u32::MAX` if the picture is
/// narrower than one cell, as no height is enough then).
pub(crate) fn stamp_rows_px(width: u32) -> u32 {
    Layout::for_width(width).map_or(u32::MAX, |layout| layout.height_px() as u32)
}

/// True if a stamp fits in a picture of this size.
pub(crate) fn fits(width: u32, height: u32) -> bool {
    Layout::for_picture(width, height).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DoesNotFit {
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Display for DoesNotFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a frame stamp does not fit in a {}x{} picture",
            self.width, self.height
        )
    }
}

impl std::error::Error for DoesNotFit {}

/// Draws the stamp into the top-left corner of the picture.
pub(crate) fn write(planes: &mut I420Mut<'_>, stamp: &Stamp) -> Result<(), DoesNotFit> {
    let (width, height) = (planes.width() as u32, planes.height() as u32);
    let layout = Layout::for_picture(width, height).ok_or(DoesNotFit { width, height })?;
    let bytes = stamp.to_bytes();
    let cell = layout.cell;
    for bit in 0..PAYLOAD_BITS {
        let one = bytes[bit / 8] & (0x80 >> (bit % 8)) != 0;
        let luma = if one { LUMA_ONE } else { LUMA_ZERO };
        let (x, y) = layout.cell_origin(bit);
        for row in y..y + cell {
            planes.y_row(row)[x..x + cell].fill(luma);
        }
        let (cx, cy, chroma_cell) = (x / 2, y / 2, cell / 2);
        for row in cy..cy + chroma_cell {
            let (u, v) = planes.uv_rows(row);
            u[cx..cx + chroma_cell].fill(CHROMA_NEUTRAL);
            v[cx..cx + chroma_cell].fill(CHROMA_NEUTRAL);
        }
    }
    Ok(())
}

/// Reads a stamp from a luma plane. None if the picture is too small for a stamp, the plane is
/// shorter than its size says, or the CRC does not match (a damaged or missing stamp).
#[cfg(any(test, feature = "client"))]
pub(crate) fn read(y_plane: &[u8], width: u32, height: u32, stride: usize) -> Option<Stamp> {
    [
        Layout::for_picture(width, height),
        Layout::halved(width, height),
    ]
    .into_iter()
    .flatten()
    .find_map(|layout| read_layout(y_plane, width, stride, layout))
}

#[cfg(any(test, feature = "client"))]
fn read_layout(y_plane: &[u8], width: u32, stride: usize, layout: Layout) -> Option<Stamp> {
    let used_width = layout.cells_per_row * layout.cell;
    if stride < width as usize || y_plane.len() < (layout.height_px() - 1) * stride + used_width {
        return None;
    }
    let (inset, probe) = (layout.cell / 4, layout.cell / 2);
    let mut bytes = [0u8; PAYLOAD_LEN];
    for bit in 0..PAYLOAD_BITS {
        let (x, y) = layout.cell_origin(bit);
        let (x, y) = (x + inset, y + inset);
        let sum: u32 = (y..y + probe)
            .map(|row| {
                let start = row * stride + x;
                y_plane[start..start + probe]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>()
            })
            .sum();
        let average = sum / (probe * probe) as u32;
        if average >= LUMA_THRESHOLD {
            bytes[bit / 8] |= 0x80 >> (bit % 8);
        }
    }
    Stamp::from_bytes(&bytes)
}

/// Converts monotonic capture instants to wall-clock time.
///
/// The browser benchmark compares stamps with its own wall clock on the same host, so stamps
/// carry Unix time. Reading `SystemTime` per frame would let a clock step (NTP) make frame times
/// jump or run backwards; instead a source records one (`Instant`, `SystemTime`) pair when it
/// starts and converts every capture `Instant` through it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WallClockAnchor {
    instant: Instant,
    epoch_us: u64,
}

impl WallClockAnchor {
    /// Anchors at the current time.
    pub(crate) fn now() -> Self {
        WallClockAnchor::new(Instant::now(), SystemTime::now())
    }

    /// Anchors at a given pair of simultaneous readings of both clocks.
    pub(crate) fn new(instant: Instant, wall: SystemTime) -> Self {
        let epoch_us = wall
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_micros() as u64);
        WallClockAnchor { instant, epoch_us }
    }

    /// Microseconds since the Unix epoch at monotonic time `at`.
    pub(crate) fn to_epoch_us(self, at: Instant) -> u64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.epoch_us.saturating_add(after.as_micros() as u64),
            None => {
                let before = self.instant.duration_since(at);
                self.epoch_us.saturating_sub(before.as_micros() as u64)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SAMPLE: Stamp = Stamp {
        seq: 0xdead_beef,
        capture_us: 1_732_500_000_123_456,
    };

    fn stamped(width: u32, height: u32, stamp: &Stamp) -> Vec<u8> {
        // Mid-grey background: the worst case for telling bits apart.
        let mut buf = vec![128u8; (width * height * 3 / 2) as usize];
        let mut planes = I420Mut::packed(&mut buf, width, height).expect("valid size");
        write(&mut planes, stamp).expect("stamp fits");
        buf
    }

    #[test]
    fn crc_matches_the_catalogue_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29b1);
    }

    #[test]
    fn payload_is_big_endian_with_crc() {
        let bytes = Stamp {
            seq: 0x0102_0304,
            capture_us: 0x0506_0708_090a_0b0c,
        }
        .to_bytes();
        assert_eq!(&bytes[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let crc = crc16_ccitt_false(&bytes[..12]);
        assert_eq!(bytes[12..], crc.to_be_bytes());
    }

    #[test]
    fn layout_follows_the_spec() {
        // 640 wide: 16 px cells, 40 per row, 3 rows.
        assert_eq!(stamp_rows_px(640), 48);
        // 1280: 80 per row, 2 rows. 1920: 120 per row, 1 row.
        assert_eq!(stamp_rows_px(1280), 32);
        assert_eq!(stamp_rows_px(1920), 16);
        // 160: 8 px cells, 20 per row, 6 rows. 479 is still 8 px: 59 per row, 2 rows.
        assert_eq!(stamp_rows_px(160), 48);
        assert_eq!(stamp_rows_px(479), 16);
        assert_eq!(stamp_rows_px(7), u32::MAX);
        assert!(fits(160, 48) && !fits(160, 46));
    }

    #[test]
    fn cells_are_where_the_spec_puts_them() {
        let (width, height) = (160, 64);
        let buf = stamped(width, height, &SAMPLE);
        let bytes = SAMPLE.to_bytes();
        let stride = width as usize;
        // Bit 21 is in cell column 1, row 1 (20 cells per row): pixels (8..16, 8..16).
        let bit21 = bytes[2] & (0x80 >> 5) != 0;
        let expected = if bit21 { LUMA_ONE } else { LUMA_ZERO };
        assert!(
            (8..16).all(|y| (8..16).all(|x| buf[y * stride + x] == expected)),
            "cell of bit 21 is not uniformly {expected}"
        );
        // Below the stamp's 6 cell rows the picture is untouched.
        assert_eq!(buf[48 * stride], 128);
    }

    #[test]
    fn chroma_of_drawn_cells_is_neutral_and_the_rest_untouched() {
        // 650 wide: 40 cells of 16 px cover 640 px; the last 10 columns are not drawn.
        let (width, height) = (650, 64);
        let mut buf = vec![7u8; (width * height * 3 / 2) as usize];
        let mut planes = I420Mut::packed(&mut buf, width, height).expect("valid size");
        write(&mut planes, &SAMPLE).expect("stamp fits");
        let luma = (width * height) as usize;
        let chroma_stride = width as usize / 2;
        let u = &buf[luma..luma + luma / 4];
        assert!(u[..320].iter().all(|&s| s == CHROMA_NEUTRAL));
        assert!(u[320..chroma_stride].iter().all(|&s| s == 7));
        assert!(buf[..640].iter().all(|&s| s == LUMA_ONE || s == LUMA_ZERO));
        assert!(buf[640..650].iter().all(|&s| s == 7));
    }

    #[test]
    fn a_stamp_reads_back_after_a_2_to_1_downscale() {
        // 1280 wide: 16 px cells; halved to 640, they are 8 px, which the 640 layout is not.
        let (width, height) = (1280, 64);
        let full = stamped(width, height, &SAMPLE);
        let (w, h) = (width as usize / 2, height as usize / 2);
        let half: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (y, x)))
            .map(|(y, x)| {
                let at = |dy: usize, dx: usize| {
                    u32::from(full[(2 * y + dy) * width as usize + 2 * x + dx])
                };
                ((at(0, 0) + at(0, 1) + at(1, 0) + at(1, 1) + 2) / 4) as u8
            })
            .collect();
        assert_eq!(read(&half, w as u32, h as u32, w), Some(SAMPLE));
    }

    #[test]
    fn round_trips_at_both_cell_sizes() {
        for (width, height) in [(160, 120), (478, 64), (640, 480), (1280, 720), (1920, 1080)] {
            let buf = stamped(width, height, &SAMPLE);
            assert_eq!(
                read(&buf, width, height, width as usize),
                Some(SAMPLE),
                "{width}x{height}"
            );
        }
    }

    #[test]
    fn reads_with_a_padded_stride() {
        let (width, height, stride) = (160usize, 64usize, 192usize);
        let mut y = vec![128u8; stride * height];
        let mut u = vec![128u8; stride / 2 * height / 2];
        let mut v = u.clone();
        let mut planes = I420Mut::new(
            width as u32,
            height as u32,
            (&mut y, stride),
            (&mut u, &mut v, stride / 2),
        )
        .expect("valid planes");
        write(&mut planes, &SAMPLE).expect("stamp fits");
        assert_eq!(read(&y, 160, 64, stride), Some(SAMPLE));
    }

    #[test]
    fn a_flipped_cell_fails_the_crc() {
        let (width, height) = (640, 480);
        let mut buf = stamped(width, height, &SAMPLE);
        // Invert the cell of bit 37 (column 37, row 0).
        let stride = width as usize;
        for y in 0..16 {
            for x in 37 * 16..38 * 16 {
                let sample = &mut buf[y * stride + x];
                *sample = if *sample == LUMA_ONE {
                    LUMA_ZERO
                } else {
                    LUMA_ONE
                };
            }
        }
        assert_eq!(read(&buf, width, height, stride), None);
    }

    #[test]
    fn unstamped_or_too_small_pictures_read_nothing() {
        let grey = vec![128u8; 640 * 480];
        assert_eq!(read(&grey, 640, 480, 640), None);
        let black = vec![0u8; 640 * 480];
        assert_eq!(read(&black, 640, 480, 640), None);
        assert_eq!(read(&grey, 64, 64, 64), None);
        // A plane shorter than its stated size.
        assert_eq!(read(&grey[..1000], 640, 480, 640), None);
        let mut buf = vec![0u8; 64 * 64 * 3 / 2];
        let mut planes = I420Mut::packed(&mut buf, 64, 64).expect("valid size");
        assert_eq!(
            write(&mut planes, &SAMPLE),
            Err(DoesNotFit {
                width: 64,
                height: 64
            })
        );
    }

    #[test]
    fn anchor_converts_instants_on_both_sides() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let anchor = WallClockAnchor::new(now, wall);
        let base = 1_700_000_000_000_000;
        assert_eq!(anchor.to_epoch_us(now), base);
        assert_eq!(
            anchor.to_epoch_us(now + Duration::from_millis(1500)),
            base + 1_500_000
        );
        if let Some(earlier) = now.checked_sub(Duration::from_micros(250)) {
            assert_eq!(anchor.to_epoch_us(earlier), base - 250);
        }
    }
}
