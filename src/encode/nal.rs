//! H.264 Annex B helpers: split a byte stream into NAL units and classify them.
//!
//! Annex B separates NAL units with start codes, `00 00 01` or `00 00 00 01` (the 4-byte form is
//! a `zero_byte` followed by the 3-byte code). A NAL unit never ends in a zero byte (its RBSP
//! ends with a stop bit), so zero bytes right before a start code belong to the separator and are
//! stripped. Zero bytes inside a NAL unit are left alone; emulation prevention (`00 00 03`) is not
//! undone here because nothing in rtcam needs the RBSP.

/// Coded slice of a non-IDR picture.
#[cfg(test)]
pub(crate) const NAL_SLICE: u8 = 1;
/// Coded slice of an IDR picture.
pub(crate) const NAL_IDR: u8 = 5;
/// Sequence parameter set.
pub(crate) const NAL_SPS: u8 = 7;
/// Picture parameter set.
pub(crate) const NAL_PPS: u8 = 8;

/// The NAL units of an Annex B buffer, without their start codes, in order.
///
/// Bytes before the first start code are ignored, and so are empty units (two start codes in a
/// row, or a start code at the very end).
pub(crate) fn nal_units(annex_b: &[u8]) -> NalUnits<'_> {
    let rest = match find_start_code(annex_b, 0) {
        Some((_, payload)) => &annex_b[payload..],
        None => &[],
    };
    NalUnits { rest }
}

/// Iterator returned by [`nal_units`].
#[derive(Clone, Debug)]
pub(crate) struct NalUnits<'a> {
    /// Everything after the last start code consumed.
    rest: &'a [u8],
}

impl<'a> Iterator for NalUnits<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        while !self.rest.is_empty() {
            let (unit, rest) = match find_start_code(self.rest, 0) {
                Some((code, payload)) => (&self.rest[..code], &self.rest[payload..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            let unit = trim_trailing_zeros(unit);
            if !unit.is_empty() {
                return Some(unit);
            }
        }
        None
    }
}

/// `nal_unit_type` of a NAL unit (without start code); None for an empty slice.
pub(crate) fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|header| header & 0x1f)
}

/// True if the access unit contains an IDR slice.
pub(crate) fn is_idr(access_unit: &[u8]) -> bool {
    nal_units(access_unit).any(|nal| nal_type(nal) == Some(NAL_IDR))
}

/// True if the access unit contains both an SPS and a PPS.
pub(crate) fn has_sps_pps(access_unit: &[u8]) -> bool {
    let mut sps = false;
    let mut pps = false;
    for nal in nal_units(access_unit) {
        match nal_type(nal) {
            Some(NAL_SPS) => sps = true,
            Some(NAL_PPS) => pps = true,
            _ => {}
        }
    }
    sps && pps
}

/// The three bytes after an SPS NAL header: `profile_idc`, the constraint flags byte and
/// `level_idc`, i.e. exactly what SDP's `profile-level-id` spells in hex. None if `sps` is not an
/// SPS or is truncated.
#[cfg(test)]
pub(crate) fn sps_profile_level_id(sps: &[u8]) -> Option<[u8; 3]> {
    if nal_type(sps) != Some(NAL_SPS) {
        return None;
    }
    match sps.get(1..4) {
        Some(&[profile, constraints, level]) => Some([profile, constraints, level]),
        _ => None,
    }
}

/// Finds the first `00 00 01` at or after `from`: returns (index where the start code begins,
/// index of the first payload byte).
fn find_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        // Fast skip: a start code needs data[i + 2] == 1 and two zeros before it.
        match data[i + 2] {
            1 if data[i] == 0 && data[i + 1] == 0 => return Some((i, i + 3)),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

fn trim_trailing_zeros(unit: &[u8]) -> &[u8] {
    let end = unit
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    &unit[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(data: &[u8]) -> Vec<Vec<u8>> {
        nal_units(data).map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn empty_and_no_start_code_give_nothing() {
        assert!(units(&[]).is_empty());
        assert!(units(&[0, 0]).is_empty());
        assert!(units(&[0x67, 0x42, 0, 0]).is_empty());
    }

    #[test]
    fn three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88,
        ];
        assert_eq!(
            units(&data),
            vec![vec![0x67, 0x42], vec![0x68, 0xce], vec![0x65, 0x88]]
        );
    }

    #[test]
    fn start_code_at_end_and_repeated_start_codes_yield_no_empty_units() {
        let data = [0, 0, 1, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1];
        assert_eq!(units(&data), vec![vec![0x09, 0xf0]]);
    }

    #[test]
    fn zero_bytes_inside_a_unit_are_kept() {
        // `00 00 03 00` is emulation prevention, `00 00 02` is not a start code.
        let data = [0, 0, 1, 0x41, 0, 0, 3, 0, 0x10, 0, 0, 2, 0x20];
        assert_eq!(
            units(&data),
            vec![vec![0x41, 0, 0, 3, 0, 0x10, 0, 0, 2, 0x20]]
        );
    }

    #[test]
    fn trailing_zero_bytes_before_the_next_start_code_are_stripped() {
        let data = [0, 0, 1, 0x41, 0x9a, 0, 0, 0, 0, 0, 1, 0x41, 0x9b, 0, 0];
        assert_eq!(units(&data), vec![vec![0x41, 0x9a], vec![0x41, 0x9b]]);
    }

    #[test]
    fn leading_garbage_is_ignored() {
        let data = [0xff, 0x12, 0, 0, 1, 0x41, 0x01];
        assert_eq!(units(&data), vec![vec![0x41, 0x01]]);
    }

    #[test]
    fn classifies_access_units() {
        let idr = [
            0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let idr_bare = [0, 0, 0, 1, 0x65, 0x88];
        let p = [0, 0, 0, 1, 0x41, 0x9a];
        assert!(is_idr(&idr) && has_sps_pps(&idr));
        assert!(is_idr(&idr_bare) && !has_sps_pps(&idr_bare));
        assert!(!is_idr(&p) && !has_sps_pps(&p));
        assert!(!is_idr(&[]));
        assert_eq!(nal_type(&[0x65, 0x88]), Some(NAL_IDR));
        assert_eq!(nal_type(&[]), None);
    }

    #[test]
    fn reads_profile_level_id_from_sps() {
        assert_eq!(
            sps_profile_level_id(&[0x67, 0x42, 0xc0, 0x1f, 0xab]),
            Some([0x42, 0xc0, 0x1f])
        );
        assert_eq!(sps_profile_level_id(&[0x67, 0x42, 0xc0]), None);
        assert_eq!(sps_profile_level_id(&[0x68, 0x42, 0xc0, 0x1f]), None);
    }
}
