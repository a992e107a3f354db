//! A V4L2 camera's controls through the `CameraControls` interface.
//!
//! Controls go through a second open of the device node, not the streaming fd: V4L2 allows
//! several opens, controls are per device, and so a control write from the event loop never
//! waits for the capture thread. When the camera is unplugged the fd goes bad; the next call
//! reopens the node (the camera may be back) and otherwise says the camera is unavailable.

use std::collections::BTreeMap;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use linuxvideo::Device;

use super::device::guard;
use super::raw;
use crate::source::controls::snake_case;
use crate::source::{CameraControls, ControlError, ControlInfo, ControlKind};

pub(crate) struct V4l2Controls {
    path: PathBuf,
    open: Mutex<Option<Open>>,
}

struct Open {
    device: Device,
    /// name → driver id, from the listing made when the node was opened.
    ids: BTreeMap<String, u32>,
}

impl V4l2Controls {
    /// Controls of the device at `path`, opened on first use.
    pub(crate) fn new(path: &Path) -> V4l2Controls {
        V4l2Controls {
            path: path.to_path_buf(),
            open: Mutex::new(None),
        }
    }

    /// Closes the node; the next call opens it again.
    pub(crate) fn close(&self) {
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
            read_control(&open.device, cid)
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
            write_control(&open.device, cid, raw).map_err(|e| match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EBUSY) => ControlError::ReadOnly(name.to_string()),
                _ => device_error(e),
            })?;
            if info.kind == ControlKind::Button {
                return Ok(0);
            }
            read_control(&open.device, cid)
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

fn kind_of(control_type: u32) -> Option<ControlKind> {
    Some(match control_type {
        raw::CTRL_TYPE_INTEGER => ControlKind::Integer,
        raw::CTRL_TYPE_BOOLEAN => ControlKind::Boolean,
        raw::CTRL_TYPE_MENU => ControlKind::Menu,
        raw::CTRL_TYPE_INTEGER_MENU => ControlKind::IntegerMenu,
        raw::CTRL_TYPE_BUTTON => ControlKind::Button,
        raw::CTRL_TYPE_INTEGER64 => ControlKind::Integer64,
        // Headings between groups of controls, not controls.
        raw::CTRL_TYPE_CTRL_CLASS => return None,
        _ => ControlKind::Other,
    })
}

fn read_control(device: &Device, id: u32) -> io::Result<i32> {
    let mut c = raw::Control { id, value: 0 };
    // SAFETY: VIDIOC_G_CTRL takes a v4l2_control, which Control mirrors.
    unsafe { raw::ioctl(device.as_raw_fd(), raw::VIDIOC_G_CTRL, &mut c) }?;
    Ok(c.value)
}

fn write_control(device: &Device, id: u32, value: i32) -> io::Result<()> {
    let mut c = raw::Control { id, value };
    // SAFETY: VIDIOC_S_CTRL takes a v4l2_control, which Control mirrors.
    unsafe { raw::ioctl(device.as_raw_fd(), raw::VIDIOC_S_CTRL, &mut c) }
}

