# The V4L2 memory-to-memory encoder backend (src/encode/m2m) on a real kernel driver: vicodec,
# the kernel's stateful M2M test encoder. It encodes FWHT, not H.264, but has the same queues,
# formats, streaming, drain (V4L2_ENC_CMD_STOP) and restart semantics, so rtcam's own backend
# runs against it with its coded format set to FWHT (`rtcam bench-encoder --codec FWHT`); the
# H.264 specifics are unit tests against a fake device (src/encode/m2m/tests.rs).
#
# Sourced by tests/vm/init.sh (which defines check, note, wanted); vicodec is loaded there.
# Checks: m2m_vicodec_found m2m_stream_vivid m2m_drain_eos m2m_restart_new_size
# m2m_camera_offset m2m_camera_dmabuf m2m_camera_copy m2m_multiplanar m2m_unsupported_format
# m2m_not_m2m_device m2m_auto_skips_non_h264

M2M_CHECKS="m2m_vicodec_found m2m_stream_vivid m2m_drain_eos m2m_restart_new_size
  m2m_camera_offset m2m_camera_dmabuf m2m_camera_copy m2m_multiplanar m2m_unsupported_format
  m2m_not_m2m_device m2m_auto_skips_non_h264"

field() { # name, file: a number or word from rtcam bench-encoder's JSON line
  grep -o "\"$1\":[^,}]*" "$2" | head -n1 | cut -d: -f2 | tr -d '"'
}

vicodec_encoder() { # prints vicodec's stateful encoder node
  for n in /sys/class/video4linux/video*; do
    [ "$(cat "$n/name" 2>/dev/null)" = stateful-encoder ] && echo "/dev/$(basename "$n")" && return 0
  done
  return 1
}

