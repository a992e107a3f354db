//! The V4L2 structures and ioctls that linuxvideo 0.3 keeps private: format setting for both
//! buffer types, mmap streaming with buffer timestamps and sequence numbers, and the
//! multi-planar API. Layouts follow `<linux/videodev2.h>`; the ioctl numbers are computed from
//! the struct sizes, as the kernel headers do, so they are right on 32- and 64-bit targets.

#![allow(dead_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::RawFd;

pub(crate) const BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
pub(crate) const BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
pub(crate) const BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
pub(crate) const BUF_TYPE_VIDEO_OUTPUT_MPLANE: u32 = 10;
pub(crate) const MEMORY_MMAP: u32 = 1;
/// Buffers that are dma-buf file descriptors of another device's memory (zero copy).
pub(crate) const MEMORY_DMABUF: u32 = 4;

pub(crate) const CAP_VIDEO_M2M_MPLANE: u32 = 0x0000_4000;
pub(crate) const CAP_VIDEO_M2M: u32 = 0x0000_8000;
pub(crate) const CAP_STREAMING: u32 = 0x0400_0000;
pub(crate) const CAP_DEVICE_CAPS: u32 = 0x8000_0000;

/// `V4L2_ENC_CMD_START` / `_STOP`: a stateful encoder's drain and restart.
pub(crate) const ENC_CMD_START: u32 = 0;
pub(crate) const ENC_CMD_STOP: u32 = 1;
pub(crate) const BUF_FLAG_KEYFRAME: u32 = 0x0000_0008;
/// The last buffer of a drain (it may be empty).
pub(crate) const BUF_FLAG_LAST: u32 = 0x0010_0000;
pub(crate) const FIELD_ANY: u32 = 0;
pub(crate) const FIELD_NONE: u32 = 1;
pub(crate) const VIDEO_MAX_PLANES: usize = 8;

pub(crate) const BUF_FLAG_ERROR: u32 = 0x0000_0040;
pub(crate) const BUF_FLAG_TIMESTAMP_MASK: u32 = 0x0000_e000;
pub(crate) const BUF_FLAG_TIMESTAMP_MONOTONIC: u32 = 0x0000_2000;

/// `V4L2_CID_MPEG_VIDEO_FORCE_KEY_FRAME`: a button that makes an encoding device's next frame
/// an IDR.
pub(crate) const CID_FORCE_KEY_FRAME: u32 = 0x0099_09e5;
/// The codec class's encoder controls (`<linux/v4l2-controls.h>`, `V4L2_CID_MPEG_VIDEO_*`).
pub(crate) const CID_BITRATE_MODE: u32 = 0x0099_09ce;
pub(crate) const CID_BITRATE: u32 = 0x0099_09cf;
pub(crate) const CID_REPEAT_SEQ_HEADER: u32 = 0x0099_09e2;
pub(crate) const CID_H264_I_PERIOD: u32 = 0x0099_0a66;
pub(crate) const CID_H264_LEVEL: u32 = 0x0099_0a67;
pub(crate) const CID_H264_PROFILE: u32 = 0x0099_0a6b;
pub(crate) const BITRATE_MODE_CBR: i32 = 1;
pub(crate) const H264_PROFILE_CONSTRAINED_BASELINE: i32 = 1;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Capability {
    pub driver: [u8; 16],
    pub card: [u8; 32],
    pub bus_info: [u8; 32],
    pub version: u32,
    pub capabilities: u32,
    pub device_caps: u32,
    pub reserved: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct FmtDesc {
    pub index: u32,
    pub type_: u32,
    pub flags: u32,
    pub description: [u8; 32],
    pub pixelformat: u32,
    pub mbus_code: u32,
    pub reserved: [u32; 3],
}

/// `v4l2_selection`; `V4L2_SEL_TGT_CROP` on an encoder's OUTPUT queue is the visible picture
/// within the (aligned) buffer.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Selection {
    pub type_: u32,
    pub target: u32,
    pub flags: u32,
    pub left: i32,
    pub top: i32,
    pub width: u32,
    pub height: u32,
    pub reserved: [u32; 9],
}
pub(crate) const SEL_TGT_CROP: u32 = 0;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct EncoderCmd {
    pub cmd: u32,
    pub flags: u32,
    pub data: [u32; 8],
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PixFormat {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub bytesperline: u32,
    pub sizeimage: u32,
    pub colorspace: u32,
    pub priv_: u32,
    pub flags: u32,
    pub ycbcr_enc: u32,
    pub quantization: u32,
    pub xfer_func: u32,
}

#[repr(C, packed)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PlanePixFormat {
    pub sizeimage: u32,
    pub bytesperline: u32,
    pub reserved: [u16; 6],
}

