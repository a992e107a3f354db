//! The board's own encoder: a stateful V4L2 memory-to-memory encoder (bcm2835-codec on the
//! Raspberry Pi up to the 4, usually /dev/video11). Raw pictures go in on its OUTPUT queue,
//! the bitstream comes out of its CAPTURE queue; single- and multi-planar.
//!
//! One frame at a time: `encode` queues the picture and waits for its bitstream, so the time
//! `encode` takes is the encoder's latency (frame in → bitstream out), which the pipeline's
//! statistics report like the software encoder's encode time.
//!
//! Pictures arrive either as I420 (the pipeline's format: the test pattern, a placeholder, a
//! converted MJPEG frame), copied once into an mmap'ed OUTPUT buffer, or in the camera's own
//! buffer and format (`encode_camera`, after `take_format` found the driver takes that format
//! with the camera's layout): then the device reads the camera's buffer itself as a dma-buf
//! (`V4L2_MEMORY_DMABUF`), or, when the driver refuses it (a device that needs contiguous
//! memory and a camera with scattered buffers), gets a plain copy from then on. Switching
//! between the two (camera lost, camera back) sets the OUTPUT queue up anew: a new stream,
//! which starts with an IDR.
//!
//! The plumbing is generic over the CAPTURE format (`codec`): the product asks for H.264, with
//! the H.264 guarantees of the software path (constrained baseline, the SDP's level, SPS/PPS
//! before every IDR, IDRs on request and periodically, run-time bitrate changes); the VM test
//! runs the same code against the kernel's vicodec, which encodes FWHT.
//!
//! The buffer timestamp carries the frame's sequence number through the device (encoders copy
//! it from the OUTPUT to the CAPTURE buffer), which maps each bitstream buffer back to its
//! picture's sequence number and capture time.

pub(crate) mod discover;
pub(crate) mod io;

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use log::{debug, warn};

use self::io::{DeviceIo, Io, PlaneFormat};
use super::h264::EncodeError;
use super::nal;
use super::parameter_sets::ParameterSets;
use super::{AccessUnit, EncoderSettings, Encoding, level};
use crate::source::v4l2::raw;
use crate::source::{CameraFrame, Frame};

pub(crate) const H264: [u8; 4] = *b"H264";
/// The pipeline's pictures: planar 4:2:0, Y then U then V (`V4L2_PIX_FMT_YUV420`).
pub(crate) const I420: [u8; 4] = *b"YU12";
/// Bitstream buffers queued to the driver; one would do for one frame in flight, more keep a
/// header buffer (SPS/PPS on its own) from stalling the picture behind it.
const CAPTURE_BUFFERS: u32 = 4;
const OUTPUT_BUFFERS: u32 = 2;
/// Longest wait for one picture's bitstream. A hardware encoder takes milliseconds; much
/// longer means it is stuck.
const ENCODE_TIMEOUT: Duration = Duration::from_secs(2);
/// A bitstream buffer asked for, in bytes, when the driver leaves it to us: a worst case IDR.
fn capture_size(width: u32, height: u32) -> u32 {
    (width * height * 3 / 4).max(256 * 1024)
}

/// A stateful M2M encoder, streaming. Stops streaming and frees its buffers on drop.
pub(crate) struct M2mEncoder<D: Io = DeviceIo> {
    io: D,
    codec: [u8; 4],
    settings: EncoderSettings,
    output_type: u32,
    capture_type: u32,
    /// The OUTPUT format the driver agreed to (its stride and height lay out the planes).
    raw: PlaneFormat,
    free_outputs: Vec<u32>,
    /// Frames queued and not yet out, by timestamp: (timestamp, seq, capture time).
    in_flight: VecDeque<(Duration, u64, Instant)>,
    parameter_sets: ParameterSets,
    /// SPS/PPS that came in a buffer of their own, put in front of the next picture.
    header: Vec<u8>,
    started: bool,
    idr_pending: bool,
    last_idr: Option<Instant>,
    /// A drain finished: the CAPTURE queue reports EOS until restarted.
    drained: bool,
    card: String,
    /// What the OUTPUT queue is set up to take.
    input: Input,
    /// Why the driver cannot read the camera's dma-bufs (it then gets a copy); set once.
    dmabuf_refused: Option<String>,
}

