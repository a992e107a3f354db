//! The M2M encoder against the fake device: exact request values at the ioctl boundary.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::fake::{Behaviour, Call, Fake, IDR, P, PPS, SPS, State};
use super::io::PlaneFormat;
use super::{CameraRead, H264, M2mEncoder};
use crate::encode::h264::EncodeError;
use crate::encode::{AccessUnit, EncoderChoice, EncoderSettings};
use crate::source::lent::CameraBuffer;
use crate::source::lent::testing::MemoryLender;
use crate::source::v4l2::raw::{self, *};
use crate::source::{CameraFrame, Frame, FrameBuf};

const OUT_MP: u32 = BUF_TYPE_VIDEO_OUTPUT_MPLANE;
const CAP_MP: u32 = BUF_TYPE_VIDEO_CAPTURE_MPLANE;

fn settings(width: u32, height: u32, kbps: u32) -> EncoderSettings {
    EncoderSettings {
        width,
        height,
        fps: 30,
        bitrate_kbps: kbps,
        idr_interval: Duration::from_secs(2),
        threads: 1,
        temporal_layers: 1,
        encoder: EncoderChoice::V4l2M2m(None),
    }
}

fn encoder(
    behaviour: Behaviour,
    settings: &EncoderSettings,
) -> (M2mEncoder<Fake>, Arc<Mutex<State>>) {
    let (fake, state) = Fake::new(behaviour);
    let encoder = M2mEncoder::new(fake, settings, H264).expect("sets up");
    (encoder, state)
}

fn start_err(behaviour: Behaviour, codec: [u8; 4]) -> String {
    let (fake, _) = Fake::new(behaviour);
    match M2mEncoder::new(fake, &settings(320, 240, 500), codec) {
        Ok(_) => panic!("set up on a device that cannot do it"),
        Err(e) => e.to_string(),
    }
}

/// A frame whose every plane byte encodes its plane and row, so a copy can be checked.
fn frame(width: u32, height: u32, seq: u64, captured: Instant) -> Frame {
    let (w, h) = (width as usize, height as usize);
    let mut data = Vec::with_capacity(w * h * 3 / 2);
    for row in 0..h {
        data.extend(std::iter::repeat_n(row as u8, w));
    }
    for plane in [100u8, 200] {
        for row in 0..h / 2 {
            data.extend(std::iter::repeat_n(plane.wrapping_add(row as u8), w / 2));
        }
    }
    Frame {
        width,
        height,
        data: FrameBuf::unpooled(data),
        seq,
        captured,
    }
}

fn calls(state: &Arc<Mutex<State>>) -> Vec<Call> {
    state.lock().expect("state").calls.clone()
}

fn clear(state: &Arc<Mutex<State>>) {
    state.lock().expect("state").calls.clear();
}

#[test]
fn setup_sends_the_formats_controls_and_buffers_in_order_with_exact_values() {
    let (_encoder, state) = encoder(Behaviour::default(), &settings(1280, 720, 1500));
    let mut expected = vec![
        Call::SetFormat(
            CAP_MP,
            PlaneFormat {
                fourcc: *b"H264",
                width: 1280,
                height: 720,
                stride: 0,
                size: 1280 * 720 * 3 / 4,
            },
        ),
        Call::SetFormat(
            OUT_MP,
            PlaneFormat {
                fourcc: *b"YU12",
                width: 1280,
                height: 720,
                stride: 1280,
                size: 1280 * 720 * 3 / 2,
            },
        ),
        Call::FrameRate(OUT_MP, 30),
        // Constrained baseline, level 3.1 (what the SDP says for 720p30 at 1.5 Mbit/s), CBR.
        Call::Control(0x0099_0a6b, 1),
        Call::Control(0x0099_0a67, 9),
        Call::Control(0x0099_09ce, 1),
        Call::Control(0x0099_09cf, 1_500_000),
        // An IDR every 2 s at 30 fps; SPS/PPS repeated before each.
        Call::Control(0x0099_0a66, 60),
        Call::Control(0x0099_09e2, 1),
        Call::Allocate(CAP_MP, 4),
    ];
    for index in 0..4 {
        expected.push(Call::Queue {
            buf_type: CAP_MP,
            index,
            used: 0,
            timestamp: Duration::ZERO,
        });
    }
    expected.extend([
        Call::Allocate(OUT_MP, 2),
        Call::Stream(OUT_MP, true),
        Call::Stream(CAP_MP, true),
    ]);
    assert_eq!(calls(&state), expected);
}

