//! Camera controls (brightness, exposure, pan/tilt, …) behind one small interface.
//!
//! The event loop lists, reads and sets controls from its own thread while the capture thread
//! streams, so implementations are `Send + Sync` and do their own locking. Controls are named in
//! snake_case derived from the driver's label (`Brightness` → `brightness`, `Pan, Absolute` →
//! `pan_absolute`), so commands and config files need no numeric V4L2 ids.
//!
//! Reach it through `FrameSource::controls()` or `Pipeline::controls()`; sources without
//! controls (the test pattern) return None.

use serde::Serialize;

/// What kind of value a control takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    Integer,
    /// 0 or 1.
    Boolean,
    /// One of the `menu` entries, by index.
    Menu,
    /// Like a menu, the entries are numbers (shown as text in `menu`).
    IntegerMenu,
    /// An action: any write triggers it; reads give 0.
    Button,
    /// 64-bit integer controls.
    Integer64,
    /// Kinds rtcam lists but cannot read or write (strings, compound controls).
    Other,
}

/// One control as listed: its range, its default and its value when listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControlInfo {
    /// snake_case, unique per camera.
    pub name: String,
    /// The driver's own label, for people.
    pub label: String,
    pub kind: ControlKind,
    pub min: i64,
    pub max: i64,
    pub step: i64,
    pub default: i64,
    /// The value when the list was made (None if it could not be read, e.g. write-only).
    pub value: Option<i64>,
    /// Menu entries (index, text); empty for other kinds.
    pub menu: Vec<(i64, String)>,
    /// False when the control is read-only, or inactive (e.g. manual exposure while auto
    /// exposure is on) — the driver would refuse or ignore a write.
    pub writable: bool,
}

impl ControlInfo {
    /// Checks `value` against the control's range, step and menu; the error names the range.
    pub fn check(&self, value: i64) -> Result<(), ControlError> {
        let out_of_range = |expected: String| ControlError::OutOfRange {
            name: self.name.clone(),
            value,
            expected,
        };
        match self.kind {
            ControlKind::Other => Err(ControlError::Unsupported(format!(
                "{}: rtcam cannot set controls of this type",
                self.name
            ))),
            ControlKind::Button => Ok(()),
            ControlKind::Boolean if !(0..=1).contains(&value) => Err(out_of_range("0 or 1".into())),
            ControlKind::Menu | ControlKind::IntegerMenu => {
                if self.menu.iter().any(|(index, _)| *index == value) {
                    Ok(())
                } else {
                    let entries: Vec<String> = self
                        .menu
                        .iter()
                        .map(|(index, text)| format!("{index} ({text})"))
                        .collect();
                    Err(out_of_range(format!("one of {}", entries.join(", "))))
                }
            }
            _ => {
                if value < self.min || value > self.max {
                    return Err(out_of_range(self.range_text()));
                }
                if self.step > 1 && (value - self.min) % self.step != 0 {
                    return Err(out_of_range(self.range_text()));
                }
                Ok(())
            }
        }
    }

    fn range_text(&self) -> String {
        if self.step > 1 {
            format!("{}..={} in steps of {}", self.min, self.max, self.step)
        } else {
            format!("{}..={}", self.min, self.max)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlError {
    /// No control of that name on this camera.
    Unknown(String),
    /// The value is outside the control's range, step or menu.
    OutOfRange {
        name: String,
        value: i64,
        expected: String,
    },
    /// Read-only or currently inactive control.
    ReadOnly(String),
    /// A control type rtcam does not handle.
    Unsupported(String),
    /// The camera is not there right now (unplugged, being reopened).
    Unavailable(String),
    /// The driver refused or failed (the OS error in words).
    Device(String),
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ControlError::Unknown(name) => write!(f, "no camera control named {name:?}"),
            ControlError::OutOfRange {
                name,
                value,
                expected,
            } => write!(f, "{name}: {value} is out of range (expected {expected})"),
            ControlError::ReadOnly(name) => {
                write!(f, "{name} is read-only or inactive right now")
            }
            ControlError::Unsupported(why) => write!(f, "{why}"),
            ControlError::Unavailable(why) => write!(f, "camera unavailable: {why}"),
            ControlError::Device(why) => write!(f, "camera refused: {why}"),
        }
    }
}

impl std::error::Error for ControlError {}

/// A camera's controls. Callable from any thread, also while the camera streams.
pub trait CameraControls: Send + Sync {
    /// Every control with its range and current value.
    fn list(&self) -> Result<Vec<ControlInfo>, ControlError>;
    /// The control's current value.
    fn get(&self, name: &str) -> Result<i64, ControlError>;
    /// Checks the value against the control's range (`ControlError::OutOfRange` names it),
    /// writes it and returns the value read back (drivers may round to their step).
    fn set(&self, name: &str, value: i64) -> Result<i64, ControlError>;
}

/// One call on a camera's controls as a message: the control plane asks for it, the shell
/// carries it out (off the event loop: a USB camera may take a while to answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    List,
    Get { name: String },
    Set { name: String, value: i64 },
}