/// What the OUTPUT queue takes: I420 pictures (copied in), or pictures in a camera's own
/// format and layout, as dma-bufs of the camera's buffers or copied in as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    I420,
    Camera { format: PlaneFormat, dmabuf: bool },
}

/// How the encoder read a camera's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CameraRead {
    /// The device read the camera's memory itself: no copy.
    Dmabuf,
    /// Copied as it is into the encoder's buffer: one copy, no conversion.
    Copied,
}

impl M2mEncoder<DeviceIo> {
    /// Opens `path` and sets it up for `settings`, encoding to `codec` (H.264 in the product).
    pub(crate) fn open(
        path: &Path,
        settings: &EncoderSettings,
        codec: [u8; 4],
    ) -> Result<Self, EncodeError> {
        let io = DeviceIo::open(path)
            .map_err(|e| EncodeError::Device(format!("{}: cannot open: {e}", path.display())))?;
        M2mEncoder::new(io, settings, codec)
            .map_err(|e| EncodeError::Device(format!("{}: {e}", path.display())))
    }
}

impl<D: Io> M2mEncoder<D> {
    pub(crate) fn new(
        mut io: D,
        settings: &EncoderSettings,
        codec: [u8; 4],
    ) -> Result<Self, EncodeError> {
        super::h264::validate(settings)?;
        let caps = io.caps().map_err(|e| dev("not a V4L2 device", &e))?;
        let (output_type, capture_type) = if caps.device_caps & raw::CAP_VIDEO_M2M_MPLANE != 0 {
            (
                raw::BUF_TYPE_VIDEO_OUTPUT_MPLANE,
                raw::BUF_TYPE_VIDEO_CAPTURE_MPLANE,
            )
        } else if caps.device_caps & raw::CAP_VIDEO_M2M != 0 {
            (raw::BUF_TYPE_VIDEO_OUTPUT, raw::BUF_TYPE_VIDEO_CAPTURE)
        } else {
            return Err(EncodeError::Device(format!(
                "{} is not a memory-to-memory device",
                caps.card
            )));
        };
        if caps.device_caps & raw::CAP_STREAMING == 0 {
            return Err(EncodeError::Device(format!("{} cannot stream", caps.card)));
        }
        let mut encoder = M2mEncoder {
            io,
            codec,
            settings: settings.clone(),
            output_type,
            capture_type,
            raw: PlaneFormat::default(),
            free_outputs: Vec::new(),
            in_flight: VecDeque::new(),
            parameter_sets: ParameterSets::default(),
            header: Vec::new(),
            started: false,
            idr_pending: false,
            last_idr: None,
            drained: false,
            card: caps.card,
            input: Input::I420,
            dmabuf_refused: None,
        };
        encoder.check_formats()?;
        encoder.start()?;
        Ok(encoder)
    }

    /// The driver's name for the device (`bcm2835-codec-encode`, `vicodec-source`…).
    pub(crate) fn card(&self) -> &str {
        &self.card
    }

    fn is_h264(&self) -> bool {
        self.codec == H264
    }

    fn check_formats(&mut self) -> Result<(), EncodeError> {
        let coded = self
            .io
            .formats(self.capture_type)
            .map_err(|e| dev("cannot list its CAPTURE formats", &e))?;
        if !coded.contains(&self.codec) {
            return Err(EncodeError::Device(format!(
                "{} encodes {}, not {}",
                self.card,
                fourccs(&coded),
                fourcc(self.codec)
            )));
        }
        let raw = self
            .io
            .formats(self.output_type)
            .map_err(|e| dev("cannot list its OUTPUT formats", &e))?;
        if !raw.contains(&I420) {
            return Err(EncodeError::Device(format!(
                "{} takes {}, not I420 (YU12)",
                self.card,
                fourccs(&raw)
            )));
        }
        Ok(())
    }

