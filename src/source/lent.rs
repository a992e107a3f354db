//! A camera's own buffers, lent to the encoder instead of converted.
//!
//! When the board's encoder takes the camera's pixel format with the camera's layout, the
//! capture thread does not turn each picture into I420: it hands the dequeued driver buffer on
//! as it is (`Capture::Camera`), and the encoder reads it, as a dma-buf where both drivers
//! allow it (no copy at all), else with one copy into its own buffer. The buffer goes back to
//! the camera when the last holder drops it: the mailbox when a newer picture replaced it, or
//! the encoder once the device is done reading it. Whatever still needs I420 (the software
//! encoder, the low encoding, snapshots) converts on demand with `CameraFrame::to_i420`.

use std::io;
use std::os::fd::BorrowedFd;
use std::sync::Arc;
use std::time::Instant;

use super::convert::{Converter, PixelFormat};
use super::{Frame, FramePool};

/// One picture in one memory plane, as a driver lays it out: what a camera delivers and what
/// an encoder's OUTPUT queue takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct PlaneFormat {
    pub fourcc: [u8; 4],
    pub width: u32,
    pub height: u32,
    /// Bytes per row of the first (or only) plane.
    pub stride: u32,
    /// Bytes of one picture.
    pub size: u32,
}

impl PlaneFormat {
    /// The layout of a raw camera format in one memory plane, None for formats that are not
    /// raw pictures (MJPEG, H.264) or come in several memory planes.
    pub(crate) fn of_camera(fourcc: [u8; 4], width: u32, height: u32, stride: u32) -> Option<Self> {
        let (format, memory_planes) = PixelFormat::from_fourcc(fourcc)?;
        if memory_planes != 1 {
            return None;
        }
        let rows = match format {
            PixelFormat::I420 | PixelFormat::Yv12 | PixelFormat::Nv12 | PixelFormat::Nv21 => {
                u64::from(height) * 3 / 2
            }
            PixelFormat::Yuyv | PixelFormat::Uyvy => u64::from(height),
            PixelFormat::Mjpeg | PixelFormat::H264 => return None,
        };
        let size = u32::try_from(u64::from(stride) * rows).ok()?;
        Some(PlaneFormat {
            fourcc,
            width,
            height,
            stride,
            size,
        })
    }

    /// True when pictures in `other`'s layout can be read as pictures in this one: the same
    /// format, size and stride, and for planar formats the same plane height (the chroma planes
    /// start after `height` rows). Packed formats only need the rows to be there.
    pub(crate) fn reads_as(&self, other: &PlaneFormat) -> bool {
        let packed = matches!(&self.fourcc, b"YUYV" | b"UYVY");
        self.fourcc == other.fourcc
            && self.width == other.width
            && self.stride == other.stride
            && (if packed {
                self.height >= other.height
            } else {
                self.height == other.height
            })
    }
}

/// Where a lent buffer comes from and goes back to (the camera's stream).
pub(crate) trait Lender: Send + Sync {
    /// Buffer `index`'s memory, whole.
    fn memory(&self, index: u32) -> &[u8];
    /// Buffer `index` as a dma-buf, when the driver exported it.
    fn dmabuf(&self, index: u32) -> Option<BorrowedFd<'_>>;
    /// The buffer is free again: give it back to the driver.
    fn give_back(&self, index: u32) -> io::Result<()>;
}

/// A buffer the camera lent out; goes back to it on drop.
pub(crate) struct CameraBuffer {
    lender: Arc<dyn Lender>,
    index: u32,
    /// The picture's bytes within the buffer.
    start: usize,
    end: usize,
}

/// A dma-buf and where in it the picture is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dmabuf<'a> {
    pub fd: BorrowedFd<'a>,
    /// The whole buffer's length.
    pub length: u32,
    pub offset: u32,
    pub used: u32,
}

impl CameraBuffer {
    /// Buffer `index` of `lender`, whose picture is `used` bytes from `offset` (cut to the
    /// buffer: drivers' numbers are not trusted past it).
    pub(crate) fn new(lender: Arc<dyn Lender>, index: u32, offset: usize, used: usize) -> Self {
        let len = lender.memory(index).len();
        let end = offset.saturating_add(used).min(len);
        let start = offset.min(end);
        CameraBuffer {
            lender,
            index,
            start,
            end,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.lender.memory(self.index)[self.start..self.end]
    }

    pub(crate) fn dmabuf(&self) -> Option<Dmabuf<'_>> {
        let fd = self.lender.dmabuf(self.index)?;
        let length = u32::try_from(self.lender.memory(self.index).len()).ok()?;
        Some(Dmabuf {
            fd,
            length,
            offset: u32::try_from(self.start).ok()?,
            used: u32::try_from(self.end - self.start).ok()?,
        })
    }
}

impl Drop for CameraBuffer {
    fn drop(&mut self) {
        if let Err(e) = self.lender.give_back(self.index) {
            // The stream is stopping or the camera is gone: the next dequeue says so.
            log::debug!("camera buffer {} not given back: {e}", self.index);
        }
    }
}

impl std::fmt::Debug for CameraBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CameraBuffer")
            .field("index", &self.index)
            .field("bytes", &(self.end - self.start))
            .finish()
    }
}

/// A picture in the camera's own buffer and format.
#[derive(Debug)]
pub(crate) struct CameraFrame {
    pub buffer: CameraBuffer,
    pub format: PlaneFormat,
    pub seq: u64,
    pub captured: Instant,
}

