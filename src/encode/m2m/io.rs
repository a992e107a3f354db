//! The ioctl boundary of a V4L2 memory-to-memory device, as a narrow trait: the encoder
//! (`super::M2mEncoder`) speaks only through it, so the unit tests put a fake device in its
//! place and check every request value, and the real one (`DeviceIo`) is a thin layer over the
//! raw ioctls of `crate::source::v4l2::raw`.
//!
//! Buffers are mmap'ed by the device side (`allocate`) and reached through `plane`: the fake
//! keeps plain vectors, the real device its mappings.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use crate::source::lent::Dmabuf;
use crate::source::v4l2::raw::{self, Buffer, Format, Plane, RequestBuffers, StreamParm};

/// At most this many memory planes per buffer (I420 and H.264 use one).
const MAX_PLANES: usize = 3;

/// What `VIDIOC_QUERYCAP` says, trimmed to what an encoder needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caps {
    pub driver: String,
    pub card: String,
    /// The node's own capabilities (`device_caps`, or `capabilities` on old drivers).
    pub device_caps: u32,
}

/// What `VIDIOC_S_FMT` agreed to on one queue (stride 0 for compressed formats).
pub(crate) use crate::source::PlaneFormat;

/// A buffer the driver handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Dequeued {
    pub index: u32,
    /// Bytes of payload in the first plane, from `data_offset` on.
    pub used: u32,
    pub data_offset: u32,
    pub flags: u32,
    /// The timestamp copied from the OUTPUT buffer this came from.
    pub timestamp: Duration,
}

/// The ioctls an M2M encoder needs. `buf_type` is the V4L2 buffer type (`raw::BUF_TYPE_*`).
pub(crate) trait Io: Send {
    fn caps(&mut self) -> io::Result<Caps>;
    /// The fourccs a queue offers (VIDIOC_ENUM_FMT).
    fn formats(&mut self, buf_type: u32) -> io::Result<Vec<[u8; 4]>>;
    fn set_format(&mut self, buf_type: u32, wanted: PlaneFormat) -> io::Result<PlaneFormat>;
    /// VIDIOC_S_PARM's time per frame on the OUTPUT queue (the encoder's rate control uses it).
    fn set_frame_rate(&mut self, buf_type: u32, fps: u32) -> io::Result<()>;
    fn set_control(&mut self, id: u32, value: i32) -> io::Result<()>;
    /// VIDIOC_S_SELECTION, crop target: the visible `width`x`height` at the top left of a
    /// buffer the driver made bigger (aligned).
    fn set_crop(&mut self, buf_type: u32, width: u32, height: u32) -> io::Result<()>;
    /// VIDIOC_REQBUFS (MMAP) and, for a count above zero, maps every buffer. Count zero frees
    /// them. Returns the count the driver gave.
    fn allocate(&mut self, buf_type: u32, count: u32) -> io::Result<u32>;
    /// The first plane of a mapped buffer.
    fn plane(&mut self, buf_type: u32, index: u32) -> Option<&mut [u8]>;
    fn queue(
        &mut self,
        buf_type: u32,
        index: u32,
        used: u32,
        timestamp: Duration,
    ) -> io::Result<()>;
    /// VIDIOC_REQBUFS for buffers that are other devices' dma-bufs, given at queue time.
    fn allocate_dmabuf(&mut self, buf_type: u32, count: u32) -> io::Result<u32>;
    /// Queues buffer `index` as `dmabuf` (VIDIOC_QBUF, `V4L2_MEMORY_DMABUF`).
    fn queue_dmabuf(
        &mut self,
        buf_type: u32,
        index: u32,
        dmabuf: &Dmabuf<'_>,
        timestamp: Duration,
    ) -> io::Result<()>;
    /// `ErrorKind::WouldBlock` when nothing is ready; EPIPE after the last buffer of a drain.
    fn dequeue(&mut self, buf_type: u32) -> io::Result<Dequeued>;
    fn stream(&mut self, buf_type: u32, on: bool) -> io::Result<()>;
    fn encoder_command(&mut self, cmd: u32) -> io::Result<()>;
    /// Waits up to `timeout` for `events` (POLLIN: a CAPTURE buffer is ready, POLLOUT: an
    /// OUTPUT buffer is); returns the events that came (0 on timeout).
    fn wait(&mut self, events: i16, timeout: Duration) -> io::Result<i16>;
}

fn is_output(buf_type: u32) -> bool {
    matches!(
        buf_type,
        raw::BUF_TYPE_VIDEO_OUTPUT | raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE
    )
}