    /// Formats, controls, buffers, streaming: everything from a stopped device to one that
    /// takes pictures (also after `stop`, at new settings).
    fn start(&mut self) -> Result<(), EncodeError> {
        let (width, height) = (self.settings.width, self.settings.height);
        // The coded format first: a stateful encoder derives the raw side's options from it.
        let coded = self
            .io
            .set_format(
                self.capture_type,
                PlaneFormat {
                    fourcc: self.codec,
                    width,
                    height,
                    stride: 0,
                    size: capture_size(width, height),
                },
            )
            .map_err(|e| dev("cannot set the coded format", &e))?;
        if coded.fourcc != self.codec {
            return Err(EncodeError::Device(format!(
                "asked to encode {}, the driver chose {}",
                fourcc(self.codec),
                fourcc(coded.fourcc)
            )));
        }
        let wanted = match self.input {
            Input::I420 => PlaneFormat {
                fourcc: I420,
                width,
                height,
                stride: width,
                size: width * height * 3 / 2,
            },
            Input::Camera { format, .. } => format,
        };
        let raw = self
            .io
            .set_format(self.output_type, wanted)
            .map_err(|e| dev("cannot set the picture format", &e))?;
        let fits = match self.input {
            Input::I420 => {
                raw.fourcc == I420
                    && raw.width >= width
                    && raw.height >= height
                    && raw.stride >= width
                    && u64::from(raw.size) >= u64::from(raw.stride) * u64::from(raw.height) * 3 / 2
            }
            // The camera's buffers are read as they are: the layout must be the same.
            Input::Camera { format, .. } => raw.reads_as(&format),
        };
        if !fits {
            return Err(EncodeError::Device(format!(
                "asked for {} {width}x{height} (stride {}), the driver chose {} {}x{} (stride {}, {} bytes)",
                fourcc(wanted.fourcc),
                wanted.stride,
                fourcc(raw.fourcc),
                raw.width,
                raw.height,
                raw.stride,
                raw.size
            )));
        }
        self.raw = raw;
        // An aligned buffer (1088 rows for 1080): the picture is the top-left part of it.
        if (raw.width, raw.height) != (width, height)
            && let Err(e) = self.io.set_crop(self.output_type, width, height)
        {
            warn!(
                "{}: cannot crop {}x{} to {width}x{height} ({e}); viewers see the padding",
                self.card, raw.width, raw.height
            );
        }
        if let Err(e) = self.io.set_frame_rate(self.output_type, self.settings.fps) {
            debug!(
                "{}: frame rate not set ({e}); rate control may assume another",
                self.card
            );
        }
        if self.is_h264() {
            self.h264_controls()?;
        }
        self.io
            .allocate(self.capture_type, CAPTURE_BUFFERS)
            .and_then(|n| {
                for index in 0..n {
                    self.io.queue(self.capture_type, index, 0, Duration::ZERO)?;
                }
                Ok(())
            })
            .map_err(|e| dev("cannot set up bitstream buffers", &e))?;
        let outputs = match self.input {
            Input::Camera { dmabuf: true, .. } => {
                self.io.allocate_dmabuf(self.output_type, OUTPUT_BUFFERS)
            }
            _ => self.io.allocate(self.output_type, OUTPUT_BUFFERS),
        }
        .map_err(|e| dev("cannot set up picture buffers", &e))?;
        if outputs == 0 {
            return Err(EncodeError::Device(
                "the driver gave no picture buffers".into(),
            ));
        }
        self.free_outputs = (0..outputs).rev().collect();
        self.io
            .stream(self.output_type, true)
            .and_then(|()| self.io.stream(self.capture_type, true))
            .map_err(|e| dev("cannot start streaming", &e))?;
        self.in_flight.clear();
        self.started = false;
        self.drained = false;
        self.idr_pending = false;
        Ok(())
    }