impl CameraFrame {
    /// The picture as I420 (even size) in a buffer from `pool`, for what cannot take the
    /// camera's format.
    pub(crate) fn to_i420(&self, pool: &FramePool) -> Result<Frame, String> {
        let f = &self.format;
        let (pixel_format, _) = PixelFormat::from_fourcc(f.fourcc)
            .ok_or_else(|| format!("unknown camera format {:?}", f.fourcc))?;
        let mut converter = Converter::new(pixel_format, f.width, f.height, &[f.stride]);
        let (width, height) = converter.output_size();
        let mut data = pool.get();
        converter
            .convert(&[self.buffer.bytes()], &mut data)
            .map_err(|e| e.to_string())?;
        Ok(Frame {
            width,
            height,
            data,
            seq: self.seq,
            captured: self.captured,
        })
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Lent buffers without a camera: memory in memfds (real dma-buf-like fds), and a count of
    //! the buffers given back.

    use super::*;
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    use std::sync::Mutex;

    pub(crate) struct MemoryLender {
        buffers: Vec<Vec<u8>>,
        fds: Vec<OwnedFd>,
        pub given_back: Mutex<Vec<u32>>,
    }

    impl MemoryLender {
        /// Buffers holding `pictures`, each also in a memfd when `dmabuf`.
        pub(crate) fn new(pictures: Vec<Vec<u8>>, dmabuf: bool) -> Arc<Self> {
            let fds = if dmabuf {
                pictures
                    .iter()
                    .map(|p| {
                        // SAFETY: memfd_create with a NUL-terminated name.
                        let fd = unsafe { libc::memfd_create(c"lent".as_ptr(), 0) };
                        assert!(fd >= 0, "memfd_create");
                        // SAFETY: a fresh fd we own.
                        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                        let file = std::fs::File::from(fd.try_clone().expect("dup"));
                        std::io::Write::write_all(&mut &file, p).expect("memfd write");
                        fd
                    })
                    .collect()
            } else {
                Vec::new()
            };
            Arc::new(MemoryLender {
                buffers: pictures,
                fds,
                given_back: Mutex::new(Vec::new()),
            })
        }

        pub(crate) fn given_back(&self) -> Vec<u32> {
            self.given_back.lock().expect("given back").clone()
        }
    }

    impl Lender for MemoryLender {
        fn memory(&self, index: u32) -> &[u8] {
            self.buffers.get(index as usize).map_or(&[], Vec::as_slice)
        }

        fn dmabuf(&self, index: u32) -> Option<BorrowedFd<'_>> {
            self.fds.get(index as usize).map(AsFd::as_fd)
        }

        fn give_back(&self, index: u32) -> io::Result<()> {
            self.given_back.lock().expect("given back").push(index);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::MemoryLender;
    use super::*;

    #[test]
    fn layouts_of_raw_single_plane_formats_only() {
        let yuyv = PlaneFormat::of_camera(*b"YUYV", 640, 480, 1280).expect("yuyv");
        assert_eq!(yuyv.size, 1280 * 480);
        let nv12 = PlaneFormat::of_camera(*b"NV12", 640, 480, 640).expect("nv12");
        assert_eq!(nv12.size, 640 * 720);
        assert_eq!(PlaneFormat::of_camera(*b"MJPG", 640, 480, 0), None);
        assert_eq!(PlaneFormat::of_camera(*b"H264", 640, 480, 0), None);
        assert_eq!(PlaneFormat::of_camera(*b"NM12", 640, 480, 640), None);
    }

    #[test]
    fn padded_rows_read_as_packed_pictures_but_not_as_planar_ones() {
        let camera = PlaneFormat::of_camera(*b"YUYV", 1920, 1080, 3840).expect("yuyv");
        let encoder = PlaneFormat {
            height: 1088,
            ..camera
        };
        assert!(encoder.reads_as(&camera));
        let camera = PlaneFormat::of_camera(*b"NV12", 1920, 1080, 1920).expect("nv12");
        let encoder = PlaneFormat {
            height: 1088,
            ..camera
        };
        assert!(!encoder.reads_as(&camera), "chroma would start 8 rows late");
        let wider = PlaneFormat {
            stride: 2048,
            ..camera
        };
        assert!(!wider.reads_as(&camera));
    }

    #[test]
    fn a_lent_picture_converts_to_i420_and_goes_back_when_dropped() {
        // 4x2 YUYV: Y=10,20,30,40 / 50,60,70,80, U=100/110, V=200/210 per row pair.
        let picture = vec![
            10, 100, 20, 200, 30, 100, 40, 200, //
            50, 110, 60, 210, 70, 110, 80, 210,
        ];
        let lender = MemoryLender::new(vec![picture], true);
        let format = PlaneFormat::of_camera(*b"YUYV", 4, 2, 8).expect("yuyv");
        let frame = CameraFrame {
            buffer: CameraBuffer::new(lender.clone(), 0, 0, 16),
            format,
            seq: 7,
            captured: Instant::now(),
        };
        let dmabuf = frame.buffer.dmabuf().expect("memfd");
        assert_eq!((dmabuf.length, dmabuf.offset, dmabuf.used), (16, 0, 16));
        let i420 = frame.to_i420(&FramePool::new(12)).expect("converts");
        assert_eq!((i420.width, i420.height, i420.seq), (4, 2, 7));
        assert_eq!(i420.y(), &[10, 20, 30, 40, 50, 60, 70, 80]);
        assert!(lender.given_back().is_empty());
        drop(frame);
        assert_eq!(lender.given_back(), vec![0]);
    }

    #[test]
    fn driver_numbers_past_the_buffer_are_cut() {
        let lender = MemoryLender::new(vec![vec![1; 8]], false);
        let buffer = CameraBuffer::new(lender.clone(), 0, 6, 100);
        assert_eq!(buffer.bytes(), &[1, 1]);
        assert!(buffer.dmabuf().is_none());
        let beyond = CameraBuffer::new(lender, 0, 50, 10);
        assert!(beyond.bytes().is_empty());
    }
}