#[test]
fn the_level_follows_the_sdp_for_each_stream() {
    for ((w, h, kbps), level) in [
        ((640, 480, 800), 8),     // 3.0
        ((1280, 720, 1500), 9),   // 3.1
        ((1920, 1080, 4000), 11), // 4.0
    ] {
        let s = settings(w, h, kbps);
        let sdp = crate::encode::level::for_stream(w, h, 30, kbps);
        let (_encoder, state) = encoder(Behaviour::default(), &s);
        let controls = state.lock().expect("state").controls();
        assert!(
            controls.contains(&(CID_H264_LEVEL, level)),
            "{w}x{h} (SDP level {sdp}): {controls:?}"
        );
    }
}

#[test]
fn single_planar_devices_get_single_planar_queues() {
    let behaviour = Behaviour {
        device_caps: CAP_VIDEO_M2M | CAP_STREAMING,
        ..Behaviour::default()
    };
    let (mut encoder, state) = encoder(behaviour, &settings(320, 240, 500));
    let start = Instant::now();
    encoder
        .encode(&frame(320, 240, 1, start), false)
        .expect("encodes")
        .expect("a unit");
    let types: Vec<u32> = calls(&state)
        .iter()
        .filter_map(|c| match c {
            Call::SetFormat(t, _) | Call::Allocate(t, _) | Call::Stream(t, _) => Some(*t),
            Call::Queue { buf_type, .. } => Some(*buf_type),
            _ => None,
        })
        .collect();
    assert!(
        types
            .iter()
            .all(|&t| t == BUF_TYPE_VIDEO_OUTPUT || t == BUF_TYPE_VIDEO_CAPTURE),
        "{types:?}"
    );
    assert!(types.contains(&BUF_TYPE_VIDEO_OUTPUT));
}