    /// The H.264 settings, in the order the stateful encoder interface wants them (before
    /// buffers are allocated). Profile, level and bitrate are required: without them the
    /// stream might not match the SDP. The rest rtcam makes up for itself.
    fn h264_controls(&mut self) -> Result<(), EncodeError> {
        let s = &self.settings;
        let level = level_control(level::for_stream(s.width, s.height, s.fps, s.bitrate_kbps));
        let required = [
            (
                raw::CID_H264_PROFILE,
                raw::H264_PROFILE_CONSTRAINED_BASELINE,
                "constrained baseline profile",
            ),
            (raw::CID_H264_LEVEL, level, "level"),
            (
                raw::CID_BITRATE_MODE,
                raw::BITRATE_MODE_CBR,
                "constant bitrate",
            ),
            (raw::CID_BITRATE, bps(s.bitrate_kbps), "bitrate"),
        ];
        for (id, value, what) in required {
            self.io
                .set_control(id, value)
                .map_err(|e| dev(&format!("refuses the {what} ({value})"), &e))?;
        }
        let period = super::h264::idr_period_frames(s) as i32;
        // Nice to have: rtcam forces periodic IDRs itself and inserts SPS/PPS where missing.
        let optional = [
            (raw::CID_H264_I_PERIOD, period, "IDR period"),
            (raw::CID_REPEAT_SEQ_HEADER, 1, "SPS/PPS before every IDR"),
        ];
        for (id, value, what) in optional {
            if (id != raw::CID_H264_I_PERIOD || period > 0)
                && let Err(e) = self.io.set_control(id, value)
            {
                debug!("{}: no {what} ({e}); rtcam does it", self.card);
            }
        }
        Ok(())
    }

    pub(crate) fn settings(&self) -> &EncoderSettings {
        &self.settings
    }

    /// Encodes one frame and waits for its bitstream. `force_idr` makes it an IDR (H.264).
    pub(crate) fn encode(
        &mut self,
        frame: &Frame,
        force_idr: bool,
    ) -> Result<Option<AccessUnit>, EncodeError> {
        self.submit(frame, force_idr)?;
        self.wait_unit().map(Some)
    }

    /// Waits for the bitstream of the picture queued last.
    fn wait_unit(&mut self) -> Result<AccessUnit, EncodeError> {
        loop {
            match self.next_unit(ENCODE_TIMEOUT)? {
                Next::Unit(unit) => return Ok(unit),
                Next::Header => continue,
                Next::End => {
                    return Err(EncodeError::Device("the encoder ended the stream".into()));
                }
            }
        }
    }

    /// Queues one frame without waiting for its bitstream (which `encode` or `drain` then
    /// collects). At most as many frames as there are picture buffers can wait at once.
    pub(crate) fn submit(&mut self, frame: &Frame, force_idr: bool) -> Result<(), EncodeError> {
        let needed = frame.width as usize * frame.height as usize * 3 / 2;
        if frame.data.len() < needed {
            return Err(EncodeError::ShortFrame {
                expected: needed,
                got: frame.data.len(),
            });
        }
        if self.input != Input::I420 {
            // After the camera's own buffers, I420 again (a placeholder while the camera is
            // lost): a new stream, which starts with an IDR anyway.
            self.reconfigure(Input::I420)?;
        }
        let index = self.begin_picture((frame.width, frame.height), frame.captured, force_idr)?;
        let used = self.fill(index, frame)?;
        let timestamp = Duration::from_micros(frame.seq);
        self.io
            .queue(self.output_type, index, used, timestamp)
            .map_err(|e| dev("cannot queue a picture", &e))?;
        self.queued(timestamp, frame.seq, frame.captured);
        Ok(())
    }

    /// Checks and requests common to every picture; returns a free OUTPUT buffer.
    fn begin_picture(
        &mut self,
        got: (u32, u32),
        captured: Instant,
        force_idr: bool,
    ) -> Result<u32, EncodeError> {
        self.idr_pending |= force_idr || self.idr_overdue(captured);
        let expected = (self.settings.width, self.settings.height);
        if got != expected {
            return Err(EncodeError::FrameSize { expected, got });
        }
        if self.drained {
            return Err(EncodeError::Device("the encoder was drained".into()));
        }
        // The first picture is an IDR anyway.
        if self.idr_pending && self.started && self.is_h264() {
            self.io
                .set_control(raw::CID_FORCE_KEY_FRAME, 1)
                .map_err(|e| dev("refuses a keyframe request", &e))?;
        }
        self.free_output()
    }

    fn queued(&mut self, timestamp: Duration, seq: u64, captured: Instant) {
        self.in_flight.push_back((timestamp, seq, captured));
        self.started = true;
    }