m2m_checks() {
  wanted m2m_vicodec_found || return 0
  m2m_started=$(date +%s)
  ENC=$(vicodec_encoder)
  check m2m_vicodec_found $? "${ENC:-no stateful-encoder node} ($(ls /dev/video* | tr '\n' ' '))"
  if [ -z "$ENC" ]; then
    for c in $M2M_CHECKS; do [ $c = m2m_vicodec_found ] || check $c 1 "no vicodec"; done
    return 0
  fi
  # vivid at 640x480 (vicodec's smallest is 640x360), 300 frames through the encoder one at a
  # time; each bitstream buffer must come back with its picture's sequence number and capture
  # time (they ride in the buffer timestamp). Then drain, end of stream, restart at 1280x720.
  lsmod | grep -q '^vivid' || load_vivid
  rtcam bench-encoder --encoder "v4l2m2m:$ENC" --codec FWHT --source /dev/video0 \
    --size 640x480 --fps 30 --frames 300 --restart 1280x720 --json >/tmp/m2m.json 2>/tmp/m2m.err
  status=$?
  cat /tmp/m2m.json; tail -n 5 /tmp/m2m.err
  units=$(field units /tmp/m2m.json)
  kept=$(field timestamps_kept /tmp/m2m.json)
  keys=$(field keyframes /tmp/m2m.json)
  [ $status -eq 0 ] && [ "${units:-0}" -eq 300 ] && [ "${kept:-0}" -eq 300 ] && [ "${keys:-0}" -ge 1 ]
  check m2m_stream_vivid $? "exit $status, $(field width /tmp/m2m.json)x$(field height /tmp/m2m.json): $units units, $kept with their timestamps, $keys keyframes, $(field ms_per_frame_mean /tmp/m2m.json) ms/frame"
  [ "$(field end_of_stream /tmp/m2m.json)" = true ] && [ "$(field drained_units /tmp/m2m.json)" = 2 ]
  check m2m_drain_eos $? "drained $(field drained_units /tmp/m2m.json) units, EPIPE after the last: $(field end_of_stream /tmp/m2m.json)"
  [ "$(field restart_units /tmp/m2m.json)" = 30 ] && [ "$(field restart_keyframe_first /tmp/m2m.json)" = true ]
  check m2m_restart_new_size $? "1280x720 after the drain: $(field restart_units /tmp/m2m.json) units, keyframe first: $(field restart_keyframe_first /tmp/m2m.json)"

  # Zero copy: vivid's YUYV buffers go to vicodec as they are, exported by vivid
  # (VIDIOC_EXPBUF) and imported by vicodec (V4L2_MEMORY_DMABUF); nothing converted or copied
  # on the CPU. Then the same with a copy into vicodec's own buffers. Both see the same
  # picture (vivid's colour bars), so their FWHT sizes must agree: a wrong or empty buffer
  # read through the dma-buf would compress to something else entirely.
  # First vivid as the checks before left it (multi-planar), whose YUYV pictures start 128
  # bytes into each buffer: those must be copied from the picture's start, not handed over.
  camera_bench() { # input, output file: 150 vivid YUYV frames through vicodec
    rtcam bench-encoder --encoder "v4l2m2m:$ENC" --codec FWHT --source /dev/video0 --format YUYV \
      --size 640x480 --fps 30 --frames 150 --camera-input "$1" --json >"$2" 2>/tmp/m2m.err
    echo "exit $?" >>"$2"
    cat "$2"; tail -n 5 /tmp/m2m.err
  }
  camera_bench as-is /tmp/m2m-offset.json
  o=/tmp/m2m-offset.json
  [ "$(field camera_copied $o)" = 150 ] && [ "$(field camera_dmabuf $o)" = 0 ] \
    && grep -q "start 128 bytes into its buffers" /tmp/m2m.err && grep -q "exit 0" $o
  check m2m_camera_offset $? "vivid multi-planar: $(field input $o), $(field camera_copied $o) copied; $(grep -o 'cannot read[^;]*' /tmp/m2m.err | head -n1)"
  rmmod vivid && load_vivid
  sleep 1
  for input in as-is copy; do camera_bench $input /tmp/m2m-$input.json; done
  f=/tmp/m2m-as-is.json
  [ "$(field units $f)" = 150 ] && [ "$(field timestamps_kept $f)" = 150 ] \
    && [ "$(field camera_dmabuf $f)" = 150 ] && [ "$(field camera_copied $f)" = 0 ] \
    && [ "$(field input $f)" = "camera YUYV buffers by dma-buf" ] && grep -q "exit 0" $f
  check m2m_camera_dmabuf $? "$(field input $f): $(field camera_dmabuf $f) of $(field units $f) units read by vicodec from vivid's buffers, $(field timestamps_kept $f) with their timestamps, $(field bytes $f) bytes, $(field ms_per_frame_mean $f) ms/frame, $(field cpu_percent $f) % CPU"
  c=/tmp/m2m-copy.json
  dmabuf_bytes=$(field bytes $f); copy_bytes=$(field bytes $c)
  [ "$(field camera_copied $c)" = 150 ] && [ "$(field camera_dmabuf $c)" = 0 ] \
    && [ "$(field input $c)" = "camera YUYV buffers copied" ] \
    && [ "${copy_bytes:-0}" -gt 0 ] && [ "${dmabuf_bytes:-0}" -gt 0 ] \
    && [ $((dmabuf_bytes * 10)) -ge $((copy_bytes * 9)) ] \
    && [ $((dmabuf_bytes * 9)) -le $((copy_bytes * 10)) ] && grep -q "exit 0" $c
  check m2m_camera_copy $? "$(field input $c): $(field camera_copied $c) copied, $copy_bytes bytes (dma-buf: $dmabuf_bytes), $(field ms_per_frame_mean $c) ms/frame, $(field cpu_percent $c) % CPU"

  # Errors: the product's H.264 on an FWHT-only encoder, and a camera given as the encoder.
  rtcam bench-encoder --encoder "v4l2m2m:$ENC" --size 640x360 --frames 5 >/tmp/m2m.txt 2>&1
  status=$?
  grep -q "encodes FWHT, not H264" /tmp/m2m.txt && [ $status -ne 0 ]
  check m2m_unsupported_format $? "exit $status: $(head -c 160 /tmp/m2m.txt)"
  rtcam bench-encoder --encoder v4l2m2m:/dev/video0 --size 640x360 --frames 5 >/tmp/m2m.txt 2>&1
  status=$?
  grep -q "not a memory-to-memory device" /tmp/m2m.txt && [ $status -ne 0 ]
  check m2m_not_m2m_device $? "exit $status: $(head -c 160 /tmp/m2m.txt)"
  # Without --encoder every usable H.264 encoder is measured: vicodec (FWHT) is not one.
  rtcam bench-encoder --size 640x360 --frames 5 --json >/tmp/m2m.txt 2>&1
  status=$?
  [ $status -eq 0 ] && [ "$(grep -c '"encoder"' /tmp/m2m.txt)" -eq 1 ] \
    && grep -q '"encoder":"software (OpenH264)"' /tmp/m2m.txt
  check m2m_auto_skips_non_h264 $? "exit $status: $(grep -o '"encoder":"[^"]*"' /tmp/m2m.txt | tr '\n' ' ')"

  # The multi-planar API: vicodec again, with multiplanar=1.
  rmmod vicodec && insmod /lib/modules/vicodec.ko multiplanar=1
  sleep 1
  ENC=$(vicodec_encoder)
  rtcam bench-encoder --encoder "v4l2m2m:$ENC" --codec FWHT --size 640x360 --frames 60 \
    --restart 640x480 --json >/tmp/m2m.json 2>/tmp/m2m.err
  status=$?
  cat /tmp/m2m.json; tail -n 5 /tmp/m2m.err
  [ $status -eq 0 ] && [ "$(field units /tmp/m2m.json)" = 60 ] \
    && [ "$(field timestamps_kept /tmp/m2m.json)" = 60 ] \
    && [ "$(field end_of_stream /tmp/m2m.json)" = true ] \
    && [ "$(field restart_units /tmp/m2m.json)" = 30 ]
  check m2m_multiplanar $? "exit $status, $ENC: $(field units /tmp/m2m.json) units, $(field timestamps_kept /tmp/m2m.json) with timestamps, restart $(field restart_units /tmp/m2m.json)"
  note "m2m checks took $(( $(date +%s) - m2m_started )) s"
}
