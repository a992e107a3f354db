# libcamera checks of the VM (sourced by tests/vm/init.sh, which defines check, wanted, note,
# start_rtcam, stop_rtcam and $URL): the kernel's vimc virtual camera through Debian's
# libcamera (its vimc pipeline handler) and its `cam` tool as rtcam's helper process, from the
# glibc userland tests/vm/libcamera-userland.sh unpacked into the image.
libcamera_checks() {
  wanted libcamera_devices || return 0
  export RTCAM_LIBCAMERA_HELPER=cam
  # `cam` and libcamera are dynamically linked: the image's own PATH and loader find them.
  export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
  export PATH=/bin:/usr/bin
  # libcamera enumerates through libudev and takes only devices udev has initialized: with no
  # udevd in this image, record the media and video nodes in udev's database as udevd would.
  mkdir -p /run/udev/data
  for dev in /sys/bus/media/devices/*/dev /sys/class/video4linux/*/dev; do
    [ -f "$dev" ] && echo "I:1" >"/run/udev/data/c$(cat "$dev")"
  done
  cam -l >/tmp/cam-list.txt 2>&1
  note "cam -l: $(tr '\n' ' ' </tmp/cam-list.txt | tail -c 300)"

  # rtcam devices lists the vimc camera as libcamera:0 with its controls.
  rtcam devices >/tmp/devices.txt 2>&1
  grep -q '^libcamera:0: .*(libcamera, via ' /tmp/devices.txt \
    && grep -q '^    brightness = ' /tmp/devices.txt
  check libcamera_devices $? "$(grep '^libcamera:' /tmp/devices.txt | tr '\n' ' ')"

  # cam is told --strict-formats (a size the camera adjusted would misalign the frames), and
  # libcamera's vimc pipeline takes widths and heights that are multiples of 6 only.
  size="--size 336x180"

  # Capture: decoded pictures from vimc that change, then brightness set through the data
  # channel reads back and brightens the picture (cam restarted with a capture script).
  if start_rtcam --source libcamera:0 $size; then
    rtcam-client $URL --expect camera --pictures 10 --seconds 240 --token vm-test-control-token \
      --set-control brightness=80 >/tmp/check.json 2>&1
    status=$?
    cat /tmp/check.json
    grep '"check":"pictures"' /tmp/check.json | grep -q '"ok":true'
    check libcamera_capture $? "exit $status $(grep -o '"camera_format":"[^"]*"' /tmp/check.json)"
    grep '"check":"control"' /tmp/check.json | grep -q '"ok":true'
    check libcamera_control_brightness $? "$(grep '"check":"control"' /tmp/check.json | grep -o '"original":[-0-9a-z]*\|"mean_luma_[a-z]*":[0-9.a-z]*\|"error":"[^"]*"' | tr '\n' ' ')"
  else
    check libcamera_capture 1 "rtcam did not start"
    check libcamera_control_brightness 1 "rtcam did not start"
  fi
  stop_rtcam

  # --source auto prefers the CSI-like libcamera camera (vimc) over vivid's V4L2 node.
  if start_rtcam --source auto $size; then
    grep -q 'source auto: using camera .*libcamera:0' /tmp/rtcam.log
    check libcamera_auto_preferred $? "$(grep -o 'source auto: [^;]*' /tmp/rtcam.log | tail -n 1)"
  else
    check libcamera_auto_preferred 1 "rtcam did not start"
  fi
  stop_rtcam
  unset RTCAM_LIBCAMERA_HELPER
}