    /// Takes pictures in `format` (a camera's own buffers, `encode_camera`) from now on, if
    /// the driver takes that format with that layout; else says why and stays on I420.
    pub(crate) fn take_format(&mut self, format: &PlaneFormat) -> Result<(), String> {
        if (format.width, format.height) != (self.settings.width, self.settings.height) {
            return Err(format!(
                "the camera's {}x{} is not the stream's {}x{}",
                format.width, format.height, self.settings.width, self.settings.height
            ));
        }
        let offered = self
            .io
            .formats(self.output_type)
            .map_err(|e| format!("cannot list its OUTPUT formats: {e}"))?;
        if !offered.contains(&format.fourcc) {
            return Err(format!(
                "{} takes {}, not {}",
                self.card,
                fourccs(&offered),
                fourcc(format.fourcc)
            ));
        }
        if matches!(self.input, Input::Camera { format: f, .. } if f == *format) {
            return Ok(());
        }
        let taken = self.reconfigure(Input::Camera {
            format: *format,
            dmabuf: false,
        });
        taken.map_err(|e| {
            if let Err(back) = self.reconfigure(Input::I420) {
                warn!("{}: cannot go back to I420: {back}", self.card);
            }
            e.to_string()
        })
    }

    /// Encodes a picture in the camera's own buffer and waits for its bitstream; the device
    /// is done with the buffer when this returns. The device reads the buffer itself (dma-buf)
    /// where both drivers allow it, else it gets a copy: the first refusal is logged and the
    /// copy kept from then on.
    pub(crate) fn encode_camera(
        &mut self,
        frame: &CameraFrame,
        force_idr: bool,
    ) -> Result<(Option<AccessUnit>, CameraRead), EncodeError> {
        let format = frame.format;
        let dmabuf = frame.buffer.dmabuf();
        if let Some(offset) = dmabuf.map(|d| d.offset).filter(|&o| o != 0)
            && self.dmabuf_refused.is_none()
        {
            // V4L2 has no way to say so on a single-planar queue, and encoders that read
            // input planes mostly ignore data_offset: the picture would come out shifted.
            self.refuse_dmabuf(&format!(
                "the camera's pictures start {offset} bytes into its buffers"
            ));
        }
        let dmabuf = dmabuf.filter(|_| self.dmabuf_refused.is_none());
        let wanted = Input::Camera {
            format,
            dmabuf: dmabuf.is_some(),
        };
        if self.input != wanted
            && let Err(e) = self.reconfigure(wanted)
        {
            if dmabuf.is_none() {
                return Err(e);
            }
            self.refuse_dmabuf(&e.to_string());
            self.reconfigure(Input::Camera {
                format,
                dmabuf: false,
            })?;
        }
        let size = (format.width, format.height);
        let timestamp = Duration::from_micros(frame.seq);
        let mut index = self.begin_picture(size, frame.captured, force_idr)?;
        let mut read = CameraRead::Copied;
        if let (Input::Camera { dmabuf: true, .. }, Some(dmabuf)) = (self.input, dmabuf) {
            match self
                .io
                .queue_dmabuf(self.output_type, index, &dmabuf, timestamp)
            {
                Ok(()) => read = CameraRead::Dmabuf,
                Err(e) => {
                    self.refuse_dmabuf(&format!("cannot queue a camera dma-buf: {e}"));
                    self.reconfigure(Input::Camera {
                        format,
                        dmabuf: false,
                    })?;
                    index = self.begin_picture(size, frame.captured, force_idr)?;
                }
            }
        }
        if read == CameraRead::Copied {
            let used = self.copy_in(index, frame.buffer.bytes())?;
            self.io
                .queue(self.output_type, index, used, timestamp)
                .map_err(|e| dev("cannot queue a picture", &e))?;
        }
        self.queued(timestamp, frame.seq, frame.captured);
        let unit = self.wait_unit()?;
        if read == CameraRead::Dmabuf {
            // The camera gets the buffer back when the caller lets go of it: the device must
            // have finished reading it.
            self.take_back(index)?;
        }
        Ok((Some(unit), read))
    }

    /// Copies camera buffers from now on, even where the device could read them itself (to
    /// compare the two).
    pub(crate) fn copy_camera_buffers(&mut self) {
        self.dmabuf_refused = Some("asked to copy".into());
    }