#[repr(C, packed)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct PixFormatMplane {
    pub width: u32,
    pub height: u32,
    pub pixelformat: u32,
    pub field: u32,
    pub colorspace: u32,
    pub plane_fmt: [PlanePixFormat; VIDEO_MAX_PLANES],
    pub num_planes: u8,
    pub flags: u8,
    pub ycbcr_enc: u8,
    pub quantization: u8,
    pub xfer_func: u8,
    pub reserved: [u8; 7],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union FormatUnion {
    pub pix: PixFormat,
    pub pix_mp: PixFormatMplane,
    pub raw: [u8; 200],
    /// The kernel's union holds pointers (`v4l2_window`), which sets its alignment.
    _align: *mut libc::c_void,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Format {
    pub type_: u32,
    pub fmt: FormatUnion,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct RequestBuffers {
    pub count: u32,
    pub type_: u32,
    pub memory: u32,
    pub capabilities: u32,
    pub flags: u8,
    pub reserved: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Timecode {
    pub type_: u32,
    pub flags: u32,
    pub frames: u8,
    pub seconds: u8,
    pub minutes: u8,
    pub hours: u8,
    pub userbits: [u8; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union PlaneMem {
    pub mem_offset: u32,
    pub userptr: libc::c_ulong,
    pub fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Plane {
    pub bytesused: u32,
    pub length: u32,
    pub m: PlaneMem,
    pub data_offset: u32,
    pub reserved: [u32; 11],
}

/// `v4l2_exportbuffer`: one buffer plane as a dma-buf file descriptor (`VIDIOC_EXPBUF`).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ExportBuffer {
    pub type_: u32,
    pub index: u32,
    pub plane: u32,
    pub flags: u32,
    pub fd: i32,
    pub reserved: [u32; 11],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union BufferMem {
    pub offset: u32,
    pub userptr: libc::c_ulong,
    pub planes: *mut Plane,
    pub fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Buffer {
    pub index: u32,
    pub type_: u32,
    pub bytesused: u32,
    pub flags: u32,
    pub field: u32,
    pub timestamp: libc::timeval,
    pub timecode: Timecode,
    pub sequence: u32,
    pub memory: u32,
    pub m: BufferMem,
    pub length: u32,
    pub reserved2: u32,
    pub request_fd: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Fract {
    pub numerator: u32,
    pub denominator: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct CaptureParm {
    pub capability: u32,
    pub capturemode: u32,
    pub timeperframe: Fract,
    pub extendedmode: u32,
    pub readbuffers: u32,
    pub reserved: [u32; 4],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) union StreamParmUnion {
    pub capture: CaptureParm,
    pub raw: [u8; 200],
}

#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct StreamParm {
    pub type_: u32,
    pub parm: StreamParmUnion,
}

pub(crate) const CTRL_FLAG_NEXT_CTRL: u32 = 0x8000_0000;
pub(crate) const CTRL_FLAG_DISABLED: u32 = 0x0001;
pub(crate) const CTRL_FLAG_GRABBED: u32 = 0x0002;
pub(crate) const CTRL_FLAG_READ_ONLY: u32 = 0x0004;
pub(crate) const CTRL_FLAG_INACTIVE: u32 = 0x0010;
pub(crate) const CTRL_FLAG_WRITE_ONLY: u32 = 0x0040;

pub(crate) const CTRL_TYPE_INTEGER: u32 = 1;
pub(crate) const CTRL_TYPE_BOOLEAN: u32 = 2;
pub(crate) const CTRL_TYPE_MENU: u32 = 3;
pub(crate) const CTRL_TYPE_BUTTON: u32 = 4;
pub(crate) const CTRL_TYPE_INTEGER64: u32 = 5;
pub(crate) const CTRL_TYPE_CTRL_CLASS: u32 = 6;
pub(crate) const CTRL_TYPE_INTEGER_MENU: u32 = 9;

/// `V4L2_CID_BASE` and `V4L2_CID_LASTP1`: the user controls, for drivers that cannot
/// enumerate with `CTRL_FLAG_NEXT_CTRL`.
pub(crate) const CID_BASE: u32 = 0x0098_0900;
pub(crate) const CID_LASTP1: u32 = CID_BASE + 43;

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct QueryCtrl {
    pub id: u32,
    pub type_: u32,
    pub name: [u8; 32],
    pub minimum: i32,
    pub maximum: i32,
    pub step: i32,
    pub default_value: i32,
    pub flags: u32,
    pub reserved: [u32; 2],
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Control {
    pub id: u32,
    pub value: i32,
}

/// `v4l2_querymenu`: `name` is a union with an `i64` value for integer menus.
#[repr(C, packed)]
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct QueryMenu {
    pub id: u32,
    pub index: u32,
    pub name: [u8; 32],
    pub reserved: u32,
}

/// All-zero value of a plain C struct, as the V4L2 API expects before filling in fields.
pub(crate) fn zeroed<T: Copy>() -> T {
    // SAFETY: only used for the repr(C) structs above, for which all-zero bytes are valid
    // (integers, arrays of integers, null pointers).
    unsafe { std::mem::zeroed() }
}

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

const fn ioc(dir: u32, nr: u32, size: usize) -> u32 {
    (dir << 30) | ((size as u32) << 16) | ((b'V' as u32) << 8) | nr
}

pub(crate) const VIDIOC_QUERYCAP: u32 = ioc(IOC_READ, 0, size_of::<Capability>());
pub(crate) const VIDIOC_ENUM_FMT: u32 = ioc(IOC_READ | IOC_WRITE, 2, size_of::<FmtDesc>());
pub(crate) const VIDIOC_S_SELECTION: u32 = ioc(IOC_READ | IOC_WRITE, 95, size_of::<Selection>());
pub(crate) const VIDIOC_ENCODER_CMD: u32 = ioc(IOC_READ | IOC_WRITE, 77, size_of::<EncoderCmd>());
pub(crate) const VIDIOC_G_FMT: u32 = ioc(IOC_READ | IOC_WRITE, 4, size_of::<Format>());
pub(crate) const VIDIOC_S_FMT: u32 = ioc(IOC_READ | IOC_WRITE, 5, size_of::<Format>());
pub(crate) const VIDIOC_REQBUFS: u32 = ioc(IOC_READ | IOC_WRITE, 8, size_of::<RequestBuffers>());
pub(crate) const VIDIOC_QUERYBUF: u32 = ioc(IOC_READ | IOC_WRITE, 9, size_of::<Buffer>());
pub(crate) const VIDIOC_QBUF: u32 = ioc(IOC_READ | IOC_WRITE, 15, size_of::<Buffer>());
pub(crate) const VIDIOC_DQBUF: u32 = ioc(IOC_READ | IOC_WRITE, 17, size_of::<Buffer>());
pub(crate) const VIDIOC_EXPBUF: u32 = ioc(IOC_READ | IOC_WRITE, 16, size_of::<ExportBuffer>());
pub(crate) const VIDIOC_STREAMON: u32 = ioc(IOC_WRITE, 18, size_of::<i32>());
pub(crate) const VIDIOC_STREAMOFF: u32 = ioc(IOC_WRITE, 19, size_of::<i32>());
pub(crate) const VIDIOC_G_CTRL: u32 = ioc(IOC_READ | IOC_WRITE, 27, size_of::<Control>());
pub(crate) const VIDIOC_S_CTRL: u32 = ioc(IOC_READ | IOC_WRITE, 28, size_of::<Control>());
pub(crate) const VIDIOC_QUERYCTRL: u32 = ioc(IOC_READ | IOC_WRITE, 36, size_of::<QueryCtrl>());
pub(crate) const VIDIOC_QUERYMENU: u32 = ioc(IOC_READ | IOC_WRITE, 37, size_of::<QueryMenu>());
pub(crate) const VIDIOC_S_PARM: u32 = ioc(IOC_READ | IOC_WRITE, 22, size_of::<StreamParm>());

/// One ioctl on `fd` with `arg`, retried on EINTR.
///
/// # Safety
/// `request` must be an ioctl whose argument is a `T` (the constants above with their types).
pub(crate) unsafe fn ioctl<T>(fd: RawFd, request: u32, arg: &mut T) -> io::Result<()> {
    loop {
        // SAFETY: the caller pairs the request with its argument type; `arg` is a valid,
        // exclusive pointer for the duration of the call.
        let result = unsafe { libc::ioctl(fd, request as _, arg as *mut T) };
        if result != -1 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes `<linux/videodev2.h>` gives on 64-bit Linux, which the ioctl numbers encode.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn layouts_match_the_kernel_headers() {
        assert_eq!(size_of::<PixFormat>(), 48);
        assert_eq!(size_of::<PixFormatMplane>(), 192);
        assert_eq!(size_of::<Format>(), 208);
        assert_eq!(size_of::<RequestBuffers>(), 20);
        assert_eq!(size_of::<Plane>(), 64);
        assert_eq!(size_of::<Buffer>(), 88);
        assert_eq!(size_of::<StreamParm>(), 204);
        // Known values from the headers.
        assert_eq!(VIDIOC_S_FMT, 0xc0d0_5605);
        assert_eq!(VIDIOC_DQBUF, 0xc058_5611);
        assert_eq!(VIDIOC_STREAMON, 0x4004_5612);
        assert_eq!(VIDIOC_REQBUFS, 0xc014_5608);
    }

    /// These two have no pointers, so their sizes are the same on every target.
    #[test]
    fn control_query_layouts_match_the_kernel_headers() {
        assert_eq!(size_of::<QueryCtrl>(), 68);
        assert_eq!(size_of::<QueryMenu>(), 44);
        assert_eq!(VIDIOC_QUERYCTRL, 0xc044_5624);
        assert_eq!(VIDIOC_QUERYMENU, 0xc02c_5625);
        assert_eq!(VIDIOC_G_CTRL, 0xc008_561b);
        assert_eq!(size_of::<Capability>(), 104);
        assert_eq!(size_of::<FmtDesc>(), 64);
        assert_eq!(size_of::<EncoderCmd>(), 40);
        assert_eq!(VIDIOC_QUERYCAP, 0x8068_5600);
        assert_eq!(VIDIOC_ENUM_FMT, 0xc040_5602);
        assert_eq!(VIDIOC_ENCODER_CMD, 0xc028_564d);
        assert_eq!(size_of::<Selection>(), 64);
        assert_eq!(VIDIOC_S_SELECTION, 0xc040_565f);
        assert_eq!(VIDIOC_S_CTRL, 0xc008_561c);
        assert_eq!(size_of::<ExportBuffer>(), 64);
        assert_eq!(VIDIOC_EXPBUF, 0xc040_5610);
    }
}
