//! A fake stateful H.264 encoder at the ioctl boundary (`Io`): it records every request with
//! its values, and "encodes" each picture the moment it is queued into a tiny Annex B access
//! unit (an IDR on the first picture and on FORCE_KEY_FRAME, else a P slice), copying the
//! timestamp as real encoders do.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::io::{Caps, Dequeued, Io, PlaneFormat};
use crate::source::lent::Dmabuf;
use crate::source::v4l2::raw;

pub(crate) const SPS: [u8; 8] = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f];
pub(crate) const PPS: [u8; 8] = [0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80];
pub(crate) const IDR: [u8; 7] = [0, 0, 0, 1, 0x65, 0x88, 0x84];
pub(crate) const P: [u8; 7] = [0, 0, 0, 1, 0x41, 0x9a, 0x02];

/// One request, with the values the encoder sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    SetFormat(u32, PlaneFormat),
    FrameRate(u32, u32),
    Control(u32, i32),
    Crop(u32, u32, u32),
    Allocate(u32, u32),
    Queue {
        buf_type: u32,
        index: u32,
        used: u32,
        timestamp: Duration,
    },
    Stream(u32, bool),
    Command(u32),
    AllocateDmabuf(u32, u32),
    QueueDmabuf {
        buf_type: u32,
        index: u32,
        offset: u32,
        used: u32,
        timestamp: Duration,
    },
}

/// How the fake behaves; the test sets it before the encoder is made.
pub(crate) struct Behaviour {
    pub device_caps: u32,
    pub capture_formats: Vec<[u8; 4]>,
    pub output_formats: Vec<[u8; 4]>,
    /// Control ids the driver refuses (EINVAL).
    pub refused_controls: Vec<u32>,
    /// REQBUFS fails with EBUSY.
    pub busy: bool,
    /// The OUTPUT format the driver answers with: stride and plane height (0: as asked).
    pub stride: u32,
    pub plane_height: u32,
    /// SPS/PPS come in a buffer of their own before the first IDR (and only then).
    pub separate_header: bool,
    /// The driver puts SPS/PPS only in front of the first IDR, whatever REPEAT_SEQ_HEADER says.
    pub headers_once: bool,
    /// Pictures queued produce no bitstream (a stuck encoder).
    pub stuck: bool,
    /// Queueing a dma-buf fails (EFAULT), as a driver that needs contiguous memory does
    /// with a camera's scattered buffers.
    pub refuse_dmabuf: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            device_caps: raw::CAP_VIDEO_M2M_MPLANE | raw::CAP_STREAMING,
            capture_formats: vec![*b"H264"],
            output_formats: vec![*b"YU12", *b"NV12"],
            refused_controls: Vec::new(),
            busy: false,
            stride: 0,
            plane_height: 0,
            separate_header: false,
            headers_once: false,
            stuck: false,
            refuse_dmabuf: false,
        }
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub calls: Vec<Call>,
    /// The last picture queued, as the encoder wrote it into the OUTPUT buffer.
    pub last_picture: Vec<u8>,
    output: Vec<Vec<u8>>,
    capture: Vec<Vec<u8>>,
    free_capture: VecDeque<u32>,
    done_output: VecDeque<u32>,
    ready: VecDeque<Dequeued>,
    key_requested: bool,
    pictures: u64,
    headers_sent: bool,
    drained: bool,
    format: PlaneFormat,
}

impl State {
    /// The controls set, in order.
    pub(crate) fn controls(&self) -> Vec<(u32, i32)> {
        self.calls
            .iter()
            .filter_map(|c| match c {
                Call::Control(id, value) => Some((*id, *value)),
                _ => None,
            })
            .collect()
    }
}

pub(crate) struct Fake {
    behaviour: Behaviour,
    state: Arc<Mutex<State>>,
}

impl Fake {
    pub(crate) fn new(behaviour: Behaviour) -> (Fake, Arc<Mutex<State>>) {
        let state = Arc::new(Mutex::new(State::default()));
        (
            Fake {
                behaviour,
                state: Arc::clone(&state),
            },
            state,
        )
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state")
    }

    fn is_output(buf_type: u32) -> bool {
        matches!(
            buf_type,
            raw::BUF_TYPE_VIDEO_OUTPUT | raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE
        )
    }