/// A NUL-terminated name from a V4L2 struct.
fn c_text(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Every enabled control of the device, in driver order.
///
/// Our own VIDIOC_QUERYCTRL loop rather than linuxvideo's: its iterator starts the
/// `NEXT_CTRL` walk at `V4L2_CID_BASE`, which returns the control *after* it, so the first
/// user control, brightness (`V4L2_CID_BASE` itself), never showed up.
fn query_controls(device: &Device) -> io::Result<Vec<raw::QueryCtrl>> {
    let fd = device.as_raw_fd();
    let query = |id: u32| -> io::Result<raw::QueryCtrl> {
        let mut q = raw::QueryCtrl {
            id,
            ..raw::zeroed()
        };
        // SAFETY: VIDIOC_QUERYCTRL takes a v4l2_queryctrl, which QueryCtrl mirrors.
        unsafe { raw::ioctl(fd, raw::VIDIOC_QUERYCTRL, &mut q) }?;
        Ok(q)
    };
    let mut out = Vec::new();
    let mut last = 0;
    loop {
        match query(last | raw::CTRL_FLAG_NEXT_CTRL) {
            // Ids only grow; a driver that says otherwise would loop forever.
            Ok(q) if q.id <= last && last != 0 => break,
            Ok(q) => {
                last = q.id;
                out.push(q);
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                if last == 0 {
                    // A driver without NEXT_CTRL: the user controls one by one.
                    for id in raw::CID_BASE..raw::CID_LASTP1 {
                        if let Ok(q) = query(id) {
                            out.push(q);
                        }
                    }
                }
                break;
            }
            Err(e) => return Err(e),
        }
    }
    out.retain(|q| q.flags & raw::CTRL_FLAG_DISABLED == 0);
    Ok(out)
}

/// A menu control's entries: (index, text), or the value as text for integer menus.
fn query_menu(device: &Device, q: &raw::QueryCtrl, integer: bool) -> Vec<(i64, String)> {
    let fd = device.as_raw_fd();
    let (Ok(first), Ok(last)) = (u32::try_from(q.minimum), u32::try_from(q.maximum)) else {
        return Vec::new();
    };
    // A bound for a driver that reports a silly range: menus are short.
    (first..=last.min(first.saturating_add(255)))
        .filter_map(|index| {
            let mut m = raw::QueryMenu {
                id: q.id,
                index,
                ..raw::zeroed()
            };
            // SAFETY: VIDIOC_QUERYMENU takes a v4l2_querymenu, which QueryMenu mirrors.
            // Indexes the driver skips (gaps in a menu) answer EINVAL.
            unsafe { raw::ioctl(fd, raw::VIDIOC_QUERYMENU, &mut m) }.ok()?;
            let name = m.name;
            let text = if integer {
                let mut value = [0u8; 8];
                value.copy_from_slice(&name[..8]);
                i64::from_ne_bytes(value).to_string()
            } else {
                c_text(&name)
            };
            Some((i64::from(index), text))
        })
        .collect()
}

/// Names are made unique by appending the driver id's position when two labels collide.
fn unique_name(label: &str, taken: &BTreeMap<String, u32>) -> String {
    let base = snake_case(label);
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

fn control_ids(device: &Device) -> io::Result<BTreeMap<String, u32>> {
    let mut ids = BTreeMap::new();
    for q in query_controls(device)? {
        if kind_of(q.type_).is_none() {
            continue;
        }
        let name = unique_name(&c_text(&q.name), &ids);
        ids.insert(name, q.id);
    }
    Ok(ids)
}

/// Every control of a device with its current value.
pub(crate) fn list_controls(device: &Device) -> io::Result<Vec<ControlInfo>> {
    let mut taken = BTreeMap::new();
    let mut out = Vec::new();
    for q in query_controls(device)? {
        let Some(kind) = kind_of(q.type_) else {
            continue;
        };
        let label = c_text(&q.name);
        let name = unique_name(&label, &taken);
        taken.insert(name.clone(), q.id);
        let readable = q.flags & raw::CTRL_FLAG_WRITE_ONLY == 0
            && matches!(
                kind,
                ControlKind::Integer
                    | ControlKind::Boolean
                    | ControlKind::Menu
                    | ControlKind::IntegerMenu
            );
        let value = if readable {
            read_control(device, q.id).ok().map(i64::from)
        } else {
            None
        };
        let menu = match kind {
            ControlKind::Menu => query_menu(device, &q, false),
            ControlKind::IntegerMenu => query_menu(device, &q, true),
            _ => Vec::new(),
        };
        out.push(ControlInfo {
            name,
            label,
            kind,
            min: i64::from(q.minimum),
            max: i64::from(q.maximum),
            step: i64::from(q.step),
            default: i64::from(q.default_value),
            value,
            menu,
            writable: q.flags
                & (raw::CTRL_FLAG_READ_ONLY | raw::CTRL_FLAG_INACTIVE | raw::CTRL_FLAG_GRABBED)
                == 0,
        });
    }
    Ok(out)
}