    fn refuse_dmabuf(&mut self, why: &str) {
        warn!(
            "{}: cannot read the camera's buffers directly ({why}); copying them instead",
            self.card
        );
        self.dmabuf_refused = Some(why.to_owned());
    }

    /// Sets the OUTPUT queue up for `input`: a new stream (starting with an IDR).
    fn reconfigure(&mut self, input: Input) -> Result<(), EncodeError> {
        debug!("{}: picture input {input:?}", self.card);
        self.input = input;
        let settings = self.settings.clone();
        self.restart(&settings)
    }

    /// Copies a picture that is already in the OUTPUT format's layout; returns the bytes used.
    fn copy_in(&mut self, index: u32, bytes: &[u8]) -> Result<u32, EncodeError> {
        let size = self.raw.size as usize;
        let plane = self
            .io
            .plane(self.output_type, index)
            .ok_or_else(|| EncodeError::Device(format!("no picture buffer {index}")))?;
        let n = bytes.len().min(plane.len()).min(size);
        plane[..n].copy_from_slice(&bytes[..n]);
        Ok(size.min(plane.len()) as u32)
    }

    /// Waits until OUTPUT buffer `index` is back from the device.
    fn take_back(&mut self, index: u32) -> Result<(), EncodeError> {
        self.reclaim_outputs(
            |free| free.contains(&index),
            "the device did not give a camera buffer back in time",
        )
    }

    /// Takes back the OUTPUT buffers the device is done with until `enough` says so, waiting
    /// at most `ENCODE_TIMEOUT`; `late` is the error after that.
    fn reclaim_outputs(
        &mut self,
        enough: impl Fn(&[u32]) -> bool,
        late: &str,
    ) -> Result<(), EncodeError> {
        let deadline = Instant::now() + ENCODE_TIMEOUT;
        loop {
            loop {
                match self.io.dequeue(self.output_type) {
                    Ok(done) => self.free_outputs.push(done.index),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(dev("cannot take back a picture buffer", &e)),
                }
            }
            if enough(&self.free_outputs) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let ready = self
                .io
                .wait(libc::POLLOUT, left)
                .map_err(|e| dev("cannot wait for a picture buffer", &e))?;
            if ready & libc::POLLOUT == 0 {
                return Err(EncodeError::Device(late.into()));
            }
        }
    }

    /// How pictures reach the device now, for `status` and the log.
    pub(crate) fn input_description(&self) -> String {
        match self.input {
            Input::I420 => "I420".into(),
            Input::Camera { format, dmabuf } => format!(
                "camera {} buffers {}",
                fourcc(format.fourcc),
                if dmabuf { "by dma-buf" } else { "copied" }
            ),
        }
    }

    /// Changes the target bitrate from the next frame on.
    pub(crate) fn set_bitrate(&mut self, kbps: u32) -> Result<(), EncodeError> {
        super::h264::check_bitrate(kbps)?;
        if self.is_h264() {
            self.io
                .set_control(raw::CID_BITRATE, bps(kbps))
                .map_err(|e| dev("refuses the bitrate", &e))?;
        }
        self.settings.bitrate_kbps = kbps;
        Ok(())
    }

    /// Drains the encoder (V4L2_ENC_CMD_STOP): every picture queued comes out, then the last
    /// buffer. Returns what came out, and whether the device then reported the end of stream
    /// (EPIPE from VIDIOC_DQBUF, as the stateful encoder interface says); afterwards `encode`
    /// fails until `restart`.
    pub(crate) fn drain(&mut self) -> Result<(Vec<AccessUnit>, bool), EncodeError> {
        self.io
            .encoder_command(raw::ENC_CMD_STOP)
            .map_err(|e| dev("refuses to drain", &e))?;
        let mut units = Vec::new();
        loop {
            match self.next_unit(ENCODE_TIMEOUT)? {
                Next::Unit(unit) => units.push(unit),
                Next::Header => {}
                Next::End => break,
            }
        }
        self.drained = true;
        let ended = self
            .io
            .dequeue(self.capture_type)
            .is_err_and(|e| e.raw_os_error() == Some(libc::EPIPE));
        Ok((units, ended))
    }

