//! Hobby servos on Linux sysfs PWM (`/sys/class/pwm/pwmchipN/pwmM`): pan and tilt, no zoom.
//!
//! A servo holds the angle its pulse width says (typically 0.5–2.5 ms every 20 ms). The axis
//! maps angles linearly onto the configured pulse range; limits and top speed come from the
//! configuration, because a servo cannot report them.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Actuator, ActuatorError};
use crate::config::{ServoAxisConfig, ServoConfig};
use crate::control::ptz::{AxisLimits, AxisName, PerAxis, PtzLimits};

struct Channel {
    dir: PathBuf,
    axis: ServoAxisConfig,
    last_duty_ns: Option<u64>,
}

pub(crate) struct ServoActuator {
    pan: Option<Channel>,
    tilt: Option<Channel>,
    chip: u32,
}

/// How long to wait for the kernel (and udev's permissions) after an export.
const EXPORT_WAIT: Duration = Duration::from_secs(2);

impl ServoActuator {
    /// Exports and enables the channels, each at its home angle.
    pub(crate) fn new(settings: &ServoConfig) -> Result<ServoActuator, ActuatorError> {
        let chip_dir = settings
            .sysfs_root
            .join(format!("pwmchip{}", settings.chip));
        if !chip_dir.is_dir() {
            return Err(ActuatorError(format!(
                "{} does not exist (is the PWM overlay enabled, e.g. dtoverlay=pwm-2chan?)",
                chip_dir.display()
            )));
        }
        let open = |axis: &Option<ServoAxisConfig>| -> Result<Option<Channel>, ActuatorError> {
            axis.as_ref()
                .map(|a| {
                    validate(a)?;
                    let dir = export(&chip_dir, a.channel)?;
                    let mut ch = Channel {
                        dir,
                        axis: a.clone(),
                        last_duty_ns: None,
                    };
                    // Duty first at 0: the kernel refuses a period below the current duty.
                    write(&ch.dir.join("duty_cycle"), 0)?;
                    write(&ch.dir.join("period"), settings.period_ns)?;
                    ch.set_angle(a.home)?;
                    write(&ch.dir.join("enable"), 1)?;
                    Ok(ch)
                })
                .transpose()
        };
        Ok(ServoActuator {
            pan: open(&settings.pan)?,
            tilt: open(&settings.tilt)?,
            chip: settings.chip,
        })
    }
}

impl Channel {
    fn set_angle(&mut self, angle: f64) -> Result<(), ActuatorError> {
        let a = &self.axis;
        let angle = angle.clamp(a.min_angle, a.max_angle);
        let fraction = (angle - a.min_angle) / (a.max_angle - a.min_angle);
        let pulse_us = a.min_pulse_us + fraction * (a.max_pulse_us - a.min_pulse_us);
        let duty_ns = (pulse_us * 1000.0).round() as u64;
        if self.last_duty_ns != Some(duty_ns) {
            write(&self.dir.join("duty_cycle"), duty_ns)?;
            self.last_duty_ns = Some(duty_ns);
        }
        Ok(())
    }

    fn limits(&self) -> AxisLimits {
        AxisLimits {
            min: self.axis.min_angle,
            max: self.axis.max_angle,
            home: self.axis.home,
            max_speed: self.axis.max_speed_dps,
            unit: "degrees",
        }
    }
}

impl Actuator for ServoActuator {
    fn limits(&self) -> PtzLimits {
        PtzLimits {
            pan: self.pan.as_ref().map(Channel::limits),
            tilt: self.tilt.as_ref().map(Channel::limits),
            zoom: None,
        }
    }