#[test]
fn frames_keep_their_sequence_number_and_capture_time_and_start_with_an_idr() {
    let (mut encoder, state) = encoder(Behaviour::default(), &settings(320, 240, 500));
    let start = Instant::now();
    clear(&state);
    for seq in 7..10 {
        let captured = start + Duration::from_millis(33 * seq);
        let unit = encoder
            .encode(&frame(320, 240, seq, captured), false)
            .expect("encodes")
            .expect("a unit");
        assert_eq!((unit.seq, unit.captured), (seq, captured));
        assert_eq!((unit.width, unit.height), (320, 240));
        if seq == 7 {
            assert!(unit.keyframe);
            assert_eq!(&unit.data[..], [&SPS[..], &PPS, &IDR].concat());
        } else {
            assert!(!unit.keyframe);
            assert_eq!(&unit.data[..], &P);
        }
    }
    let queued: Vec<Duration> = calls(&state)
        .iter()
        .filter_map(|c| match c {
            Call::Queue {
                buf_type: OUT_MP,
                timestamp,
                used,
                ..
            } => {
                assert_eq!(*used, 320 * 240 * 3 / 2, "the whole picture");
                Some(*timestamp)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        queued,
        [7, 8, 9].map(Duration::from_micros),
        "the sequence number rides in the buffer timestamp"
    );
    // No keyframe was asked for: the first picture is an IDR by itself.
    assert!(
        !calls(&state)
            .iter()
            .any(|c| matches!(c, Call::Control(CID_FORCE_KEY_FRAME, _)))
    );
}

#[test]
fn a_keyframe_request_sets_force_key_frame_before_that_picture_is_queued() {
    let (mut encoder, state) = encoder(Behaviour::default(), &settings(320, 240, 500));
    let start = Instant::now();
    encoder
        .encode(&frame(320, 240, 1, start), false)
        .expect("encodes");
    encoder
        .encode(&frame(320, 240, 2, start), false)
        .expect("encodes");
    clear(&state);
    let unit = encoder
        .encode(&frame(320, 240, 3, start), true)
        .expect("encodes")
        .expect("a unit");
    assert!(unit.keyframe);
    assert!(crate::encode::nal::has_sps_pps(&unit.data));
    let got = calls(&state);
    assert_eq!(
        got[0],
        Call::Control(raw::CID_FORCE_KEY_FRAME, 1),
        "{got:?}"
    );
    assert!(
        matches!(
            got[1],
            Call::Queue {
                buf_type: OUT_MP,
                ..
            }
        ),
        "{got:?}"
    );
}

#[test]
fn periodic_idrs_follow_capture_time() {
    let s = EncoderSettings {
        idr_interval: Duration::from_millis(100),
        ..settings(320, 240, 500)
    };
    let (mut encoder, state) = encoder(Behaviour::default(), &s);
    let start = Instant::now();
    let mut keyframes = Vec::new();
    for seq in 0..8 {
        let captured = start + Duration::from_millis(40 * seq);
        let unit = encoder
            .encode(&frame(320, 240, seq, captured), false)
            .expect("encodes")
            .expect("a unit");
        keyframes.push(unit.keyframe);
    }
    // 0 ms, then the first picture 100 ms or more after it (120 ms), then 240 ms.
    assert_eq!(
        keyframes,
        [true, false, false, true, false, false, true, false]
    );
    let forced = calls(&state)
        .iter()
        .filter(|c| **c == Call::Control(CID_FORCE_KEY_FRAME, 1))
        .count();
    assert_eq!(forced, 2);
}

#[test]
fn sps_and_pps_are_put_in_front_of_idrs_the_driver_sends_bare() {
    let behaviour = Behaviour {
        refused_controls: vec![CID_REPEAT_SEQ_HEADER],
        headers_once: true,
        separate_header: true,
        ..Behaviour::default()
    };
    let (mut encoder, _) = encoder(behaviour, &settings(320, 240, 500));
    let start = Instant::now();
    let full = [&SPS[..], &PPS, &IDR].concat();
    // The header came in a buffer of its own: joined with the first picture.
    let first = encoder
        .encode(&frame(320, 240, 1, start), false)
        .expect("encodes")
        .expect("a unit");
    assert_eq!((first.seq, &first.data[..]), (1, &full[..]));
    let second = encoder
        .encode(&frame(320, 240, 2, start), false)
        .expect("encodes")
        .expect("a unit");
    assert_eq!(&second.data[..], &P);
    // A later IDR comes bare from the driver; rtcam puts the remembered sets in front.
    let idr = encoder
        .encode(&frame(320, 240, 3, start), true)
        .expect("encodes")
        .expect("a unit");
    assert!(idr.keyframe);
    assert_eq!(&idr.data[..], &full[..]);
}

#[test]
fn bitrate_changes_reach_the_driver_and_bad_ones_do_not() {
    let (mut encoder, state) = encoder(Behaviour::default(), &settings(320, 240, 500));
    clear(&state);
    encoder.set_bitrate(800).expect("accepted");
    encoder.set_bitrate(120).expect("accepted");
    assert!(encoder.set_bitrate(0).is_err());
    assert_eq!(
        calls(&state),
        [
            Call::Control(CID_BITRATE, 800_000),
            Call::Control(CID_BITRATE, 120_000)
        ]
    );
    assert_eq!(encoder.settings().bitrate_kbps, 120);
}

#[test]
fn pictures_are_copied_at_the_drivers_stride_and_plane_height() {
    // 64x64 in a 96-byte stride, planes laid out for 80 rows (drivers align both).
    let behaviour = Behaviour {
        stride: 96,
        plane_height: 80,
        ..Behaviour::default()
    };
    let (mut encoder, state) = encoder(behaviour, &settings(64, 64, 200));
    assert!(
        calls(&state).contains(&Call::Crop(OUT_MP, 64, 64)),
        "the visible picture is cropped out of the aligned buffer"
    );
    encoder
        .encode(&frame(64, 64, 1, Instant::now()), false)
        .expect("encodes");
    let picture = state.lock().expect("state").last_picture.clone();
    assert_eq!(picture.len(), 96 * 80 * 3 / 2);
    for row in 0..64 {
        assert_eq!(
            &picture[row * 96..][..64],
            &[row as u8; 64][..],
            "Y row {row}"
        );
    }
    let u = 96 * 80;
    let v = u + 48 * 40;
    for row in 0..32 {
        assert_eq!(&picture[u + row * 48..][..32], &[100 + row as u8; 32][..]);
        assert_eq!(&picture[v + row * 48..][..32], &[200 + row as u8; 32][..]);
    }
}

#[test]
fn drain_returns_the_end_and_restart_takes_a_new_size() {
    let (mut encoder, state) = encoder(Behaviour::default(), &settings(320, 240, 500));
    let start = Instant::now();
    encoder
        .encode(&frame(320, 240, 1, start), false)
        .expect("encodes");
    // Two pictures queued and not collected: the drain brings them out, in order.
    encoder
        .submit(&frame(320, 240, 2, start), false)
        .expect("queued");
    encoder
        .submit(&frame(320, 240, 3, start), false)
        .expect("queued");
    clear(&state);
    let (rest, ended) = encoder.drain().expect("drains");
    assert_eq!(rest.iter().map(|u| u.seq).collect::<Vec<_>>(), [2, 3]);
    assert!(ended, "EPIPE after the last buffer");
    assert_eq!(calls(&state)[0], Call::Command(ENC_CMD_STOP));
    let err = encoder.encode(&frame(320, 240, 4, start), false);
    assert!(matches!(err, Err(EncodeError::Device(_))), "after the end");

    clear(&state);
    encoder.restart(&settings(640, 480, 800)).expect("restarts");
    let got = calls(&state);
    assert_eq!(
        got[..4],
        [
            Call::Stream(OUT_MP, false),
            Call::Stream(CAP_MP, false),
            Call::Allocate(OUT_MP, 0),
            Call::Allocate(CAP_MP, 0),
        ]
    );
    assert!(
        got.iter()
            .any(|c| matches!(c, Call::SetFormat(OUT_MP, f) if (f.width, f.height) == (640, 480)))
    );
    let unit = encoder
        .encode(&frame(640, 480, 2, start), false)
        .expect("encodes after the restart")
        .expect("a unit");
    assert!(unit.keyframe, "a restarted stream starts with an IDR");
    assert_eq!((unit.width, unit.height), (640, 480));
}

#[test]
fn other_codecs_get_no_h264_controls_and_keyframes_from_the_buffer_flag() {
    let behaviour = Behaviour {
        capture_formats: vec![*b"FWHT"],
        ..Behaviour::default()
    };
    let (fake, state) = Fake::new(behaviour);
    let mut encoder = M2mEncoder::new(fake, &settings(320, 240, 500), *b"FWHT").expect("sets up");
    assert!(state.lock().expect("state").controls().is_empty());
    let start = Instant::now();
    let first = encoder
        .encode(&frame(320, 240, 1, start), false)
        .expect("encodes")
        .expect("a unit");
    let second = encoder
        .encode(&frame(320, 240, 2, start), false)
        .expect("encodes")
        .expect("a unit");
    assert!(first.keyframe && !second.keyframe);
}

#[test]
fn devices_that_cannot_do_it_are_refused_with_the_reason() {
    let not_m2m = Behaviour {
        device_caps: 0x1 | CAP_STREAMING,
        ..Behaviour::default()
    };
    assert!(start_err(not_m2m, H264).contains("not a memory-to-memory device"));
    let fwht_only = Behaviour {
        capture_formats: vec![*b"FWHT"],
        ..Behaviour::default()
    };
    let err = start_err(fwht_only, H264);
    assert!(err.contains("encodes FWHT, not H264"), "{err}");
    let no_i420 = Behaviour {
        output_formats: vec![*b"NV12"],
        ..Behaviour::default()
    };
    let err = start_err(no_i420, H264);
    assert!(err.contains("takes NV12, not I420"), "{err}");
    let no_profile = Behaviour {
        refused_controls: vec![CID_H264_PROFILE],
        ..Behaviour::default()
    };
    let err = start_err(no_profile, H264);
    assert!(err.contains("constrained baseline"), "{err}");
    let busy = Behaviour {
        busy: true,
        ..Behaviour::default()
    };
    let err = start_err(busy, H264);
    assert!(err.contains("device busy"), "{err}");
}

#[test]
fn a_stuck_encoder_is_an_error_not_a_hang() {
    let behaviour = Behaviour {
        stuck: true,
        ..Behaviour::default()
    };
    let (mut encoder, _) = encoder(behaviour, &settings(320, 240, 500));
    let err = encoder.encode(&frame(320, 240, 1, Instant::now()), false);
    assert!(
        matches!(&err, Err(EncodeError::Device(why)) if why.contains("no bitstream")),
        "{:?}",
        err.map(|u| u.map(|u| u.seq))
    );
}

/// A 64x64 YUYV camera picture whose bytes count up, in a lent buffer (a memfd when `dmabuf`).
fn camera_frame(
    lender: &Arc<MemoryLender>,
    index: u32,
    seq: u64,
    captured: Instant,
) -> CameraFrame {
    let format = PlaneFormat::of_camera(*b"YUYV", 64, 64, 128).expect("yuyv");
    CameraFrame {
        buffer: CameraBuffer::new(lender.clone(), index, 0, format.size as usize),
        format,
        seq,
        captured,
    }
}

fn yuyv_pictures(count: u8) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| (0..128 * 64).map(|i| (i % 251) as u8 ^ n).collect())
        .collect()
}

