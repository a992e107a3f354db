//! A V4L2 camera's controls through the `CameraControls` interface.
//!
//! Controls go through a second open of the device node, not the streaming fd: V4L2 allows
//! several opens, controls are per device, and so a control write from the event loop never
//! waits for the capture thread. When the camera is unplugged the fd goes bad; the next call
//! reopens the node (the camera may be back) and otherwise says the camera is unavailable.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use linuxvideo::Device;
use linuxvideo::controls::{Cid, ControlDesc, ControlFlags, CtrlType};

use super::device::guard;
use crate::source::controls::snake_case;
use crate::source::{CameraControls, ControlError, ControlInfo, ControlKind};

pub struct V4l2Controls {
    path: PathBuf,
    open: Mutex<Option<Open>>,
}

struct Open {
    device: Device,
    /// name → driver id, from the listing made when the node was opened.
    ids: BTreeMap<String, Cid>,
}

impl V4l2Controls {
    /// Controls of the device at `path`, opened on first use.
    pub fn new(path: &Path) -> V4l2Controls {
        V4l2Controls {
            path: path.to_path_buf(),
            open: Mutex::new(None),
        }
    }

    /// Closes the node; the next call opens it again.
    pub fn close(&self) {
        *self.open.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn with_device<T>(
        &self,
        f: impl FnOnce(&mut Open) -> Result<T, ControlError>,
    ) -> Result<T, ControlError> {
        let mut slot = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            let device = Device::open(&self.path)
                .map_err(|e| ControlError::Unavailable(format!("{}: {e}", self.path.display())))?;
            let ids = guard(|| control_ids(&device))
                .map_err(|e| ControlError::Unavailable(format!("{}: {e}", self.path.display())))?;
            *slot = Some(Open { device, ids });
        }
        let Some(open) = slot.as_mut() else {
            return Err(ControlError::Unavailable("not open".into()));
        };
        let result = f(open);
        if let Err(ControlError::Unavailable(_)) = &result {
            // The node went bad (unplugged): reopen next time.
            *slot = None;
        }
        result
    }

    fn desc(open: &Open, name: &str) -> Result<ControlInfo, ControlError> {
        let list = guard(|| list_controls(&open.device)).map_err(device_error)?;
        list.into_iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ControlError::Unknown(name.to_string()))
    }
}

impl CameraControls for V4l2Controls {
    fn list(&self) -> Result<Vec<ControlInfo>, ControlError> {
        self.with_device(|open| guard(|| list_controls(&open.device)).map_err(device_error))
    }

    fn get(&self, name: &str) -> Result<i64, ControlError> {
        self.with_device(|open| {
            let cid = *open
                .ids
                .get(name)
                .ok_or_else(|| ControlError::Unknown(name.to_string()))?;
            open.device
                .read_control_raw(cid)
                .map(i64::from)
                .map_err(device_error)
        })
    }

    fn set(&self, name: &str, value: i64) -> Result<i64, ControlError> {
        self.with_device(|open| {
            let cid = *open
                .ids
                .get(name)
                .ok_or_else(|| ControlError::Unknown(name.to_string()))?;
            // Fresh, so `writable` reflects the current mode (auto exposure on or off).
            let info = Self::desc(open, name)?;
            info.check(value)?;
            if !info.writable {
                return Err(ControlError::ReadOnly(name.to_string()));
            }
            if matches!(info.kind, ControlKind::Integer64 | ControlKind::Other) {
                return Err(ControlError::Unsupported(format!(
                    "{name}: rtcam cannot set controls of this type"
                )));
            }
            let raw = i32::try_from(value).map_err(|_| ControlError::OutOfRange {
                name: name.to_string(),
                value,
                expected: format!("{}..={}", info.min, info.max),
            })?;
            open.device
                .write_control_raw(cid, raw)
                .map_err(|e| match e.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EBUSY) => {
                        ControlError::ReadOnly(name.to_string())
                    }
                    _ => device_error(e),
                })?;
            if info.kind == ControlKind::Button {
                return Ok(0);
            }
            open.device
                .read_control_raw(cid)
                .map(i64::from)
                .map_err(device_error)
        })
    }
}

