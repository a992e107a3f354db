#!/bin/sh
# /init of the VM image (tests/vm/run.sh): loads vivid, runs rtcam against /dev/video0 over the
# VM's loopback, checks it with rtcam-client, prints one "RTCAM-VM-CHECK <name> PASS|FAIL"
# line per check on the serial console, then powers off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
ifconfig lo 127.0.0.1 up
export RUST_LOG=info STATE_DIRECTORY=/tmp/rtcam-state

URL=http://127.0.0.1:8080/whep
# Small pictures: everything runs under software emulation.
COMMON="--config /etc/rtcam.toml --listen 127.0.0.1:8080 --rtc-port 0 --size 320x180 --fps 15 --bitrate 300"

check() { # name, exit status, detail
  if [ "$2" -eq 0 ]; then echo "RTCAM-VM-CHECK $1 PASS $3"; else echo "RTCAM-VM-CHECK $1 FAIL $3"; fi
}
note() { echo "RTCAM-VM-NOTE $*"; }

load_vivid() { # extra module options
  insmod /lib/modules/vivid.ko n_devs=1 node_types=0x1 "$@"
}

start_rtcam() { # extra rtcam options; sets RTCAM_PID
  rtcam $COMMON "$@" >>/tmp/rtcam.log 2>&1 &
  RTCAM_PID=$!
  i=0
  while [ $i -lt 120 ]; do
    wget -q -O /dev/null http://127.0.0.1:8080/healthz 2>/dev/null && return 0
    kill -0 $RTCAM_PID 2>/dev/null || return 1
    sleep 0.5
    i=$((i + 1))
  done
  return 1
}

stop_rtcam() {
  kill $RTCAM_PID 2>/dev/null
  wait $RTCAM_PID 2>/dev/null
}

for m in $(cat /etc/modules); do
  [ "$m" = vivid ] && continue
  insmod /lib/modules/$m.ko || note "insmod $m failed"
done
load_vivid
sleep 1
ls /dev/video* >/dev/null 2>&1
check vivid_loaded $? "$(ls /dev/video* 2>/dev/null | tr '\n' ' ')"

# 1. rtcam devices --json lists vivid with its formats and controls.
rtcam devices --json >/tmp/devices.json 2>/tmp/devices.err
ok=$?
for want in '"driver": "vivid"' '"fourcc": "YUYV"' '"fourcc": "NV12"' '"name": "brightness"' '"menu"'; do
  grep -q "$want" /tmp/devices.json || { ok=1; note "devices --json lacks $want"; }
done
check devices_json $ok "$(grep -c '"fourcc"' /tmp/devices.json) formats, $(grep -c '"kind"' /tmp/devices.json) controls"
rtcam devices | head -n 12

# 2. Capture in YUYV (and a control set through rtcam) and NV12: camera pictures reach a viewer.
for fmt in YUYV NV12; do
  if start_rtcam --source /dev/video0 --format $fmt; then
    extra=""
    [ $fmt = YUYV ] && extra="--set-control brightness=200"
    rtcam-client $URL --expect camera --pictures 12 --seconds 120 --token vm-test-control-token $extra >/tmp/check.json 2>&1
    status=$?
    cat /tmp/check.json
    check capture_$fmt $status "$(grep -o '"camera_format":"[^"]*"' /tmp/check.json)"
    if [ $fmt = YUYV ]; then
      grep '"check":"control"' /tmp/check.json | grep -q '"ok":true}$'
      check control_brightness $? "$(grep -o '"get":{[^}]*}' /tmp/check.json | head -n1)"
    fi
  else
    check capture_$fmt 1 "rtcam did not start"
  fi
  stop_rtcam
done

# 3. The camera goes away while a viewer watches, and comes back.
if start_rtcam --source /dev/video0 --format YUYV; then
  rm -f /tmp/stop-viewer
  rtcam-client $URL --seconds 600 --stop-file /tmp/stop-viewer >/tmp/viewer.json 2>&1 &
  VIEWER=$!
  rtcam-client $URL --expect camera --pictures 4 --seconds 60 >/dev/null 2>&1
  check before_unplug $? ""
  rmmod vivid 2>/tmp/rmmod.err
  note "rmmod vivid while streaming: exit $? $(cat /tmp/rmmod.err)"
  if lsmod | grep -q '^vivid'; then
    # Still loaded (in use): unplug it the way a USB camera goes, by unbinding the driver.
    echo vivid.0 >/sys/bus/platform/drivers/vivid/unbind
    note "unbound vivid.0 from its driver"
  fi
  rtcam-client $URL --expect no-signal --wait-state retrying --pictures 6 --seconds 60 >/tmp/check.json 2>&1
  check no_signal_while_unplugged $? "$(grep -o '"camera_state":"[^"]*"' /tmp/check.json | head -n1)"
  if lsmod | grep -q '^vivid'; then
    rmmod vivid 2>/tmp/rmmod.err
    note "rmmod vivid after unplug: exit $? $(cat /tmp/rmmod.err)"
  fi
  if lsmod | grep -q '^vivid'; then
    echo vivid.0 >/sys/bus/platform/drivers/vivid/bind
    note "re-bound vivid.0"
  else
    load_vivid
    note "insmod vivid: exit $?"
  fi
  rtcam-client $URL --expect camera --wait-state streaming --pictures 8 --seconds 120 >/tmp/check.json 2>&1
  status=$?
  cat /tmp/check.json
  check recovered_after_replug $status ""
  sleep 1
  touch /tmp/stop-viewer
  wait $VIEWER
  cat /tmp/viewer.json
  grep -q '"error"' /tmp/viewer.json
  [ $? -ne 0 ] && grep -q '"frames":[1-9]' /tmp/viewer.json
  check viewer_stayed_connected $? "$(grep -o '"frames":[0-9]*,"keyframes":[0-9]*' /tmp/viewer.json)"
  stop_rtcam
else
  check hotplug 1 "rtcam did not start"
fi

# 4. A multi-planar capture device (vivid multiplanar=2): NV12 through the MPLANE API.
lsmod | grep -q '^vivid' && rmmod vivid
load_vivid multiplanar=2
sleep 1
if start_rtcam --source /dev/video0 --format NV12; then
  rtcam-client $URL --expect camera --pictures 10 --seconds 120 >/tmp/check.json 2>&1
  status=$?
  check capture_NV12_multiplanar $status "$(grep -o '"camera_format":"[^"]*"' /tmp/check.json)"
  [ $status -ne 0 ] && cat /tmp/check.json
else
  check capture_NV12_multiplanar 1 "rtcam did not start"
fi
stop_rtcam

echo "RTCAM-VM-LOG begin"
tail -n 60 /tmp/rtcam.log
echo "RTCAM-VM-LOG end"
echo "RTCAM-VM-DONE"
poweroff -f