fn takes_yuyv() -> Behaviour {
    Behaviour {
        output_formats: vec![*b"YU12", *b"YUYV"],
        ..Behaviour::default()
    }
}

/// A 64x64 encoder that took the camera's YUYV, its requests so far forgotten.
fn yuyv_encoder(behaviour: Behaviour) -> (M2mEncoder<Fake>, Arc<Mutex<State>>, PlaneFormat) {
    let (mut encoder, state) = encoder(behaviour, &settings(64, 64, 300));
    let format = PlaneFormat::of_camera(*b"YUYV", 64, 64, 128).expect("yuyv");
    encoder.take_format(&format).expect("takes YUYV");
    clear(&state);
    (encoder, state, format)
}

#[test]
fn camera_buffers_reach_the_device_as_dmabufs_in_their_own_format() {
    let (mut encoder, state, format) = yuyv_encoder(takes_yuyv());
    let lender = MemoryLender::new(yuyv_pictures(2), true);
    let at = Instant::now();
    for (index, seq) in [(0, 1), (1, 2), (0, 3)] {
        let frame = camera_frame(&lender, index, seq, at);
        let (unit, read) = encoder.encode_camera(&frame, false).expect("encodes");
        assert_eq!(read, CameraRead::Dmabuf);
        let unit = unit.expect("a unit per picture");
        assert_eq!((unit.seq, unit.captured), (seq, at));
        assert_eq!(unit.keyframe, seq == 1, "the new stream starts with an IDR");
        // The device read the camera's memory itself, byte for byte.
        let picture = state.lock().expect("state").last_picture.clone();
        assert_eq!(picture, yuyv_pictures(2)[index as usize]);
        // The encoder keeps nothing of the camera's: the buffer goes back when the frame goes.
        drop(frame);
        assert_eq!(lender.given_back().last(), Some(&index));
    }
    let calls = calls(&state);
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(c, Call::AllocateDmabuf(OUT_MP, 2)))
            .count(),
        1,
        "the picture queue is set up for dma-bufs once: {calls:?}"
    );
    assert!(
        calls.contains(&Call::SetFormat(OUT_MP, format)),
        "{calls:?}"
    );
    assert!(calls.contains(&Call::QueueDmabuf {
        buf_type: OUT_MP,
        index: 0,
        offset: 0,
        used: 128 * 64,
        timestamp: Duration::from_micros(3),
    }));
    assert!(
        !calls.iter().any(|c| matches!(
            c,
            Call::Queue {
                buf_type: OUT_MP,
                ..
            }
        )),
        "nothing copied: {calls:?}"
    );
}