/// ENODEV and friends mean the camera is gone; anything else is the driver refusing.
fn device_error(e: io::Error) -> ControlError {
    match e.raw_os_error() {
        Some(libc::ENODEV) | Some(libc::ENXIO) | Some(libc::EIO) | Some(libc::EBADF) => {
            ControlError::Unavailable(e.to_string())
        }
        _ => ControlError::Device(e.to_string()),
    }
}

fn kind_of(t: CtrlType) -> Option<ControlKind> {
    Some(match t {
        CtrlType::INTEGER => ControlKind::Integer,
        CtrlType::BOOLEAN => ControlKind::Boolean,
        CtrlType::MENU => ControlKind::Menu,
        CtrlType::INTEGER_MENU => ControlKind::IntegerMenu,
        CtrlType::BUTTON => ControlKind::Button,
        CtrlType::INTEGER64 => ControlKind::Integer64,
        // Headings between groups of controls, not controls.
        CtrlType::CTRL_CLASS => return None,
        _ => ControlKind::Other,
    })
}

/// Names are made unique by appending the driver id's position when two labels collide.
fn unique_name(desc: &ControlDesc, taken: &BTreeMap<String, Cid>) -> String {
    let base = snake_case(desc.name());
    let base = if base.is_empty() {
        "control".to_string()
    } else {
        base
    };
    let mut name = base.clone();
    let mut n = 2;
    while taken.contains_key(&name) {
        name = format!("{base}_{n}");
        n += 1;
    }
    name
}

fn control_ids(device: &Device) -> io::Result<BTreeMap<String, Cid>> {
    let mut ids = BTreeMap::new();
    for desc in device.controls() {
        let desc = desc?;
        if kind_of(desc.control_type()).is_none() {
            continue;
        }
        let name = unique_name(&desc, &ids);
        ids.insert(name, desc.id());
    }
    Ok(ids)
}

/// Every control of a device with its current value.
pub fn list_controls(device: &Device) -> io::Result<Vec<ControlInfo>> {
    let mut taken = BTreeMap::new();
    let mut out = Vec::new();
    for desc in device.controls() {
        let desc = desc?;
        let Some(kind) = kind_of(desc.control_type()) else {
            continue;
        };
        let name = unique_name(&desc, &taken);
        taken.insert(name.clone(), desc.id());
        let flags = desc.flags();
        let readable = !flags.contains(ControlFlags::WRITE_ONLY)
            && matches!(
                kind,
                ControlKind::Integer
                    | ControlKind::Boolean
                    | ControlKind::Menu
                    | ControlKind::IntegerMenu
            );
        let value = if readable {
            device.read_control_raw(desc.id()).ok().map(i64::from)
        } else {
            None
        };
        let menu = match kind {
            ControlKind::Menu => device
                .enumerate_menu(&desc)
                .filter_map(Result::ok)
                .map(|item| (i64::from(item.index()), item.name().to_string()))
                .collect(),
            // linuxvideo reads only text menus; integer menus show their indexes.
            ControlKind::IntegerMenu => (desc.minimum()..=desc.maximum())
                .map(|i| (i64::from(i), i.to_string()))
                .collect(),
            _ => Vec::new(),
        };
        out.push(ControlInfo {
            name,
            label: desc.name().to_string(),
            kind,
            min: i64::from(desc.minimum()),
            max: i64::from(desc.maximum()),
            step: i64::from(desc.step()),
            default: i64::from(desc.default_value()),
            value,
            menu,
            writable: !flags.intersects(
                ControlFlags::READ_ONLY | ControlFlags::INACTIVE | ControlFlags::GRABBED,
            ),
        });
    }
    Ok(out)
}
