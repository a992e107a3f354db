//! Pan/tilt/zoom motion, sans-IO: velocities and targets in, positions out.
//!
//! Positions are in the actuator's own units (arc-seconds for a UVC camera, degrees for a servo,
//! a zoom factor...), each axis with its limits and a top speed. A continuous move (`ptz.move`)
//! is integrated here over time, so every actuator is driven the same way: by absolute
//! positions at `TICK` intervals, never beyond its limits or its speed.
//!
//! Safety: a continuous move stops by itself when no `ptz.move` has come for `deadman`, and
//! `stop()` is called by the control plane when the controller's channel closes or its
//! connection drops. A lost connection must never leave a motor running.

use std::time::{Duration, Instant};

use serde::Serialize;

/// How often positions are updated while moving.
pub(crate) const TICK: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AxisName {
    Pan,
    Tilt,
    Zoom,
}

pub(crate) const AXES: [AxisName; 3] = [AxisName::Pan, AxisName::Tilt, AxisName::Zoom];

impl AxisName {
    pub fn as_str(self) -> &'static str {
        match self {
            AxisName::Pan => "pan",
            AxisName::Tilt => "tilt",
            AxisName::Zoom => "zoom",
        }
    }
}

/// One axis of the actuator, in its own units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AxisLimits {
    pub min: f64,
    pub max: f64,
    pub home: f64,
    /// Units per second at full velocity (1.0).
    pub max_speed: f64,
    /// What the numbers are: `arcsec` (UVC pan/tilt), `degrees` (servos), or `camera` (a
    /// driver-defined scale, e.g. UVC zoom).
    pub unit: &'static str,
}

impl AxisLimits {
    fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.min, self.max)
    }
}

/// What the actuator can do; an axis it lacks is None.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PtzLimits {
    pub pan: Option<AxisLimits>,
    pub tilt: Option<AxisLimits>,
    pub zoom: Option<AxisLimits>,
}

impl PtzLimits {
    pub fn axis(&self, a: AxisName) -> Option<AxisLimits> {
        match a {
            AxisName::Pan => self.pan,
            AxisName::Tilt => self.tilt,
            AxisName::Zoom => self.zoom,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pan.is_none() && self.tilt.is_none() && self.zoom.is_none()
    }
}

/// A position or a velocity per axis; None leaves that axis alone.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerAxis {
    pub pan: Option<f64>,
    pub tilt: Option<f64>,
    pub zoom: Option<f64>,
}

impl PerAxis {
    pub fn get(&self, a: AxisName) -> Option<f64> {
        match a {
            AxisName::Pan => self.pan,
            AxisName::Tilt => self.tilt,
            AxisName::Zoom => self.zoom,
        }
    }

    fn set(&mut self, a: AxisName, v: Option<f64>) {
        match a {
            AxisName::Pan => self.pan = v,
            AxisName::Tilt => self.tilt = v,
            AxisName::Zoom => self.zoom = v,
        }
    }
}

/// Why motion stopped, for the `control` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StopReason {
    Command,
    /// No `ptz.move` within the dead-man interval.
    Deadman,
    /// The controller's channel closed, its connection dropped, or control changed hands.
    ControllerGone,
}

#[derive(Debug)]
pub(crate) struct Ptz {
    limits: PtzLimits,
    deadman: Duration,
    position: PerAxis,
    /// Velocity in -1..1 per moving axis.
    velocity: PerAxis,
    last_move_command: Option<Instant>,
    last_tick: Option<Instant>,
    /// A new position waits to be applied by the actuator.
    dirty: bool,
    stopped: Option<StopReason>,
}

impl Ptz {
    /// Starts at home.
    pub(crate) fn new(limits: PtzLimits, deadman: Duration) -> Ptz {
        let mut position = PerAxis::default();
        for a in AXES {
            position.set(a, limits.axis(a).map(|l| l.home));
        }
        Ptz {
            limits,
            deadman,
            position,
            velocity: PerAxis::default(),
            last_move_command: None,
            last_tick: None,
            dirty: false,
            stopped: None,
        }
    }

    pub(crate) fn limits(&self) -> PtzLimits {
        self.limits
    }

    pub(crate) fn position(&self) -> PerAxis {
        self.position
    }

