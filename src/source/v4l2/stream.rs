//! Format setting and mmap streaming on a V4L2 capture device, single- or multi-planar.
//!
//! linuxvideo 0.3's `ReadStream` hides each buffer's timestamp and sequence number and cannot
//! stream multi-planar devices, so this is the few ioctls it takes, on a duplicate of the fd of
//! a linuxvideo `Device`. Buffers are either handed to a callback and queued again at once
//! (`next`), or lent out (`lend`, exported as dma-bufs where the driver can) and queued again
//! when the borrower drops them.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::raw::{self, Buffer, Format, Plane, RequestBuffers, StreamParm};
use crate::source::lent::{CameraBuffer, Lender};

/// Buffers asked of the driver: one being filled, one being converted, one spare so the driver
/// never runs dry while a frame is converted (a dry driver drops frames). When buffers are lent
/// to the encoder, one waits in the mailbox and one is being encoded: two stay with the driver.
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

/// The driver's buffers, mapped (and exported as dma-bufs where the driver can), shared by
/// the stream and the buffers it lent out: the memory stays mapped until the last of them is
/// gone.
struct Buffers {
    /// A duplicate of the device's fd, so lent buffers can go back after the stream stopped
    /// and the device closed.
    fd: OwnedFd,
    buf_type: u32,
    mem_planes: usize,
    /// Per buffer, per memory plane.
    mappings: Vec<Vec<Mapping>>,
    /// Per buffer, its first plane as a dma-buf; empty when the driver cannot export.
    exported: Vec<OwnedFd>,
    /// Cleared when the stream stops: buffers lent out then are not queued again.
    streaming: AtomicBool,
}

// SAFETY: the mappings are plain driver memory, only read through shared references; the
// driver does not write a buffer while it is dequeued (handed out or lent).
unsafe impl Send for Buffers {}
// SAFETY: as above; queueing a buffer back is an ioctl, which the kernel serialises.
unsafe impl Sync for Buffers {}

/// A running mmap capture stream. Stops streaming on drop; the buffers are unmapped and freed
/// when the last one lent out comes back.
pub(crate) struct MmapStream {
    buffers: Arc<Buffers>,
}

/// One dequeued buffer's facts.
struct Dequeued {
    index: u32,
    /// (start, end) of each memory plane's data within its mapping.
    regions: [(usize, usize); MAX_PLANES],
    count: usize,
    sequence: u32,
    monotonic: Option<Duration>,
    error: bool,
}

impl MmapStream {
    /// Allocates and maps the buffers, queues them and starts streaming. The stream keeps its
    /// own duplicate of `fd`.
    pub(crate) fn start(fd: RawFd, format: &NegotiatedFormat) -> io::Result<MmapStream> {
        // SAFETY: `fd` is the caller's open device; the duplicate is ours.
        let own = unsafe { BorrowedFd::borrow_raw(fd) }.try_clone_to_owned()?;
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
        let mut buffers = Buffers {
            fd: own,
            buf_type,
            mem_planes: format.strides.len().clamp(1, MAX_PLANES),
            mappings: Vec::with_capacity(request.count as usize),
            exported: Vec::new(),
            streaming: AtomicBool::new(false),
        };
        for index in 0..request.count {
            let mappings = buffers.map_buffer(index)?;
            buffers.mappings.push(mappings);
        }
        if buffers.mem_planes == 1 {
            // Only single-plane pictures are lent out; a driver that cannot export (EINVAL,
            // ENOTTY) just means the encoder copies.
            buffers.exported = (0..request.count)
                .map(|index| buffers.export(index))
                .collect::<io::Result<Vec<_>>>()
                .unwrap_or_default();
        }
        for index in 0..request.count {
            buffers.queue(index)?;
        }
        let mut kind = buf_type as i32;
        // SAFETY: VIDIOC_STREAMON takes an int (the buffer type).
        unsafe { raw::ioctl(fd, raw::VIDIOC_STREAMON, &mut kind)? };
        buffers.streaming.store(true, Ordering::Release);
        Ok(MmapStream {
            buffers: Arc::new(buffers),
        })
    }

    /// True when the driver exports its buffers as dma-bufs (for zero-copy encoding).
    pub(crate) fn exports_dmabuf(&self) -> bool {
        !self.buffers.exported.is_empty()
    }

    /// Waits up to `timeout` for the next filled buffer, hands it to `f`, and gives the buffer
    /// back to the driver.
    pub(crate) fn next<T>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(&Captured<'_>) -> T,
    ) -> io::Result<T> {
        let done = self.dequeue(timeout)?;
        let b = &self.buffers;
        let mut slices: [&[u8]; MAX_PLANES] = [&[]; MAX_PLANES];
        for (i, slice) in slices.iter_mut().enumerate().take(done.count) {
            let (start, end) = done.regions[i];
            *slice = &b.memory_plane(done.index, i)[start..end];
        }
        let captured = Captured {
            planes: &slices[..done.count],
            sequence: done.sequence,
            monotonic: done.monotonic,
            error: done.error,
        };
        let result = f(&captured);
        b.queue(done.index)?;
        Ok(result)
    }

    /// Waits up to `timeout` for the next filled buffer and lends it out: it goes back to the
    /// driver when the returned buffer is dropped. With every buffer lent out the driver has
    /// none to fill, so holders must not keep them long.
    pub(crate) fn lend(&mut self, timeout: Duration) -> io::Result<Lent> {
        let done = self.dequeue(timeout)?;
        let (start, end) = done.regions[0];
        let lender: Arc<dyn Lender> = self.buffers.clone();
        Ok(Lent {
            buffer: CameraBuffer::new(lender, done.index, start, end - start),
            sequence: done.sequence,
            monotonic: done.monotonic,
            error: done.error,
        })
    }