/// What a `ControlRequest` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlReply {
    List(Vec<ControlInfo>),
    /// The value read, or after a set the value read back.
    Value(i64),
}

impl ControlReply {
    /// For messages: which kind of reply it is.
    pub fn kind(&self) -> &'static str {
        match self {
            ControlReply::List(_) => "a list",
            ControlReply::Value(_) => "a value",
        }
    }
}

impl ControlRequest {
    /// Carries the request out on `controls` (None: the source has no controls).
    pub fn apply(
        &self,
        controls: Option<&dyn CameraControls>,
    ) -> Result<ControlReply, ControlError> {
        let controls = controls.ok_or_else(|| {
            ControlError::Unsupported("this source has no camera controls".into())
        })?;
        match self {
            ControlRequest::List => controls.list().map(ControlReply::List),
            ControlRequest::Get { name } => controls.get(name).map(ControlReply::Value),
            ControlRequest::Set { name, value } => {
                controls.set(name, *value).map(ControlReply::Value)
            }
        }
    }
}

/// The snake_case name for a driver's control label: lowercase ASCII letters and digits, every
/// other run of characters one `_` (`White Balance Temperature, Auto` →
/// `white_balance_temperature_auto`).
pub(crate) fn snake_case(label: &str) -> String {
    let mut out = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integer(min: i64, max: i64, step: i64) -> ControlInfo {
        ControlInfo {
            name: "brightness".into(),
            label: "Brightness".into(),
            kind: ControlKind::Integer,
            min,
            max,
            step,
            default: min,
            value: Some(min),
            menu: Vec::new(),
            writable: true,
        }
    }

    #[test]
    fn names_are_snake_case() {
        assert_eq!(snake_case("Brightness"), "brightness");
        assert_eq!(snake_case("Pan, Absolute"), "pan_absolute");
        assert_eq!(
            snake_case("White Balance Temperature, Auto"),
            "white_balance_temperature_auto"
        );
        assert_eq!(snake_case("  Gain (dB) "), "gain_db");
        assert_eq!(snake_case("Ünïcode 2"), "n_code_2");
    }

    #[test]
    fn integer_range_and_step_are_checked_with_a_clear_error() {
        let c = integer(0, 255, 1);
        assert!(c.check(0).is_ok() && c.check(255).is_ok());
        let err = c.check(256).unwrap_err();
        assert_eq!(
            err.to_string(),
            "brightness: 256 is out of range (expected 0..=255)"
        );
        let stepped = integer(-10, 10, 5);
        assert!(stepped.check(-5).is_ok());
        assert!(
            stepped
                .check(3)
                .unwrap_err()
                .to_string()
                .contains("-10..=10 in steps of 5")
        );
    }

    #[test]
    fn menus_and_booleans_accept_only_their_values() {
        let mut menu = integer(0, 3, 1);
        menu.kind = ControlKind::Menu;
        menu.menu = vec![(0, "Off".into()), (2, "Auto".into())];
        assert!(menu.check(2).is_ok());
        let err = menu.check(1).unwrap_err().to_string();
        assert!(err.contains("one of 0 (Off), 2 (Auto)"), "{err}");
        let mut boolean = integer(0, 1, 1);
        boolean.kind = ControlKind::Boolean;
        assert!(boolean.check(1).is_ok() && boolean.check(2).is_err());
        let mut other = integer(0, 1, 1);
        other.kind = ControlKind::Other;
        assert!(matches!(other.check(0), Err(ControlError::Unsupported(_))));
    }
}