#[test]
fn a_driver_that_cannot_read_the_cameras_memory_gets_a_copy_from_then_on() {
    let behaviour = Behaviour {
        refuse_dmabuf: true,
        ..takes_yuyv()
    };
    let (mut encoder, state, _) = yuyv_encoder(behaviour);
    let lender = MemoryLender::new(yuyv_pictures(2), true);
    let at = Instant::now();
    for (index, seq) in [(0, 1), (1, 2), (0, 3)] {
        let frame = camera_frame(&lender, index, seq, at);
        let (unit, read) = encoder.encode_camera(&frame, false).expect("encodes");
        assert_eq!(read, CameraRead::Copied, "frame {seq}");
        assert_eq!(unit.expect("a unit").seq, seq);
        let picture = state.lock().expect("state").last_picture.clone();
        let expected = &yuyv_pictures(2)[index as usize];
        assert_eq!(&picture[..expected.len()], &expected[..], "copied as it is");
    }
    let calls = calls(&state);
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(c, Call::QueueDmabuf { .. }))
            .count(),
        1,
        "one refusal, then copies: {calls:?}"
    );
    assert_eq!(
        calls
            .iter()
            .filter(|c| matches!(
                c,
                Call::Queue {
                    buf_type: OUT_MP,
                    ..
                }
            ))
            .count(),
        3
    );
}

