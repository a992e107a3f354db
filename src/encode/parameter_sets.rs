//! Keeps every IDR self-contained: SPS and PPS in front of its slices.
//!
//! A viewer that joins mid-stream starts decoding at the next IDR, so that IDR must bring the
//! parameter sets along. OpenH264 (0.9.9 as configured here) does emit them with every IDR,
//! periodic or forced; this is the safety net should an encoder version or setting ever not.

use super::nal::{self, NAL_PPS, NAL_SPS};

/// The latest SPS and PPS seen, each with a 4-byte start code.
#[derive(Default)]
pub(super) struct ParameterSets {
    sps: Vec<u8>,
    pps: Vec<u8>,
}

/// An IDR came without parameter sets before any were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NoParameterSets;

impl ParameterSets {
    /// For an IDR access unit: remembers its SPS and PPS if it has both, otherwise puts the
    /// remembered ones in front of it.
    pub(super) fn complete_idr(
        &mut self,
        access_unit: &mut Vec<u8>,
    ) -> Result<(), NoParameterSets> {
        let (mut sps, mut pps) = (None, None);
        for unit in nal::nal_units(access_unit) {
            match nal::nal_type(unit) {
                Some(NAL_SPS) => sps = Some(unit),
                Some(NAL_PPS) => pps = Some(unit),
                _ => {}
            }
        }
        if let (Some(sps), Some(pps)) = (sps, pps) {
            set_with_start_code(&mut self.sps, sps);
            set_with_start_code(&mut self.pps, pps);
            return Ok(());
        }
        if self.sps.is_empty() || self.pps.is_empty() {
            return Err(NoParameterSets);
        }
        access_unit.splice(0..0, self.sps.iter().chain(&self.pps).copied());
        Ok(())
    }
}

fn set_with_start_code(stored: &mut Vec<u8>, unit: &[u8]) {
    stored.clear();
    stored.extend_from_slice(&[0, 0, 0, 1]);
    stored.extend_from_slice(unit);
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS: [u8; 8] = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f];
    const PPS: [u8; 6] = [0, 0, 0, 1, 0x68, 0xce];
    const IDR: [u8; 6] = [0, 0, 0, 1, 0x65, 0x88];

    #[test]
    fn complete_idr_is_left_alone_and_its_sets_are_remembered() {
        let mut sets = ParameterSets::default();
        let full: Vec<u8> = [&SPS[..], &PPS, &IDR].concat();
        let mut unit = full.clone();
        assert_eq!(sets.complete_idr(&mut unit), Ok(()));
        assert_eq!(unit, full);

        let mut bare = IDR.to_vec();
        assert_eq!(sets.complete_idr(&mut bare), Ok(()));
        assert_eq!(bare, full);
    }

    #[test]
    fn newer_sets_replace_older_ones() {
        let mut sets = ParameterSets::default();
        let mut first: Vec<u8> = [&SPS[..], &PPS, &IDR].concat();
        sets.complete_idr(&mut first).expect("complete");
        // A 3-byte start code in the input; stored sets always get 4 bytes.
        let newer_sps = [0, 0, 1, 0x67, 0x42, 0xc0, 0x28];
        let mut second: Vec<u8> = [&newer_sps[..], &PPS, &IDR].concat();
        sets.complete_idr(&mut second).expect("complete");
        let mut bare = IDR.to_vec();
        sets.complete_idr(&mut bare).expect("completed");
        assert_eq!(
            bare,
            [&[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x28][..], &PPS, &IDR].concat()
        );
    }

    #[test]
    fn bare_idr_before_any_sets_is_an_error() {
        let mut sets = ParameterSets::default();
        let mut bare = IDR.to_vec();
        assert_eq!(sets.complete_idr(&mut bare), Err(NoParameterSets));
        // An SPS alone is not enough to remember.
        let mut half: Vec<u8> = [&SPS[..], &IDR].concat();
        assert_eq!(sets.complete_idr(&mut half), Err(NoParameterSets));
    }
}