pub(crate) fn is_multiplanar(buf_type: u32) -> bool {
    matches!(
        buf_type,
        raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE | raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE
    )
}

struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what mmap returned.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

/// A real device node, opened non-blocking.
pub(crate) struct DeviceIo {
    fd: OwnedFd,
    /// Mappings per buffer type index (OUTPUT, CAPTURE), per buffer. Dropped before `fd`.
    output: Vec<Mapping>,
    capture: Vec<Mapping>,
    /// How the OUTPUT queue's buffers were allocated: mmap'ed, or dma-bufs given at queue time.
    output_memory: u32,
}

// SAFETY: the mappings are memory owned by this value and reached only through &mut self.
unsafe impl Send for DeviceIo {}

impl DeviceIo {
    pub(crate) fn open(path: &Path) -> io::Result<DeviceIo> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        Ok(DeviceIo {
            fd: file.into(),
            output: Vec::new(),
            capture: Vec::new(),
            output_memory: raw::MEMORY_MMAP,
        })
    }

    fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    fn mappings(&mut self, buf_type: u32) -> &mut Vec<Mapping> {
        match buf_type {
            raw::BUF_TYPE_VIDEO_OUTPUT | raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE => &mut self.output,
            _ => &mut self.capture,
        }
    }

    fn buffer(
        &self,
        buf_type: u32,
        index: u32,
        planes: &mut [Plane; raw::VIDEO_MAX_PLANES],
    ) -> Buffer {
        let mut buf: Buffer = raw::zeroed();
        buf.index = index;
        buf.type_ = buf_type;
        buf.memory = if is_output(buf_type) {
            self.output_memory
        } else {
            raw::MEMORY_MMAP
        };
        if is_multiplanar(buf_type) {
            buf.m.planes = planes.as_mut_ptr();
            buf.length = MAX_PLANES as u32;
        }
        buf
    }

    /// VIDIOC_REQBUFS: `count` buffers of `memory` (0 frees them); how many the driver gave.
    fn request_buffers(&mut self, buf_type: u32, count: u32, memory: u32) -> io::Result<u32> {
        let mut request = RequestBuffers {
            count,
            type_: buf_type,
            memory,
            ..RequestBuffers::default()
        };
        // SAFETY: VIDIOC_REQBUFS takes a v4l2_requestbuffers.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_REQBUFS, &mut request)? };
        if is_output(buf_type) {
            self.output_memory = memory;
        }
        Ok(request.count)
    }

    /// VIDIOC_QBUF of `buf` (whose `m.planes`, if any, the caller keeps alive) with
    /// `timestamp`, which the device copies to the bitstream buffer it makes of it.
    fn queue_stamped(&self, mut buf: Buffer, timestamp: Duration) -> io::Result<()> {
        buf.field = raw::FIELD_NONE;
        buf.timestamp = libc::timeval {
            tv_sec: timestamp.as_secs() as libc::time_t,
            tv_usec: timestamp.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: VIDIOC_QBUF takes a v4l2_buffer; `m.planes` as in `buffer`.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_QBUF, &mut buf) }
    }

    fn map(&self, buf_type: u32, index: u32) -> io::Result<Mapping> {
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = self.buffer(buf_type, index, &mut planes);
        // SAFETY: VIDIOC_QUERYBUF takes a v4l2_buffer; for multi-planar buffers `m.planes`
        // points at VIDEO_MAX_PLANES planes that outlive the call.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_QUERYBUF, &mut buf)? };
        let (len, offset) = if is_multiplanar(buf_type) {
            // SAFETY: the driver filled the first plane with its mmap offset.
            (planes[0].length as usize, unsafe { planes[0].m.mem_offset })
        } else {
            // SAFETY: single-planar mmap buffers report their offset in `m.offset`.
            (buf.length as usize, unsafe { buf.m.offset })
        };
        // SAFETY: maps a driver buffer; owned by `Mapping`, unmapped on drop.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                self.raw_fd(),
                offset as libc::off_t,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { ptr, len })
    }
}

impl Io for DeviceIo {
    fn caps(&mut self) -> io::Result<Caps> {
        let mut cap: raw::Capability = raw::zeroed();
        // SAFETY: VIDIOC_QUERYCAP takes a v4l2_capability.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_QUERYCAP, &mut cap)? };
        let text = |b: &[u8]| {
            let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
            String::from_utf8_lossy(&b[..end]).into_owned()
        };
        let device_caps = if cap.capabilities & raw::CAP_DEVICE_CAPS != 0 {
            cap.device_caps
        } else {
            cap.capabilities
        };
        Ok(Caps {
            driver: text(&cap.driver),
            card: text(&cap.card),
            device_caps,
        })
    }

