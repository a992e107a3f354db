//! The H.264 level of a stream (ITU-T H.264 Table A-1): the smallest level whose limits allow
//! its picture size, frame rate and bitrate. The encoder writes it into every SPS, and the SDP
//! answer's `profile-level-id` carries the same, so a strict decoder (Safari) finds what it
//! was promised.

/// (level_idc, max macroblocks per second, max frame size in macroblocks, max baseline
/// bitrate in kbit/s).
const LEVELS: [(u8, u64, u64, u64); 15] = [
    (10, 1_485, 99, 64),
    (11, 3_000, 396, 192),
    (12, 6_000, 396, 384),
    (13, 11_880, 396, 768),
    (20, 11_880, 396, 2_000),
    (21, 19_800, 792, 4_000),
    (22, 20_250, 1_620, 4_000),
    (30, 40_500, 1_620, 10_000),
    (31, 108_000, 3_600, 14_000),
    (32, 216_000, 5_120, 20_000),
    (40, 245_760, 8_192, 20_000),
    (41, 245_760, 8_192, 50_000),
    (42, 522_240, 8_704, 50_000),
    (50, 589_824, 22_080, 135_000),
    (51, 983_040, 36_864, 240_000),
];

/// The level_idc (31 for level 3.1) for a stream of this size, rate and bitrate.
pub(crate) fn for_stream(width: u32, height: u32, fps: u32, kbps: u32) -> u8 {
    let (w, h) = (
        u64::from(width.div_ceil(16)),
        u64::from(height.div_ceil(16)),
    );
    let frame = w * h;
    let per_second = frame * u64::from(fps);
    LEVELS
        .iter()
        .find(|&&(_, max_mbps, max_fs, max_kbps)| {
            // Neither side may be longer than the square root of 8 × the frame size limit.
            let side = ((8 * max_fs) as f64).sqrt() as u64;
            frame <= max_fs
                && per_second <= max_mbps
                && u64::from(kbps) <= max_kbps
                && w <= side
                && h <= side
        })
        .map_or(52, |&(level, ..)| level)
}

/// OpenH264's name for the level.
pub(crate) fn openh264(level: u8) -> openh264::encoder::Level {
    use openh264::encoder::Level;
    match level {
        ..=10 => Level::Level_1_0,
        11 => Level::Level_1_1,
        12 => Level::Level_1_2,
        13 => Level::Level_1_3,
        20 => Level::Level_2_0,
        21 => Level::Level_2_1,
        22 => Level::Level_2_2,
        30 => Level::Level_3_0,
        31 => Level::Level_3_1,
        32 => Level::Level_3_2,
        40 => Level::Level_4_0,
        41 => Level::Level_4_1,
        42 => Level::Level_4_2,
        50 => Level::Level_5_0,
        _ => Level::Level_5_1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_sizes_get_the_levels_their_decoders_expect() {
        assert_eq!(for_stream(640, 480, 30, 800), 30);
        assert_eq!(for_stream(1280, 720, 30, 1500), 31);
        assert_eq!(for_stream(1280, 720, 60, 3000), 32);
        assert_eq!(for_stream(1920, 1080, 30, 4000), 40);
        assert_eq!(for_stream(1920, 1080, 30, 30_000), 41, "bitrate counts too");
        assert_eq!(for_stream(320, 240, 30, 400), 13);
        assert_eq!(for_stream(3840, 2160, 30, 20_000), 51);
    }
}
