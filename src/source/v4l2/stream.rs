//! Format setting and mmap streaming on a V4L2 capture device, single- or multi-planar.
//!
//! linuxvideo 0.3's `ReadStream` hides each buffer's timestamp and sequence number and cannot
//! stream multi-planar devices, so this is the few ioctls it takes, on the fd of a linuxvideo
//! `Device` that the caller keeps open for as long as the stream lives.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::raw::{self, Buffer, Format, Plane, RequestBuffers, StreamParm};

/// Buffers asked of the driver: one being filled, one being converted, one spare so the driver
/// never runs dry while a frame is converted (a dry driver drops frames).
const BUFFER_COUNT: u32 = 4;
/// rtcam's formats have at most three memory planes.
const MAX_PLANES: usize = 3;

/// What the driver agreed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NegotiatedFormat {
    pub fourcc: [u8; 4],
    pub width: u32,
    pub height: u32,
    /// Bytes per row of each memory plane.
    pub strides: Vec<u32>,
    pub multiplanar: bool,
}

impl NegotiatedFormat {
    pub(crate) fn buf_type(&self) -> u32 {
        if self.multiplanar {
            raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE
        } else {
            raw::BUF_TYPE_VIDEO_CAPTURE
        }
    }
}

/// Sets the capture format (VIDIOC_S_FMT); the driver may adjust size and format.
pub(crate) fn set_format(
    fd: RawFd,
    multiplanar: bool,
    fourcc: [u8; 4],
    width: u32,
    height: u32,
) -> io::Result<NegotiatedFormat> {
    let mut format: Format = raw::zeroed();
    let pixelformat = u32::from_le_bytes(fourcc);
    if multiplanar {
        format.type_ = raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE;
        let mut pix: raw::PixFormatMplane = raw::zeroed();
        pix.width = width;
        pix.height = height;
        pix.pixelformat = pixelformat;
        pix.field = raw::FIELD_NONE;
        format.fmt.pix_mp = pix;
    } else {
        format.type_ = raw::BUF_TYPE_VIDEO_CAPTURE;
        format.fmt.pix = raw::PixFormat {
            width,
            height,
            pixelformat,
            field: raw::FIELD_NONE,
            ..raw::PixFormat::default()
        };
    }
    // SAFETY: VIDIOC_S_FMT takes a v4l2_format.
    unsafe { raw::ioctl(fd, raw::VIDIOC_S_FMT, &mut format)? };
    // SAFETY: the driver filled in the member that matches the type we set.
    let negotiated = unsafe {
        if multiplanar {
            let pix = format.fmt.pix_mp;
            let planes = usize::from(pix.num_planes).clamp(1, MAX_PLANES);
            let plane_fmt = pix.plane_fmt;
            NegotiatedFormat {
                fourcc: pix.pixelformat.to_le_bytes(),
                width: pix.width,
                height: pix.height,
                strides: plane_fmt[..planes].iter().map(|p| p.bytesperline).collect(),
                multiplanar,
            }
        } else {
            let pix = format.fmt.pix;
            NegotiatedFormat {
                fourcc: pix.pixelformat.to_le_bytes(),
                width: pix.width,
                height: pix.height,
                strides: vec![pix.bytesperline],
                multiplanar,
            }
        }
    };
    Ok(negotiated)
}

/// Asks for a frame rate (VIDIOC_S_PARM); returns the rate the driver chose, None if the
/// driver does not let the rate be set.
pub(crate) fn set_frame_rate(fd: RawFd, buf_type: u32, fps: u32) -> Option<f64> {
    let mut parm: StreamParm = raw::zeroed();
    parm.type_ = buf_type;
    parm.parm.capture = raw::CaptureParm {
        timeperframe: raw::Fract {
            numerator: 1,
            denominator: fps.max(1),
        },
        ..raw::CaptureParm::default()
    };
    // SAFETY: VIDIOC_S_PARM takes a v4l2_streamparm.
    unsafe { raw::ioctl(fd, raw::VIDIOC_S_PARM, &mut parm).ok()? };
    // SAFETY: the capture member, as the type says.
    let chosen = unsafe { parm.parm.capture.timeperframe };
    (chosen.numerator > 0).then(|| f64::from(chosen.denominator) / f64::from(chosen.numerator))
}