    fn formats(&mut self, buf_type: u32) -> io::Result<Vec<[u8; 4]>> {
        let mut found = Vec::new();
        // Bounded: a broken driver must not loop us forever.
        for index in 0..64 {
            let mut desc = raw::FmtDesc {
                index,
                type_: buf_type,
                ..raw::FmtDesc::default()
            };
            // SAFETY: VIDIOC_ENUM_FMT takes a v4l2_fmtdesc.
            match unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_ENUM_FMT, &mut desc) } {
                Ok(()) => found.push(desc.pixelformat.to_le_bytes()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(found)
    }

    fn set_format(&mut self, buf_type: u32, wanted: PlaneFormat) -> io::Result<PlaneFormat> {
        let mut format: Format = raw::zeroed();
        format.type_ = buf_type;
        let pixelformat = u32::from_le_bytes(wanted.fourcc);
        if is_multiplanar(buf_type) {
            let mut pix: raw::PixFormatMplane = raw::zeroed();
            pix.width = wanted.width;
            pix.height = wanted.height;
            pix.pixelformat = pixelformat;
            pix.field = raw::FIELD_NONE;
            pix.num_planes = 1;
            pix.plane_fmt[0].sizeimage = wanted.size;
            pix.plane_fmt[0].bytesperline = wanted.stride;
            format.fmt.pix_mp = pix;
        } else {
            format.fmt.pix = raw::PixFormat {
                width: wanted.width,
                height: wanted.height,
                pixelformat,
                field: raw::FIELD_NONE,
                bytesperline: wanted.stride,
                sizeimage: wanted.size,
                ..raw::PixFormat::default()
            };
        }
        // SAFETY: VIDIOC_S_FMT takes a v4l2_format.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_S_FMT, &mut format)? };
        // SAFETY: the driver filled in the member that matches the type we set.
        Ok(unsafe {
            if is_multiplanar(buf_type) {
                let pix = format.fmt.pix_mp;
                let plane = pix.plane_fmt[0];
                PlaneFormat {
                    fourcc: pix.pixelformat.to_le_bytes(),
                    width: pix.width,
                    height: pix.height,
                    stride: plane.bytesperline,
                    size: plane.sizeimage,
                }
            } else {
                let pix = format.fmt.pix;
                PlaneFormat {
                    fourcc: pix.pixelformat.to_le_bytes(),
                    width: pix.width,
                    height: pix.height,
                    stride: pix.bytesperline,
                    size: pix.sizeimage,
                }
            }
        })
    }

    fn set_frame_rate(&mut self, buf_type: u32, fps: u32) -> io::Result<()> {
        let mut parm: StreamParm = raw::zeroed();
        parm.type_ = buf_type;
        // v4l2_outputparm has the same layout as v4l2_captureparm up to timeperframe.
        parm.parm.capture = raw::CaptureParm {
            timeperframe: raw::Fract {
                numerator: 1,
                denominator: fps.max(1),
            },
            ..raw::CaptureParm::default()
        };
        // SAFETY: VIDIOC_S_PARM takes a v4l2_streamparm.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_S_PARM, &mut parm) }
    }

    fn set_control(&mut self, id: u32, value: i32) -> io::Result<()> {
        let mut control = raw::Control { id, value };
        // SAFETY: VIDIOC_S_CTRL takes a v4l2_control.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_S_CTRL, &mut control) }
    }

    fn set_crop(&mut self, buf_type: u32, width: u32, height: u32) -> io::Result<()> {
        let mut selection = raw::Selection {
            // The selection API takes the single-planar types for multi-planar queues too.
            type_: match buf_type {
                raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE => raw::BUF_TYPE_VIDEO_OUTPUT,
                other => other,
            },
            target: raw::SEL_TGT_CROP,
            width,
            height,
            ..raw::Selection::default()
        };
        // SAFETY: VIDIOC_S_SELECTION takes a v4l2_selection.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_S_SELECTION, &mut selection) }
    }

    fn allocate_dmabuf(&mut self, buf_type: u32, count: u32) -> io::Result<u32> {
        self.mappings(buf_type).clear();
        self.request_buffers(buf_type, count, raw::MEMORY_DMABUF)
    }

    fn queue_dmabuf(
        &mut self,
        buf_type: u32,
        index: u32,
        dmabuf: &Dmabuf<'_>,
        timestamp: Duration,
    ) -> io::Result<()> {
        let fd = dmabuf.fd.as_raw_fd();
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        planes[0].m.fd = fd;
        planes[0].length = dmabuf.length;
        // The V4L2 spec counts data_offset into bytesused.
        planes[0].bytesused = dmabuf.offset.saturating_add(dmabuf.used);
        planes[0].data_offset = dmabuf.offset;
        let mut buf = self.buffer(buf_type, index, &mut planes);
        if is_multiplanar(buf_type) {
            buf.length = 1;
        } else {
            if dmabuf.offset != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "a single-planar queue cannot take a picture from within a dma-buf",
                ));
            }
            buf.m.fd = fd;
            buf.length = dmabuf.length;
            buf.bytesused = dmabuf.used;
        }
        self.queue_stamped(buf, timestamp)
    }

    fn allocate(&mut self, buf_type: u32, count: u32) -> io::Result<u32> {
        // Unmapped before the driver frees them.
        self.mappings(buf_type).clear();
        let count = self.request_buffers(buf_type, count, raw::MEMORY_MMAP)?;
        let mut mapped = Vec::with_capacity(count as usize);
        for index in 0..count {
            mapped.push(self.map(buf_type, index)?);
        }
        *self.mappings(buf_type) = mapped;
        Ok(count)
    }

    fn plane(&mut self, buf_type: u32, index: u32) -> Option<&mut [u8]> {
        let mapping = self.mappings(buf_type).get(index as usize)?;
        // SAFETY: `len` bytes mapped read-write, alive while `self` is; the driver does not
        // touch a buffer that is not queued, and only dequeued buffers are reached here.
        Some(unsafe { std::slice::from_raw_parts_mut(mapping.ptr.cast::<u8>(), mapping.len) })
    }

    fn queue(
        &mut self,
        buf_type: u32,
        index: u32,
        used: u32,
        timestamp: Duration,
    ) -> io::Result<()> {
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        // Before `buffer` takes the pointer to the planes.
        planes[0].bytesused = used;
        let mut buf = self.buffer(buf_type, index, &mut planes);
        if is_multiplanar(buf_type) {
            buf.length = 1;
        } else {
            buf.bytesused = used;
        }
        self.queue_stamped(buf, timestamp)
    }

    fn dequeue(&mut self, buf_type: u32) -> io::Result<Dequeued> {
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = self.buffer(buf_type, 0, &mut planes);
        // SAFETY: VIDIOC_DQBUF takes a v4l2_buffer (planes as in `buffer`).
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_DQBUF, &mut buf)? };
        let (used, data_offset) = if is_multiplanar(buf_type) {
            let p = planes[0];
            (p.bytesused.saturating_sub(p.data_offset), p.data_offset)
        } else {
            (buf.bytesused, 0)
        };
        Ok(Dequeued {
            index: buf.index,
            used,
            data_offset,
            flags: buf.flags,
            timestamp: Duration::new(
                buf.timestamp.tv_sec.max(0) as u64,
                (buf.timestamp.tv_usec.clamp(0, 999_999) as u32) * 1000,
            ),
        })
    }

    fn stream(&mut self, buf_type: u32, on: bool) -> io::Result<()> {
        let mut kind = buf_type as i32;
        let request = if on {
            raw::VIDIOC_STREAMON
        } else {
            raw::VIDIOC_STREAMOFF
        };
        // SAFETY: VIDIOC_STREAMON/OFF take an int (the buffer type).
        unsafe { raw::ioctl(self.raw_fd(), request, &mut kind) }
    }

    fn encoder_command(&mut self, cmd: u32) -> io::Result<()> {
        let mut command = raw::EncoderCmd {
            cmd,
            ..raw::EncoderCmd::default()
        };
        // SAFETY: VIDIOC_ENCODER_CMD takes a v4l2_encoder_cmd.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_ENCODER_CMD, &mut command) }
    }

    fn wait(&mut self, events: i16, timeout: Duration) -> io::Result<i16> {
        let mut pollfd = libc::pollfd {
            fd: self.raw_fd(),
            events,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
            if ready >= 0 {
                return Ok(if ready == 0 { 0 } else { pollfd.revents });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for DeviceIo {
    fn drop(&mut self) {
        // Unmap before the fd closes (the driver frees the buffers on close).
        self.output.clear();
        self.capture.clear();
    }
}