    fn move_to(&mut self, position: &PerAxis) -> Result<(), ActuatorError> {
        for (axis, channel) in [
            (AxisName::Pan, &mut self.pan),
            (AxisName::Tilt, &mut self.tilt),
        ] {
            if let (Some(angle), Some(ch)) = (position.get(axis), channel.as_mut()) {
                ch.set_angle(angle)?;
            }
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let ch = |c: &Option<Channel>| c.as_ref().map(|c| c.axis.channel.to_string());
        format!(
            "servos on pwmchip{} (pan: {}, tilt: {})",
            self.chip,
            ch(&self.pan).unwrap_or_else(|| "none".into()),
            ch(&self.tilt).unwrap_or_else(|| "none".into())
        )
    }
}

fn validate(a: &ServoAxisConfig) -> Result<(), ActuatorError> {
    let ok = a.min_angle < a.max_angle
        && (a.min_angle..=a.max_angle).contains(&a.home)
        && a.min_pulse_us > 0.0
        && a.max_pulse_us > 0.0
        && a.max_speed_dps > 0.0;
    if ok {
        Ok(())
    } else {
        Err(ActuatorError(format!(
            "servo channel {}: needs min_angle < max_angle, home between them, positive pulse \
             widths and speed",
            a.channel
        )))
    }
}

/// The channel's directory, exporting it first if needed.
fn export(chip_dir: &Path, channel: u32) -> Result<PathBuf, ActuatorError> {
    let dir = chip_dir.join(format!("pwm{channel}"));
    if dir.is_dir() {
        return Ok(dir);
    }
    write(&chip_dir.join("export"), channel.into())?;
    let deadline = std::time::Instant::now() + EXPORT_WAIT;
    while std::time::Instant::now() < deadline {
        if dir.join("duty_cycle").exists() {
            return Ok(dir);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(ActuatorError(format!(
        "{} did not appear after exporting channel {channel}",
        dir.display()
    )))
}

fn write(path: &Path, value: u64) -> Result<(), ActuatorError> {
    fs::write(path, value.to_string())
        .map_err(|e| ActuatorError(format!("cannot write {value} to {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::ptz::Ptz;
    use std::time::Instant;

    /// A fake `/sys/class/pwm` with pwmchip0 and the given channels already exported.
    fn fake_sysfs(name: &str, channels: &[u32]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("rtcam-pwm-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let chip = root.join("pwmchip0");
        fs::create_dir_all(&chip).unwrap();
        fs::write(chip.join("export"), "").unwrap();
        for ch in channels {
            let dir = chip.join(format!("pwm{ch}"));
            fs::create_dir_all(&dir).unwrap();
            for f in ["period", "duty_cycle", "enable"] {
                fs::write(dir.join(f), "0").unwrap();
            }
        }
        root
    }

    fn read(root: &Path, ch: u32, file: &str) -> String {
        fs::read_to_string(root.join(format!("pwmchip0/pwm{ch}/{file}"))).unwrap()
    }

    fn axis(channel: u32) -> ServoAxisConfig {
        ServoAxisConfig {
            channel,
            min_pulse_us: 500.0,
            max_pulse_us: 2500.0,
            min_angle: -90.0,
            max_angle: 90.0,
            home: 0.0,
            max_speed_dps: 60.0,
        }
    }

    fn settings(root: &Path) -> ServoConfig {
        ServoConfig {
            sysfs_root: root.to_path_buf(),
            chip: 0,
            period_ns: 20_000_000,
            pan: Some(axis(0)),
            tilt: Some(ServoAxisConfig {
                min_angle: -30.0,
                max_angle: 60.0,
                home: 15.0,
                ..axis(1)
            }),
        }
    }

    #[test]
    fn starts_enabled_at_home_with_a_20_ms_period() {
        let root = fake_sysfs("home", &[0, 1]);
        let a = ServoActuator::new(&settings(&root)).unwrap();
        assert_eq!(read(&root, 0, "period"), "20000000");
        assert_eq!(
            read(&root, 0, "duty_cycle"),
            "1500000",
            "0 deg is mid-range, 1.5 ms"
        );
        assert_eq!(read(&root, 0, "enable"), "1");
        // Tilt: 15 deg in -30..60 is halfway: 1.5 ms.
        assert_eq!(read(&root, 1, "duty_cycle"), "1500000");
        assert_eq!(a.limits().zoom, None);
        assert_eq!(
            fs::read_to_string(root.join("pwmchip0/export")).unwrap(),
            ""
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn angles_map_to_exact_duty_cycles_and_are_clamped() {
        let root = fake_sysfs("angles", &[0, 1]);
        let mut a = ServoActuator::new(&settings(&root)).unwrap();
        for (angle, duty) in [
            (45.0, "2000000"),
            (-90.0, "500000"),
            (90.0, "2500000"),
            (200.0, "2500000"),
        ] {
            a.move_to(&PerAxis {
                pan: Some(angle),
                ..PerAxis::default()
            })
            .unwrap();
            assert_eq!(read(&root, 0, "duty_cycle"), duty, "{angle} deg");
        }
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_continuous_move_is_held_to_the_servo_speed() {
        let root = fake_sysfs("speed", &[0, 1]);
        let mut a = ServoActuator::new(&settings(&root)).unwrap();
        let t0 = Instant::now();
        let mut ptz = Ptz::new(a.limits(), Duration::from_millis(500));
        // Half speed (30 deg/s) for one second, re-commanded every 250 ms.
        for step in 0..4 {
            let now = t0 + Duration::from_millis(250 * step);
            ptz.start_move(
                now,
                PerAxis {
                    pan: Some(0.5),
                    ..PerAxis::default()
                },
            );
            ptz.handle_timeout(now + Duration::from_millis(250));
            if let Some(p) = ptz.poll_position() {
                a.move_to(&p).unwrap();
            }
        }
        // 30 deg: 500 + 120/180 * 2000 us = 1833.333 us.
        assert_eq!(read(&root, 0, "duty_cycle"), "1833333");
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn missing_chips_and_channels_are_clear_errors() {
        let root = fake_sysfs("missing", &[0]);
        let mut s = settings(&root);
        s.chip = 3;
        let err = ServoActuator::new(&s).err().unwrap().to_string();
        assert!(err.contains("pwmchip3 does not exist"), "{err}");

        // Channel 1 is not exported and the fake kernel never creates it.
        let err = ServoActuator::new(&settings(&root))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("pwm1 did not appear"), "{err}");
        assert_eq!(
            fs::read_to_string(root.join("pwmchip0/export")).unwrap(),
            "1"
        );

        let mut bad = settings(&root);
        bad.pan = Some(ServoAxisConfig {
            min_angle: 10.0,
            max_angle: -10.0,
            ..axis(0)
        });
        assert!(ServoActuator::new(&bad).is_err());
        let _ = fs::remove_dir_all(&root);
    }
}