    fn dequeue(&mut self, timeout: Duration) -> io::Result<Dequeued> {
        let b = &self.buffers;
        b.wait_readable(timeout)?;
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = b.buffer(0, &mut planes);
        // SAFETY: VIDIOC_DQBUF takes a v4l2_buffer (planes as in `buffer`).
        unsafe { raw::ioctl(b.fd.as_raw_fd(), raw::VIDIOC_DQBUF, &mut buf)? };
        let index = buf.index;
        let Some(mappings) = b.mappings.get(index as usize) else {
            return Err(io::Error::other(format!(
                "driver returned unknown buffer {index}"
            )));
        };
        let multiplanar = b.buf_type == raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE;
        let count = if multiplanar {
            (buf.length as usize).min(mappings.len())
        } else {
            1
        };
        let mut regions = [(0, 0); MAX_PLANES];
        for (i, mapping) in mappings.iter().take(count).enumerate() {
            let (used, offset) = if multiplanar {
                (planes[i].bytesused as usize, planes[i].data_offset as usize)
            } else {
                (buf.bytesused as usize, 0)
            };
            // Never trust the driver's numbers past the mapping.
            let end = used.min(mapping.len);
            regions[i] = (offset.min(end), end);
        }
        let monotonic = (buf.flags & raw::BUF_FLAG_TIMESTAMP_MASK
            == raw::BUF_FLAG_TIMESTAMP_MONOTONIC)
            .then(|| {
                Duration::new(
                    buf.timestamp.tv_sec.max(0) as u64,
                    (buf.timestamp.tv_usec.clamp(0, 999_999) as u32) * 1000,
                )
            });
        Ok(Dequeued {
            index,
            regions,
            count,
            sequence: buf.sequence,
            monotonic,
            error: buf.flags & raw::BUF_FLAG_ERROR != 0,
        })
    }
}

/// A buffer lent out by `MmapStream::lend`, with its frame's facts.
pub(crate) struct Lent {
    pub buffer: CameraBuffer,
    pub sequence: u32,
    pub monotonic: Option<Duration>,
    pub error: bool,
}

impl Buffers {
    fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
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
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_QUERYBUF, &mut buf)? };
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
                    self.raw_fd(),
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

    /// Buffer `index`'s first plane as a dma-buf (VIDIOC_EXPBUF).
    fn export(&self, index: u32) -> io::Result<OwnedFd> {
        let mut export = raw::ExportBuffer {
            type_: self.buf_type,
            index,
            plane: 0,
            flags: (libc::O_CLOEXEC | libc::O_RDONLY) as u32,
            ..raw::ExportBuffer::default()
        };
        // SAFETY: VIDIOC_EXPBUF takes a v4l2_exportbuffer.
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_EXPBUF, &mut export)? };
        if export.fd < 0 {
            return Err(io::Error::other("the driver exported no fd"));
        }
        // SAFETY: the driver made a new fd for us.
        Ok(unsafe { OwnedFd::from_raw_fd(export.fd) })
    }

    fn memory_plane(&self, index: u32, plane: usize) -> &[u8] {
        match self.mappings.get(index as usize).and_then(|m| m.get(plane)) {
            // SAFETY: the mapping is `len` readable bytes, alive while `self` is.
            Some(m) => unsafe { std::slice::from_raw_parts(m.ptr as *const u8, m.len) },
            None => &[],
        }
    }

    fn queue(&self, index: u32) -> io::Result<()> {
        let mut planes: [Plane; raw::VIDEO_MAX_PLANES] = raw::zeroed();
        let mut buf = self.buffer(index, &mut planes);
        // SAFETY: VIDIOC_QBUF takes a v4l2_buffer (planes as in `buffer`).
        unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_QBUF, &mut buf) }
    }

    fn wait_readable(&self, timeout: Duration) -> io::Result<()> {
        let mut pollfd = libc::pollfd {
            fd: self.raw_fd(),
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

impl Lender for Buffers {
    fn memory(&self, index: u32) -> &[u8] {
        self.memory_plane(index, 0)
    }

    fn dmabuf(&self, index: u32) -> Option<BorrowedFd<'_>> {
        self.exported.get(index as usize).map(AsFd::as_fd)
    }

    fn give_back(&self, index: u32) -> io::Result<()> {
        if !self.streaming.load(Ordering::Acquire) {
            return Ok(());
        }
        self.queue(index)
    }
}

fn unmap(mapping: &Mapping) {
    // SAFETY: unmaps exactly what mmap returned.
    unsafe { libc::munmap(mapping.ptr, mapping.len) };
}

impl Drop for MmapStream {
    fn drop(&mut self) {
        self.buffers.streaming.store(false, Ordering::Release);
        let mut kind = self.buffers.buf_type as i32;
        // SAFETY: VIDIOC_STREAMOFF takes an int. Errors (device gone) change nothing here.
        let _ = unsafe { raw::ioctl(self.buffers.raw_fd(), raw::VIDIOC_STREAMOFF, &mut kind) };
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        for mapping in self.mappings.iter().flatten() {
            unmap(mapping);
        }
        self.exported.clear();
        let mut release = RequestBuffers {
            count: 0,
            type_: self.buf_type,
            memory: raw::MEMORY_MMAP,
            ..RequestBuffers::default()
        };
        // SAFETY: VIDIOC_REQBUFS with count 0 frees the driver's buffers.
        let _ = unsafe { raw::ioctl(self.raw_fd(), raw::VIDIOC_REQBUFS, &mut release) };
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
