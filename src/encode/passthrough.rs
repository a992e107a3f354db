//! H.264 passthrough: a camera's own access units go to the viewers as they are, without
//! re-encoding — only made safe to join on.
//!
//! - Every IDR gets the latest SPS and PPS in front of it if the camera sent them separately
//!   (UVC cameras often send them once per GOP, not with each IDR).
//! - After a break in the camera's stream (frames dropped on the way, or the "no signal"
//!   placeholder encoded in between), P-frames are held back until the camera's next IDR: they
//!   would refer to pictures the viewers never got.
//! - IDRs on request (viewer join, PLI) go to the camera as its `force_key_frame` control where
//!   the driver has one; otherwise the camera's periodic IDRs must do, and `status` says so.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::nal;
use super::parameter_sets::ParameterSets;
use crate::source::CameraControls;

/// Camera IDR requests at most this often (each costs the camera a large frame).
const MIN_REQUEST_GAP: Duration = Duration::from_millis(500);

pub(super) struct Passthrough {
    params: ParameterSets,
    /// Hold P-frames back until the next IDR.
    need_idr: bool,
    controls: Option<Arc<dyn CameraControls>>,
    last_request: Option<Instant>,
    /// Logged once: IDRs arriving before any SPS/PPS.
    warned_no_params: bool,
}

impl Passthrough {
    /// `controls`: the camera's, to ask for IDRs through `force_key_frame` when it has one.
    pub(super) fn new(controls: Option<Arc<dyn CameraControls>>) -> Passthrough {
        Passthrough {
            params: ParameterSets::default(),
            need_idr: true,
            controls,
            last_request: None,
            warned_no_params: false,
        }
    }

    /// The stream broke: wait for (and ask for) the camera's next IDR.
    pub(super) fn resync(&mut self, now: Instant) {
        self.need_idr = true;
        self.request_idr(now);
    }

    /// Asks the camera for an IDR, if it can be asked and was not asked just now. Returns
    /// whether the request went out.
    pub(super) fn request_idr(&mut self, now: Instant) -> bool {
        if self
            .last_request
            .is_some_and(|last| now.saturating_duration_since(last) < MIN_REQUEST_GAP)
        {
            return false;
        }
        let Some(controls) = &self.controls else {
            return false;
        };
        self.last_request = Some(now);
        match controls.set("force_key_frame", 1) {
            Ok(_) => true,
            Err(e) => {
                log::debug!("camera IDR request failed: {e}");
                false
            }
        }
    }

    /// One access unit from the camera: Some((unit to send, is it an IDR)), or None when it
    /// must be held back.
    pub(super) fn process(&mut self, mut unit: Vec<u8>) -> Option<(Vec<u8>, bool)> {
        if nal::is_idr(&unit) {
            if self.params.complete_idr(&mut unit).is_err() {
                if !self.warned_no_params {
                    log::warn!("camera sent an IDR before any SPS/PPS; waiting for them");
                    self.warned_no_params = true;
                }
                return None;
            }
            self.need_idr = false;
            return Some((unit, true));
        }
        // Parameter sets that come on their own are remembered for the next IDR.
        if nal::has_sps_pps(&unit) {
            let mut probe = unit.clone();
            probe.extend_from_slice(&[0, 0, 0, 1, 0x65]);
            let _ = self.params.complete_idr(&mut probe);
        }
        if self.need_idr {
            return None;
        }
        Some((unit, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{ControlError, ControlInfo};
    use std::sync::Mutex;

    const SPS: [u8; 8] = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f];
    const PPS: [u8; 6] = [0, 0, 0, 1, 0x68, 0xce];
    const IDR: [u8; 6] = [0, 0, 0, 1, 0x65, 0x88];
    const P: [u8; 6] = [0, 0, 0, 1, 0x41, 0x9a];

    #[derive(Default)]
    struct Camera {
        writes: Mutex<Vec<(String, i64)>>,
    }

    impl CameraControls for Camera {
        fn list(&self) -> Result<Vec<ControlInfo>, ControlError> {
            Ok(Vec::new())
        }
        fn get(&self, name: &str) -> Result<i64, ControlError> {
            Err(ControlError::Unknown(name.into()))
        }
        fn set(&self, name: &str, value: i64) -> Result<i64, ControlError> {
            self.writes.lock().unwrap().push((name.into(), value));
            Ok(0)
        }
    }

    #[test]
    fn p_frames_wait_for_the_first_idr_which_gets_the_parameter_sets() {
        let mut pass = Passthrough::new(None);
        assert_eq!(
            pass.process(P.to_vec()),
            None,
            "nothing before the first IDR"
        );
        // SPS and PPS alone, then a bare IDR: the IDR goes out with them in front.
        let mut params_first = SPS.to_vec();
        params_first.extend_from_slice(&PPS);
        assert_eq!(pass.process(params_first.clone()), None);
        let (idr, keyframe) = pass.process(IDR.to_vec()).expect("the IDR goes out");
        assert!(keyframe);
        assert_eq!(idr, [params_first, IDR.to_vec()].concat());
        assert_eq!(pass.process(P.to_vec()), Some((P.to_vec(), false)));
    }

    #[test]
    fn an_idr_without_any_parameter_sets_is_held_back() {
        let mut pass = Passthrough::new(None);
        assert_eq!(pass.process(IDR.to_vec()), None);
        assert_eq!(pass.process(P.to_vec()), None);
    }

    #[test]
    fn resync_holds_p_frames_and_asks_the_camera_at_most_twice_a_second() {
        let camera = Arc::new(Camera::default());
        let mut pass = Passthrough::new(Some(camera.clone()));
        let complete = [&SPS[..], &PPS, &IDR].concat();
        assert!(pass.process(complete.clone()).is_some());
        assert!(pass.process(P.to_vec()).is_some());
        let now = Instant::now();
        pass.resync(now);
        assert_eq!(pass.process(P.to_vec()), None);
        assert!(
            !pass.request_idr(now + Duration::from_millis(100)),
            "too soon"
        );
        assert!(pass.request_idr(now + Duration::from_millis(600)));
        assert_eq!(
            *camera.writes.lock().unwrap(),
            vec![
                ("force_key_frame".to_string(), 1),
                ("force_key_frame".to_string(), 1)
            ]
        );
        assert_eq!(pass.process(complete.clone()), Some((complete, true)));
        assert!(pass.process(P.to_vec()).is_some());
    }
}