    /// Turns the queued picture into a bitstream buffer, if a CAPTURE buffer is free.
    fn encode(&self, state: &mut State, timestamp: Duration) {
        let Some(index) = state.free_capture.pop_front() else {
            return;
        };
        let key = state.pictures == 0 || std::mem::take(&mut state.key_requested);
        state.pictures += 1;
        let with_headers = key && (!self.behaviour.headers_once || !state.headers_sent);
        if with_headers && self.behaviour.separate_header {
            let header = [&SPS[..], &PPS].concat();
            let used = header.len() as u32;
            state.capture[index as usize][..header.len()].copy_from_slice(&header);
            state.ready.push_back(Dequeued {
                index,
                used,
                timestamp,
                ..Dequeued::default()
            });
            state.headers_sent = true;
            let Some(next) = state.free_capture.pop_front() else {
                return;
            };
            self.write_picture(state, next, key, false, timestamp);
            return;
        }
        state.headers_sent |= with_headers;
        self.write_picture(state, index, key, with_headers, timestamp);
    }

    fn write_picture(
        &self,
        state: &mut State,
        index: u32,
        key: bool,
        headers: bool,
        timestamp: Duration,
    ) {
        let data: Vec<u8> = match (key, headers) {
            (true, true) => [&SPS[..], &PPS, &IDR].concat(),
            (true, false) => IDR.to_vec(),
            _ => P.to_vec(),
        };
        state.capture[index as usize][..data.len()].copy_from_slice(&data);
        state.ready.push_back(Dequeued {
            index,
            used: data.len() as u32,
            flags: if key { raw::BUF_FLAG_KEYFRAME } else { 0 },
            timestamp,
            data_offset: 0,
        });
    }
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

impl Io for Fake {
    fn caps(&mut self) -> io::Result<Caps> {
        Ok(Caps {
            driver: "fake".into(),
            card: "fake-encoder".into(),
            device_caps: self.behaviour.device_caps,
        })
    }

    fn formats(&mut self, buf_type: u32) -> io::Result<Vec<[u8; 4]>> {
        Ok(if Self::is_output(buf_type) {
            self.behaviour.output_formats.clone()
        } else {
            self.behaviour.capture_formats.clone()
        })
    }

    fn set_format(&mut self, buf_type: u32, wanted: PlaneFormat) -> io::Result<PlaneFormat> {
        let mut state = self.state();
        state.calls.push(Call::SetFormat(buf_type, wanted));
        if !Self::is_output(buf_type) {
            return Ok(wanted);
        }
        let stride = if self.behaviour.stride > 0 {
            self.behaviour.stride
        } else {
            wanted.stride.max(wanted.width)
        };
        let height = wanted.height.max(self.behaviour.plane_height);
        let agreed = PlaneFormat {
            stride,
            height,
            size: stride * height * 3 / 2,
            ..wanted
        };
        state.format = agreed;
        Ok(agreed)
    }

    fn set_frame_rate(&mut self, buf_type: u32, fps: u32) -> io::Result<()> {
        self.state().calls.push(Call::FrameRate(buf_type, fps));
        Ok(())
    }

    fn set_control(&mut self, id: u32, value: i32) -> io::Result<()> {
        let mut state = self.state();
        state.calls.push(Call::Control(id, value));
        if self.behaviour.refused_controls.contains(&id) {
            return Err(einval());
        }
        if id == raw::CID_FORCE_KEY_FRAME {
            state.key_requested = true;
        }
        Ok(())
    }

    fn set_crop(&mut self, buf_type: u32, width: u32, height: u32) -> io::Result<()> {
        self.state().calls.push(Call::Crop(buf_type, width, height));
        Ok(())
    }

    fn allocate(&mut self, buf_type: u32, count: u32) -> io::Result<u32> {
        let mut state = self.state();
        state.calls.push(Call::Allocate(buf_type, count));
        if self.behaviour.busy && count > 0 {
            return Err(io::Error::from_raw_os_error(libc::EBUSY));
        }
        let size = if Self::is_output(buf_type) {
            state.format.size as usize
        } else {
            4096
        };
        let buffers = vec![vec![0u8; size]; count as usize];
        if Self::is_output(buf_type) {
            state.output = buffers;
        } else {
            state.capture = buffers;
            state.free_capture.clear();
        }
        Ok(count)
    }