/// One dequeued frame, valid while the callback runs.
pub(crate) struct Captured<'a> {
    /// Each memory plane, cut to what the driver filled.
    pub planes: &'a [&'a [u8]],
    /// The driver's frame counter; gaps are frames the driver dropped.
    pub sequence: u32,
    /// Capture time on CLOCK_MONOTONIC, when the driver stamps buffers with it.
    pub monotonic: Option<Duration>,
    /// The driver flagged the data as possibly corrupt.
    pub error: bool,
}

struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

/// A running mmap capture stream. Stops streaming and unmaps on drop.
pub(crate) struct MmapStream {
    fd: RawFd,
    buf_type: u32,
    mem_planes: usize,
    /// Per buffer, per memory plane.
    buffers: Vec<Vec<Mapping>>,
}

// SAFETY: the mappings are plain memory owned by this stream and only read through &mut self.
unsafe impl Send for MmapStream {}

impl MmapStream {
    /// Allocates and maps the buffers, queues them and starts streaming. `fd` must stay open
    /// while the stream lives.
    pub(crate) fn start(fd: RawFd, format: &NegotiatedFormat) -> io::Result<MmapStream> {
        let buf_type = format.buf_type();
        let mut request = RequestBuffers {
            count: BUFFER_COUNT,
            type_: buf_type,
            memory: raw::MEMORY_MMAP,
            ..RequestBuffers::default()
        };
        // SAFETY: VIDIOC_REQBUFS takes a v4l2_requestbuffers.
        unsafe { raw::ioctl(fd, raw::VIDIOC_REQBUFS, &mut request)? };
        if request.count == 0 {
            return Err(io::Error::other("the driver gave no capture buffers"));
        }
        let mut stream = MmapStream {
            fd,
            buf_type,
            mem_planes: format.strides.len().clamp(1, MAX_PLANES),
            buffers: Vec::with_capacity(request.count as usize),
        };
        for index in 0..request.count {
            let mappings = stream.map_buffer(index)?;
            stream.buffers.push(mappings);
        }
        for index in 0..request.count {
            stream.queue(index)?;
        }
        let mut kind = buf_type as i32;
        // SAFETY: VIDIOC_STREAMON takes an int (the buffer type).
        unsafe { raw::ioctl(fd, raw::VIDIOC_STREAMON, &mut kind)? };
        Ok(stream)
    }

    fn buffer(&self, index: u32, planes: &mut [Plane; raw::VIDEO_MAX_PLANES]) -> Buffer {
        let mut buf: Buffer = raw::zeroed();
        buf.index = index;
        buf.type_ = self.buf_type;
        buf.memory = raw::MEMORY_MMAP;
        if self.buf_type == raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE {
            buf.m.planes = planes.as_mut_ptr();
            buf.length = raw::VIDEO_MAX_PLANES as u32;
        }
        buf
    }