    #[cfg(test)]
    pub(crate) fn velocity(&self) -> PerAxis {
        self.velocity
    }

    pub(crate) fn is_moving(&self) -> bool {
        AXES.iter()
            .any(|&a| self.velocity.get(a).is_some_and(|v| v != 0.0))
    }

    /// Continuous move: velocities in -1..1 (clamped), 0 stops an axis. Axes the actuator
    /// lacks are ignored. Each call also re-arms the dead-man timer.
    pub(crate) fn start_move(&mut self, now: Instant, velocity: PerAxis) {
        self.advance(now);
        for a in AXES {
            if let (Some(v), Some(_)) = (velocity.get(a), self.limits.axis(a)) {
                let v = if v.is_finite() {
                    v.clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                self.velocity.set(a, (v != 0.0).then_some(v));
            }
        }
        self.last_move_command = Some(now);
        self.last_tick = Some(now);
    }

    /// Absolute position, clamped to the limits. Stops any continuous move.
    pub(crate) fn goto(&mut self, now: Instant, target: PerAxis) {
        self.halt(now, None);
        for a in AXES {
            if let (Some(v), Some(l)) = (target.get(a), self.limits.axis(a))
                && v.is_finite()
            {
                self.position.set(a, Some(l.clamp(v)));
                self.dirty = true;
            }
        }
    }

    /// The actuator was moved on this axis by other means (a camera control set directly):
    /// take its position as ours, without moving again.
    pub(crate) fn sync(&mut self, now: Instant, axis: AxisName, value: f64) {
        self.advance(now);
        if let Some(l) = self.limits.axis(axis) {
            self.position.set(axis, Some(l.clamp(value)));
        }
    }

    pub(crate) fn home(&mut self, now: Instant) {
        let mut home = PerAxis::default();
        for a in AXES {
            home.set(a, self.limits.axis(a).map(|l| l.home));
        }
        self.goto(now, home);
    }

    pub(crate) fn stop(&mut self, now: Instant, reason: StopReason) {
        self.halt(now, Some(reason));
    }

    fn halt(&mut self, now: Instant, reason: Option<StopReason>) {
        self.advance(now);
        if self.is_moving() {
            self.stopped = reason;
        }
        self.velocity = PerAxis::default();
        self.last_move_command = None;
        self.last_tick = None;
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if !self.is_moving() {
            return;
        }
        if let Some(last) = self.last_move_command
            && now >= last + self.deadman
        {
            // Move only up to the dead-man deadline, not past it.
            self.advance(last + self.deadman);
            self.halt(last + self.deadman, Some(StopReason::Deadman));
            return;
        }
        self.advance(now);
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_moving() {
            return None;
        }
        let tick = self.last_tick.map(|t| t + TICK);
        let deadman = self.last_move_command.map(|t| t + self.deadman);
        match (tick, deadman) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The position to apply, once after each change.
    pub(crate) fn poll_position(&mut self) -> Option<PerAxis> {
        std::mem::take(&mut self.dirty).then_some(self.position)
    }

    /// Why motion stopped by itself, once.
    pub(crate) fn poll_stopped(&mut self) -> Option<StopReason> {
        self.stopped.take()
    }

    /// Integrates the velocities up to `now`.
    fn advance(&mut self, now: Instant) {
        let Some(last) = self.last_tick else { return };
        let dt = now.saturating_duration_since(last).as_secs_f64();
        if dt <= 0.0 {
            return;
        }
        for a in AXES {
            if let (Some(v), Some(l), Some(p)) = (
                self.velocity.get(a),
                self.limits.axis(a),
                self.position.get(a),
            ) {
                let next = l.clamp(p + v * l.max_speed * dt);
                if next != p {
                    self.position.set(a, Some(next));
                    self.dirty = true;
                }
            }
        }
        self.last_tick = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn limits() -> PtzLimits {
        PtzLimits {
            pan: Some(AxisLimits {
                min: -90.0,
                max: 90.0,
                home: 0.0,
                max_speed: 60.0,
                unit: "degrees",
            }),
            tilt: Some(AxisLimits {
                min: -30.0,
                max: 45.0,
                home: 0.0,
                max_speed: 30.0,
                unit: "degrees",
            }),
            zoom: None,
        }
    }

    fn run(ptz: &mut Ptz, from: Instant, to: Instant) {
        let mut now = from;
        while let Some(at) = ptz.poll_timeout() {
            if at > to {
                break;
            }
            now = at.max(now);
            ptz.handle_timeout(now);
        }
    }

    #[test]
    fn a_continuous_move_integrates_within_the_speed_limit() {
        let t0 = Instant::now();
        let mut p = Ptz::new(limits(), ms(500));
        p.start_move(
            t0,
            PerAxis {
                pan: Some(0.5),
                ..PerAxis::default()
            },
        );
        // Keep the dead-man satisfied for one second.
        for i in 1..=4 {
            run(&mut p, t0, t0 + ms(250 * i));
            p.start_move(
                t0 + ms(250 * i),
                PerAxis {
                    pan: Some(0.5),
                    ..PerAxis::default()
                },
            );
        }
        let pan = p.position().pan.unwrap();
        assert!(
            (pan - 30.0).abs() < 0.01,
            "half of 60 deg/s for 1 s, got {pan}"
        );
        assert_eq!(p.position().tilt, Some(0.0));
    }

    #[test]
    fn silence_stops_a_move_after_the_deadman_interval() {
        let t0 = Instant::now();
        let mut p = Ptz::new(limits(), ms(500));
        p.start_move(
            t0,
            PerAxis {
                pan: Some(1.0),
                ..PerAxis::default()
            },
        );
        run(&mut p, t0, t0 + ms(5000));
        assert!(!p.is_moving());
        assert_eq!(p.poll_stopped(), Some(StopReason::Deadman));
        let pan = p.position().pan.unwrap();
        assert!(
            (pan - 30.0).abs() < 0.01,
            "moved exactly 500 ms at 60 deg/s, got {pan}"
        );
        assert_eq!(p.poll_timeout(), None, "no more ticks once stopped");
    }

    #[test]
    fn limits_are_never_exceeded() {
        let t0 = Instant::now();
        let mut p = Ptz::new(limits(), ms(500));
        for i in 0..100 {
            let now = t0 + ms(100 * i);
            p.start_move(
                now,
                PerAxis {
                    pan: Some(1.0),
                    tilt: Some(-1.0),
                    zoom: Some(1.0),
                },
            );
            run(&mut p, now, now + ms(100));
        }
        assert_eq!(p.position().pan, Some(90.0));
        assert_eq!(p.position().tilt, Some(-30.0));
        assert_eq!(p.position().zoom, None, "no zoom axis, nothing invented");

        p.goto(
            t0,
            PerAxis {
                pan: Some(1e9),
                tilt: Some(f64::NAN),
                zoom: None,
            },
        );
        assert_eq!(p.position().pan, Some(90.0));
        assert_eq!(p.position().tilt, Some(-30.0), "NaN is ignored");

        p.start_move(
            t0,
            PerAxis {
                pan: Some(-7.0),
                ..PerAxis::default()
            },
        );
        assert_eq!(p.velocity().pan, Some(-1.0), "velocity clamped to -1..1");
    }

    #[test]
    fn goto_home_and_stop() {
        let t0 = Instant::now();
        let mut p = Ptz::new(limits(), ms(500));
        p.goto(
            t0,
            PerAxis {
                pan: Some(-45.0),
                tilt: Some(10.0),
                zoom: None,
            },
        );
        assert_eq!(
            p.poll_position().map(|x| (x.pan, x.tilt)),
            Some((Some(-45.0), Some(10.0)))
        );
        assert_eq!(p.poll_position(), None, "each change is applied once");

        p.start_move(
            t0,
            PerAxis {
                tilt: Some(1.0),
                ..PerAxis::default()
            },
        );
        run(&mut p, t0, t0 + ms(200));
        p.stop(t0 + ms(200), StopReason::ControllerGone);
        assert!(!p.is_moving());
        assert_eq!(p.poll_stopped(), Some(StopReason::ControllerGone));
        let tilt = p.position().tilt.unwrap();
        assert!(
            (tilt - 16.0).abs() < 0.01,
            "200 ms at 30 deg/s from 10, got {tilt}"
        );

        p.home(t0 + ms(300));
        assert_eq!(p.position().pan, Some(0.0));
        assert_eq!(p.position().tilt, Some(0.0));
    }
}