#[test]
fn camera_formats_the_driver_cannot_take_as_they_are_are_refused_and_i420_stays() {
    let format = PlaneFormat::of_camera(*b"YUYV", 64, 64, 128).expect("yuyv");
    // Not offered at all.
    let (mut no_yuyv, _) = encoder(Behaviour::default(), &settings(64, 64, 300));
    let why = no_yuyv.take_format(&format).expect_err("no YUYV");
    assert!(why.contains("takes YU12, NV12, not YUYV"), "{why}");
    // Offered, but with rows padded to 192 bytes: the camera's buffer does not read as that.
    let behaviour = Behaviour {
        stride: 192,
        ..takes_yuyv()
    };
    let (mut encoder, state) = encoder(behaviour, &settings(64, 64, 300));
    let why = encoder.take_format(&format).expect_err("other stride");
    assert!(why.contains("stride 192"), "{why}");
    let unit = encoder
        .encode(&frame(64, 64, 1, Instant::now()), false)
        .expect("I420 still encodes")
        .expect("a unit");
    assert_eq!(unit.seq, 1);
    let last_output_format = calls(&state).into_iter().rev().find_map(|c| match c {
        Call::SetFormat(OUT_MP, f) => Some(f.fourcc),
        _ => None,
    });
    assert_eq!(last_output_format, Some(*b"YU12"));
}

#[test]
fn switching_between_camera_buffers_and_i420_starts_a_new_stream_with_an_idr() {
    let (mut encoder, state) = encoder(takes_yuyv(), &settings(64, 64, 300));
    let lender = MemoryLender::new(yuyv_pictures(1), true);
    let format = PlaneFormat::of_camera(*b"YUYV", 64, 64, 128).expect("yuyv");
    encoder.take_format(&format).expect("takes YUYV");
    let at = Instant::now();
    let key = |unit: Option<AccessUnit>| unit.expect("a unit").keyframe;
    let camera = |encoder: &mut M2mEncoder<Fake>, seq| {
        let frame = camera_frame(&lender, 0, seq, at);
        encoder.encode_camera(&frame, false).expect("encodes").0
    };
    assert!(key(camera(&mut encoder, 1)));
    assert!(!key(camera(&mut encoder, 2)));
    // The camera is lost: placeholder pictures in I420.
    let i420 = encoder
        .encode(&frame(64, 64, 3, at), false)
        .expect("encodes");
    assert!(key(i420), "a new stream after the switch");
    assert!(!key(encoder
        .encode(&frame(64, 64, 4, at), false)
        .expect("encodes")));
    // The camera is back.
    assert!(key(camera(&mut encoder, 5)));
    let formats: Vec<[u8; 4]> = calls(&state)
        .into_iter()
        .filter_map(|c| match c {
            Call::SetFormat(OUT_MP, f) => Some(f.fourcc),
            _ => None,
        })
        .collect();
    assert_eq!(
        formats,
        vec![*b"YU12", *b"YUYV", *b"YUYV", *b"YU12", *b"YUYV"],
        "I420 at setup, YUYV copied (take_format), YUYV dma-buf, I420, YUYV dma-buf"
    );
}

#[test]
fn pictures_that_start_inside_the_camera_buffer_are_copied_not_read_shifted() {
    let (mut encoder, state) = encoder(takes_yuyv(), &settings(64, 64, 300));
    // vivid's multi-planar YUYV puts the picture 128 bytes into each buffer.
    let mut buffer = vec![0xee; 128];
    buffer.extend(&yuyv_pictures(1)[0]);
    let lender = MemoryLender::new(vec![buffer], true);
    let format = PlaneFormat::of_camera(*b"YUYV", 64, 64, 128).expect("yuyv");
    encoder.take_format(&format).expect("takes YUYV");
    let frame = CameraFrame {
        buffer: CameraBuffer::new(lender.clone(), 0, 128, format.size as usize),
        format,
        seq: 1,
        captured: Instant::now(),
    };
    let (unit, read) = encoder.encode_camera(&frame, false).expect("encodes");
    assert_eq!((unit.expect("a unit").seq, read), (1, CameraRead::Copied));
    let picture = state.lock().expect("state").last_picture.clone();
    assert_eq!(
        &picture[..128 * 64],
        &yuyv_pictures(1)[0][..],
        "from the picture's start"
    );
    assert!(
        !calls(&state)
            .iter()
            .any(|c| matches!(c, Call::QueueDmabuf { .. })),
        "never handed over shifted"
    );
}