    /// Stops streaming, frees the buffers and starts again at `settings` (a new size).
    pub(crate) fn restart(&mut self, settings: &EncoderSettings) -> Result<(), EncodeError> {
        super::h264::validate(settings)?;
        self.stop();
        self.settings = settings.clone();
        self.parameter_sets = ParameterSets::default();
        self.header.clear();
        self.last_idr = None;
        self.start()
    }

    fn stop(&mut self) {
        // Errors (device gone) change nothing here: the buffers go with the fd anyway.
        let _ = self.io.stream(self.output_type, false);
        let _ = self.io.stream(self.capture_type, false);
        let _ = self.io.allocate(self.output_type, 0);
        let _ = self.io.allocate(self.capture_type, 0);
        self.free_outputs.clear();
    }

    /// An OUTPUT buffer the driver is done with.
    fn free_output(&mut self) -> Result<u32, EncodeError> {
        self.reclaim_outputs(
            |free| !free.is_empty(),
            "no picture buffer came back in time",
        )?;
        self.free_outputs
            .pop()
            .ok_or_else(|| EncodeError::Device("no picture buffer".into()))
    }

    /// Copies `frame` into OUTPUT buffer `index` at the driver's stride and plane height;
    /// returns the bytes used.
    fn fill(&mut self, index: u32, frame: &Frame) -> Result<u32, EncodeError> {
        let (stride, rows) = (self.raw.stride as usize, self.raw.height as usize);
        let (width, height) = (frame.width as usize, frame.height as usize);
        let size = self.raw.size;
        let plane = self
            .io
            .plane(self.output_type, index)
            .ok_or_else(|| EncodeError::Device(format!("no picture buffer {index}")))?;
        let luma = stride * rows;
        if plane.len() < luma * 3 / 2 {
            return Err(EncodeError::Device(format!(
                "picture buffer {index} holds {} bytes, needs {}",
                plane.len(),
                luma * 3 / 2
            )));
        }
        let (y, chroma) = plane.split_at_mut(luma);
        let (u, v) = chroma.split_at_mut(luma / 4);
        copy_rows(frame.y(), width, y, stride, height);
        copy_rows(frame.u(), width / 2, u, stride / 2, height / 2);
        copy_rows(frame.v(), width / 2, v, stride / 2, height / 2);
        Ok(size.min(plane.len() as u32))
    }