    fn map_buffer(&self, index: u32) -> io::Result<Vec<Mapping>> {
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = self.buffer(index, &mut planes);
        // SAFETY: VIDIOC_QUERYBUF takes a v4l2_buffer; for multi-planar buffers `m.planes`
        // points at VIDEO_MAX_PLANES planes that outlive the call.
        unsafe { raw::ioctl(self.fd, raw::VIDIOC_QUERYBUF, &mut buf)? };
        let regions: Vec<(usize, i64)> = if self.buf_type == raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE {
            let count = (buf.length as usize).min(self.mem_planes);
            // SAFETY: the driver filled `count` planes with their mmap offsets.
            planes[..count]
                .iter()
                .map(|p| (p.length as usize, i64::from(unsafe { p.m.mem_offset })))
                .collect()
        } else {
            // SAFETY: single-planar mmap buffers report their offset in `m.offset`.
            vec![(buf.length as usize, i64::from(unsafe { buf.m.offset }))]
        };
        let mut mappings = Vec::with_capacity(regions.len());
        for (len, offset) in regions {
            // SAFETY: maps a driver buffer read-only; the mapping is owned by `Mapping` and
            // unmapped in Drop.
            let ptr = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ,
                    libc::MAP_SHARED,
                    self.fd,
                    offset as libc::off_t,
                )
            };
            if ptr == libc::MAP_FAILED {
                let err = io::Error::last_os_error();
                for m in mappings {
                    unmap(&m);
                }
                return Err(err);
            }
            mappings.push(Mapping { ptr, len });
        }
        Ok(mappings)
    }

    fn queue(&self, index: u32) -> io::Result<()> {
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = self.buffer(index, &mut planes);
        // SAFETY: VIDIOC_QBUF takes a v4l2_buffer (planes as in `buffer`).
        unsafe { raw::ioctl(self.fd, raw::VIDIOC_QBUF, &mut buf) }
    }

    /// Waits up to `timeout` for the next filled buffer, hands it to `f`, and gives the buffer
    /// back to the driver.
    pub(crate) fn next<T>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&Captured<'_>) -> T,
    ) -> io::Result<T> {
        self.wait_readable(timeout)?;
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = self.buffer(0, &mut planes);
        // SAFETY: VIDIOC_DQBUF takes a v4l2_buffer (planes as in `buffer`).
        unsafe { raw::ioctl(self.fd, raw::VIDIOC_DQBUF, &mut buf)? };
        let index = buf.index;
        let Some(mappings) = self.buffers.get(index as usize) else {
            return Err(io::Error::other(format!(
                "driver returned unknown buffer {index}"
            )));
        };
        let mut slices: [&[u8]; MAX_PLANES] = [&[]; MAX_PLANES];
        let count = if self.buf_type == raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE {
            (buf.length as usize).min(mappings.len())
        } else {
            1
        };
        for (i, mapping) in mappings.iter().take(count).enumerate() {
            let (used, offset) = if self.buf_type == raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE {
                (planes[i].bytesused as usize, planes[i].data_offset as usize)
            } else {
                (buf.bytesused as usize, 0)
            };
            // Never trust the driver's numbers past the mapping.
            let end = used.min(mapping.len);
            let start = offset.min(end);
            // SAFETY: the mapping is `len` readable bytes, alive while `self` is, and the
            // driver does not write a buffer while it is dequeued.
            let all = unsafe { std::slice::from_raw_parts(mapping.ptr as *const u8, mapping.len) };
            slices[i] = &all[start..end];
        }
        let monotonic = (buf.flags & raw::BUF_FLAG_TIMESTAMP_MASK
            == raw::BUF_FLAG_TIMESTAMP_MONOTONIC)
            .then(|| {
                Duration::new(
                    buf.timestamp.tv_sec.max(0) as u64,
                    (buf.timestamp.tv_usec.clamp(0, 999_999) as u32) * 1000,
                )
            });
        let captured = Captured {
            planes: &slices[..count],
            sequence: buf.sequence,
            monotonic,
            error: buf.flags & raw::BUF_FLAG_ERROR != 0,
        };
        let result = f(&captured);
        self.queue(index)?;
        Ok(result)
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        let mut pollfd = libc::pollfd {
            fd: self.fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = timeout.as_millis().min(i32::MAX as u128) as i32;
        loop {
            // SAFETY: one valid pollfd.
            let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
            if ready < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            if ready == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no frame within {:.1} s", timeout.as_secs_f64()),
                ));
            }
            if pollfd.revents & libc::POLLIN == 0 {
                return Err(io::Error::other(
                    "the device reported an error (gone or stopped)",
                ));
            }
            return Ok(());
        }
    }
}

fn unmap(mapping: &Mapping) {
    // SAFETY: unmaps exactly what mmap returned.
    unsafe { libc::munmap(mapping.ptr, mapping.len) };
}

impl Drop for MmapStream {
    fn drop(&mut self) {
        let mut kind = self.buf_type as i32;
        // SAFETY: VIDIOC_STREAMOFF takes an int. Errors (device gone) change nothing here.
        let _ = unsafe { raw::ioctl(self.fd, raw::VIDIOC_STREAMOFF, &mut kind) };
        for mapping in self.buffers.iter().flatten() {
            unmap(mapping);
        }
        let mut release = RequestBuffers {
            count: 0,
            type_: self.buf_type,
            memory: raw::MEMORY_MMAP,
            ..RequestBuffers::default()
        };
        // SAFETY: VIDIOC_REQBUFS with count 0 frees the driver's buffers.
        let _ = unsafe { raw::ioctl(self.fd, raw::VIDIOC_REQBUFS, &mut release) };
    }
}

/// CLOCK_MONOTONIC now, to turn driver timestamps into `Instant`s.
pub(crate) fn monotonic_now() -> Duration {
    let mut ts: libc::timespec = raw::zeroed();
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}