    fn plane(&mut self, buf_type: u32, index: u32) -> Option<&mut [u8]> {
        // The encoder writes into a buffer it owns; the fake hands out a raw view of its
        // vector, which stays put until the next `allocate`.
        let mut state = self.state();
        let buffers = if Self::is_output(buf_type) {
            &mut state.output
        } else {
            &mut state.capture
        };
        let buffer = buffers.get_mut(index as usize)?;
        let (ptr, len) = (buffer.as_mut_ptr(), buffer.len());
        // SAFETY: the vector is not resized or dropped while the encoder holds the slice (only
        // `allocate`, which needs &mut self, replaces it), and tests run one encoder per fake.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }

    fn queue(
        &mut self,
        buf_type: u32,
        index: u32,
        used: u32,
        timestamp: Duration,
    ) -> io::Result<()> {
        let mut state = self.state();
        state.calls.push(Call::Queue {
            buf_type,
            index,
            used,
            timestamp,
        });
        if Self::is_output(buf_type) {
            let picture = state.output.get(index as usize).ok_or_else(einval)?.clone();
            state.last_picture = picture;
            state.done_output.push_back(index);
            if !self.behaviour.stuck {
                self.encode(&mut state, timestamp);
            }
        } else {
            state.free_capture.push_back(index);
        }
        Ok(())
    }

    fn allocate_dmabuf(&mut self, buf_type: u32, count: u32) -> io::Result<u32> {
        let mut state = self.state();
        state.calls.push(Call::AllocateDmabuf(buf_type, count));
        state.output = vec![Vec::new(); count as usize];
        Ok(count)
    }

    fn queue_dmabuf(
        &mut self,
        buf_type: u32,
        index: u32,
        dmabuf: &Dmabuf<'_>,
        timestamp: Duration,
    ) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut state = self.state();
        state.calls.push(Call::QueueDmabuf {
            buf_type,
            index,
            offset: dmabuf.offset,
            used: dmabuf.used,
            timestamp,
        });
        if self.behaviour.refuse_dmabuf {
            return Err(io::Error::from_raw_os_error(libc::EFAULT));
        }
        // What the device reads: the picture, straight from the other device's memory.
        let file = std::fs::File::from(dmabuf.fd.try_clone_to_owned()?);
        let mut picture = vec![0; dmabuf.used as usize];
        file.read_exact_at(&mut picture, u64::from(dmabuf.offset))?;
        state.last_picture = picture;
        state.done_output.push_back(index);
        if !self.behaviour.stuck {
            self.encode(&mut state, timestamp);
        }
        Ok(())
    }

    fn dequeue(&mut self, buf_type: u32) -> io::Result<Dequeued> {
        let mut state = self.state();
        if Self::is_output(buf_type) {
            let index = state.done_output.pop_front();
            return index
                .map(|index| Dequeued {
                    index,
                    ..Dequeued::default()
                })
                .ok_or_else(|| io::ErrorKind::WouldBlock.into());
        }
        if let Some(ready) = state.ready.pop_front() {
            return Ok(ready);
        }
        if state.drained {
            return Err(io::Error::from_raw_os_error(libc::EPIPE));
        }
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn stream(&mut self, buf_type: u32, on: bool) -> io::Result<()> {
        let mut state = self.state();
        state.calls.push(Call::Stream(buf_type, on));
        if !Self::is_output(buf_type) && on {
            // A new stream: it starts with an IDR and its parameter sets.
            state.pictures = 0;
            state.headers_sent = false;
            state.drained = false;
            state.ready.clear();
        }
        Ok(())
    }

    fn encoder_command(&mut self, cmd: u32) -> io::Result<()> {
        let mut state = self.state();
        state.calls.push(Call::Command(cmd));
        if cmd == raw::ENC_CMD_STOP {
            // Everything queued is out already; the last buffer is an empty one.
            if let Some(index) = state.free_capture.pop_front() {
                state.ready.push_back(Dequeued {
                    index,
                    flags: raw::BUF_FLAG_LAST,
                    ..Dequeued::default()
                });
            }
            state.drained = true;
        }
        Ok(())
    }

    fn wait(&mut self, events: i16, _timeout: Duration) -> io::Result<i16> {
        let state = self.state();
        let mut ready = 0;
        if events & libc::POLLIN != 0 && !state.ready.is_empty() {
            ready |= libc::POLLIN;
        }
        if events & libc::POLLOUT != 0 && !state.done_output.is_empty() {
            ready |= libc::POLLOUT;
        }
        Ok(ready)
    }
}