    /// Waits for the next bitstream buffer and turns it into an access unit.
    fn next_unit(&mut self, timeout: Duration) -> Result<Next, EncodeError> {
        let done = match self.io.dequeue(self.capture_type) {
            Ok(done) => done,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let ready = self
                    .io
                    .wait(libc::POLLIN, timeout)
                    .map_err(|e| dev("cannot wait for the bitstream", &e))?;
                if ready & (libc::POLLIN | libc::POLLERR) == 0 {
                    return Err(EncodeError::Device(format!(
                        "no bitstream within {:.1} s",
                        timeout.as_secs_f64()
                    )));
                }
                match self.io.dequeue(self.capture_type) {
                    Ok(done) => done,
                    Err(e) => return self.dequeue_failed(&e),
                }
            }
            Err(e) => return self.dequeue_failed(&e),
        };
        let last = done.flags & raw::BUF_FLAG_LAST != 0;
        let mut data = {
            let plane = self
                .io
                .plane(self.capture_type, done.index)
                .ok_or_else(|| {
                    EncodeError::Device(format!("unknown bitstream buffer {}", done.index))
                })?;
            let start = (done.data_offset as usize).min(plane.len());
            let end = start.saturating_add(done.used as usize).min(plane.len());
            plane[start..end].to_vec()
        };
        if !last {
            self.io
                .queue(self.capture_type, done.index, 0, Duration::ZERO)
                .map_err(|e| dev("cannot requeue a bitstream buffer", &e))?;
        }
        if data.is_empty() {
            return Ok(if last { Next::End } else { Next::Header });
        }
        let unit = self.unit(&mut data, &done);
        if last {
            // The last buffer may carry the last picture; the next call sees the end.
            self.drained = true;
        }
        unit
    }

    fn dequeue_failed(&mut self, e: &std::io::Error) -> Result<Next, EncodeError> {
        // EPIPE: the last buffer of a drain was already dequeued.
        if e.raw_os_error() == Some(libc::EPIPE) {
            self.drained = true;
            return Ok(Next::End);
        }
        Err(dev("cannot take a bitstream buffer", e))
    }

    fn unit(&mut self, data: &mut Vec<u8>, done: &io::Dequeued) -> Result<Next, EncodeError> {
        let keyframe = if self.is_h264() {
            let has_picture = nal::nal_units(data).any(|n| matches!(nal::nal_type(n), Some(1..=5)));
            if !has_picture {
                // SPS/PPS on their own (some drivers send them so): kept for the next IDR.
                self.header.extend_from_slice(data);
                return Ok(Next::Header);
            }
            if !self.header.is_empty() {
                data.splice(0..0, std::mem::take(&mut self.header));
            }
            nal::is_idr(data)
        } else {
            done.flags & raw::BUF_FLAG_KEYFRAME != 0
        };
        // The picture it came from; frames before it that never came out are forgotten.
        let mut source = None;
        while let Some(&(timestamp, seq, captured)) = self.in_flight.front() {
            if timestamp > done.timestamp {
                break;
            }
            self.in_flight.pop_front();
            if timestamp == done.timestamp {
                source = Some((seq, captured));
            }
        }
        let Some((seq, captured)) = source else {
            warn!(
                "{}: bitstream with timestamp {:?} matches no picture sent",
                self.card, done.timestamp
            );
            return Ok(Next::Header);
        };
        if keyframe && self.is_h264() {
            self.parameter_sets
                .complete_idr(data)
                .map_err(|_| EncodeError::Device("IDR without SPS/PPS".into()))?;
        }
        if keyframe {
            self.idr_pending = false;
            self.last_idr = Some(captured);
        }
        Ok(Next::Unit(AccessUnit {
            data: Arc::from(&data[..]),
            keyframe,
            encoding: Encoding::Main,
            layer: 0,
            width: self.settings.width,
            height: self.settings.height,
            seq,
            captured,
            handed: captured,
        }))
    }

    /// True once `idr_interval` of capture time has passed since the last IDR.
    fn idr_overdue(&self, captured: Instant) -> bool {
        let interval = self.settings.idr_interval;
        self.last_idr.is_some_and(|last| {
            !interval.is_zero() && captured.saturating_duration_since(last) >= interval
        })
    }
}

impl<D: Io> Drop for M2mEncoder<D> {
    fn drop(&mut self) {
        self.stop();
    }
}

enum Next {
    Unit(AccessUnit),
    /// A buffer without a picture (parameter sets, an empty one): wait for the next.
    Header,
    /// The drain is over.
    End,
}

fn dev(what: &str, e: &std::io::Error) -> EncodeError {
    if e.raw_os_error() == Some(libc::EBUSY) {
        return EncodeError::Device(format!("{what}: device busy (another program uses it?)"));
    }
    EncodeError::Device(format!("{what}: {e}"))
}

fn bps(kbps: u32) -> i32 {
    i32::try_from(u64::from(kbps) * 1000).unwrap_or(i32::MAX)
}

/// `V4L2_MPEG_VIDEO_H264_LEVEL_*` for a level as `level::for_stream` gives it (31 for 3.1).
fn level_control(level: u8) -> i32 {
    match level {
        ..=10 => 0,
        11 => 2,
        12 => 3,
        13 => 4,
        20 => 5,
        21 => 6,
        22 => 7,
        30 => 8,
        31 => 9,
        32 => 10,
        40 => 11,
        41 => 12,
        42 => 13,
        50 => 14,
        51 => 15,
        _ => 16,
    }
}

fn copy_rows(src: &[u8], width: usize, dst: &mut [u8], stride: usize, rows: usize) {
    for (from, to) in src
        .chunks_exact(width)
        .zip(dst.chunks_mut(stride))
        .take(rows)
    {
        let n = width.min(to.len());
        to[..n].copy_from_slice(&from[..n]);
    }
}

fn fourcc(code: [u8; 4]) -> String {
    crate::source::v4l2::device::fourcc_text(code)
}

fn fourccs(codes: &[[u8; 4]]) -> String {
    if codes.is_empty() {
        return "nothing".into();
    }
    codes
        .iter()
        .map(|&c| fourcc(c))
        .collect::<Vec<_>>()
        .join(", ")
}
