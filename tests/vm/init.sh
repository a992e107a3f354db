#!/bin/busybox sh
# /init of the VM image (tests/vm/run.sh), the same on every architecture: loads vivid, runs
# rtcam against /dev/video0 (and the test pattern) over the VM's loopback, checks it with
# rtcam-client, prints one "RTCAM-VM-CHECK <name> PASS|FAIL <detail>" line per check on the
# serial console, then powers off. /etc/rtcam-vm.env (written by run.sh) names the checks to
# run ($VM_CHECKS); run.sh demands exactly those, each once.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
ifconfig lo 127.0.0.1 up
. /etc/rtcam-vm.env
export RUST_LOG=info STATE_DIRECTORY=/tmp/rtcam-state
echo "RTCAM-VM-NOTE $(uname -m), $(nproc) CPUs, kernel $(uname -r)"

URL=http://127.0.0.1:8080/whep
# Small pictures: everything runs under software emulation.
COMMON="--config /etc/rtcam.toml --listen 127.0.0.1:8080 --rtc-port 0 --size 320x180 --fps 15 --bitrate 300"

check() { # name, exit status, detail
  if [ "$2" -eq 0 ]; then echo "RTCAM-VM-CHECK $1 PASS $3"; else echo "RTCAM-VM-CHECK $1 FAIL $3"; fi
}
fail_all() { # detail, names: one rtcam run that several checks needed did not happen
  detail=$1
  shift
  for name in "$@"; do check "$name" 1 "$detail"; done
}
note() { echo "RTCAM-VM-NOTE $*"; }
wanted() { # name: run.sh expects this check on this architecture
  case " $VM_CHECKS " in *" $1 "*) return 0 ;; esac
  note "not run on $VM_ARCH: $1"
  return 1
}

load_vivid() { # extra module options
  insmod /lib/modules/vivid.ko n_devs=1 node_types=0x1 "$@"
}

STOPS=""
start_rtcam() { # extra rtcam options; sets RTCAM_PID
  echo "== rtcam $*" >>/tmp/rtcam.log
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

stop_rtcam() { # records rtcam's exit status for clean_stop
  kill -TERM $RTCAM_PID 2>/dev/null
  wait $RTCAM_PID 2>/dev/null
  STOPS="$STOPS $?"
}

for m in $VM_MODULES; do
  [ "$m" = vivid ] && continue
  insmod /lib/modules/$m.ko || note "insmod $m failed"
done
load_vivid
# After vivid, so that vivid stays /dev/video0: vicodec's M2M nodes and vimc's media graph
# come next.
for m in $VM_BUILT_MODULES; do
  insmod /lib/modules/$m.ko || note "insmod $m failed"
done
sleep 1
if wanted vivid_loaded; then
  ls /dev/video* >/dev/null 2>&1
  check vivid_loaded $? "$(ls /dev/video* 2>/dev/null | tr '\n' ' ')"
fi

# rtcam devices --json lists vivid with its formats and controls.
if wanted devices_json; then
  rtcam devices --json >/tmp/devices.json 2>/tmp/devices.err
  ok=$?
  for want in '"driver": "vivid"' '"fourcc": "YUYV"' '"fourcc": "NV12"' '"name": "brightness"' '"menu"'; do
    grep -q "$want" /tmp/devices.json || { ok=1; note "devices --json lacks $want"; }
  done
  check devices_json $ok "$(grep -c '"fourcc"' /tmp/devices.json) formats, $(grep -c '"kind"' /tmp/devices.json) controls"
  rtcam devices | head -n 12
fi

# The test pattern: decoded pictures whose stamps read back (the whole encode and WebRTC path
# without a camera).
if wanted test_pattern_stamps; then
  if start_rtcam --source test; then
    rtcam-client $URL --seconds 10 >/tmp/client.json 2>&1
    status=$?
    cat /tmp/client.json
    decoded=$(sed -n 's/.*"decoded":\([0-9]*\).*/\1/p' /tmp/client.json | head -n1)
    stamped=$(sed -n 's/.*"stamped":\([0-9]*\).*/\1/p' /tmp/client.json | head -n1)
    # A few: under emulation ICE and DTLS alone take seconds.
    [ $status -eq 0 ] && [ "${decoded:-0}" -ge 3 ] && [ "${stamped:-0}" -ge 3 ]
    check test_pattern_stamps $? "$decoded decoded, $stamped stamped"
  else
    check test_pattern_stamps 1 "rtcam did not start"
  fi
  stop_rtcam
fi

# Capture in YUYV (and a control set through rtcam) and NV12: camera pictures reach a viewer.
for fmt in YUYV NV12; do
  wanted capture_$fmt || continue
  if start_rtcam --source /dev/video0 --format $fmt; then
    extra=""
    [ $fmt = YUYV ] && extra="--set-control brightness=200"
    rtcam-client $URL --expect camera --pictures 12 --seconds 120 --token vm-test-control-token $extra >/tmp/check.json 2>&1
    status=$?
    cat /tmp/check.json
    check capture_$fmt $status "$(grep -o '"camera_format":"[^"]*"' /tmp/check.json)"
    if [ $fmt = YUYV ]; then
      # Passes when brightness reads back AND the decoded picture's mean luma moved up with it.
      grep '"check":"control"' /tmp/check.json | grep -q '"ok":true}$'
      check control_brightness $? "$(grep '"check":"control"' /tmp/check.json | grep -o '"original":[0-9a-z]*\|"mean_luma_[a-z]*":[0-9.a-z]*' | tr '\n' ' ')"
    fi
  else
    check capture_$fmt 1 "rtcam did not start"
    [ $fmt = YUYV ] && check control_brightness 1 "rtcam did not start"
  fi
  stop_rtcam
done

# The camera goes away while a viewer watches, and comes back. ONE viewer, one connection,
# follows the whole fault (rtcam-client --expect-sequence): a check that connected anew for
# each phase would pass with a viewer that dropped at the unplug. It prints a line as each
# phase is reached (this script waits for them to know when to pull and return the camera),
# then its verdict: camera frames, "no signal" placeholder frames while unplugged, camera
# frames again, an IDR first after the placeholder, and no disconnect.
HOTPLUG="before_unplug no_signal_while_unplugged recovered_after_replug idr_after_replug
  viewer_stayed_connected"
wait_for_line() { # pattern, seconds: until the viewer's output has it (or the viewer ended)
  i=0
  while [ $i -lt $(($2 * 2)) ]; do
    grep -q "$1" /tmp/viewer.json && return 0
    kill -0 $VIEWER 2>/dev/null || break
    sleep 0.5
    i=$((i + 1))
  done
  grep -q "$1" /tmp/viewer.json
}
phase_detail() { # phase number: what the viewer saw then
  grep "\"phase\":$1[,}]" /tmp/viewer.json | grep -o '"frame":[0-9]*\|"camera_state":"[^"]*"' | tr '\n' ' '
}
if ! wanted no_signal_while_unplugged; then
  :
elif start_rtcam --source /dev/video0 --format YUYV; then
  rtcam-client $URL --expect-sequence camera,no-signal,camera --pictures 8 --seconds 400 \
    --token vm-test-control-token >/tmp/viewer.json 2>/tmp/viewer.err &
  VIEWER=$!
  wait_for_line '"phase":0[,}]' 120
  check before_unplug $? "$(phase_detail 0)"
  rmmod vivid 2>/tmp/rmmod.err
  note "rmmod vivid while streaming: exit $? $(cat /tmp/rmmod.err)"
  if lsmod | grep -q '^vivid'; then
    # Still loaded (in use): unplug it the way a USB camera goes, by unbinding the driver.
    echo vivid.0 >/sys/bus/platform/drivers/vivid/unbind
    note "unbound vivid.0 from its driver"
  fi
  wait_for_line '"phase":1[,}]' 120
  check no_signal_while_unplugged $? "$(phase_detail 1)"
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
  wait $VIEWER
  status=$?
  cat /tmp/viewer.json /tmp/viewer.err
  grep -q '"phase":2[,}]' /tmp/viewer.json
  check recovered_after_replug $? "$(phase_detail 2)"
  seq=$(grep '"check":"sequence"' /tmp/viewer.json)
  segments=$(echo "$seq" | grep -o '"segments":\[[][a-z",0-9-]*\]')
  echo "$seq" | grep -q '"idr_after_placeholder":1'
  check idr_after_replug $? "$segments"
  [ $status -eq 0 ] && echo "$seq" | grep -q '"connected_throughout":true' \
    && echo "$seq" | grep -q '"phases_reached":3'
  check viewer_stayed_connected $? "exit $status, $(echo "$seq" | grep -o '"connected_throughout":[a-z]*\|"error":"[^"]*"' | tr '\n' ' ')"
  stop_rtcam
else
  fail_all "rtcam did not start" $HOTPLUG
  stop_rtcam
fi

# A multi-planar capture device (vivid multiplanar=2): NV12 through the MPLANE API.
if wanted capture_NV12_multiplanar; then
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
fi

# The M2M encoder backend against vicodec (on architectures with the built modules).
. /etc/checks-m2m.sh
m2m_checks

# libcamera (vimc): tests/vm/checks-libcamera.sh.
. /etc/checks-libcamera.sh
libcamera_checks

# Every rtcam above was stopped with SIGTERM and must have exited 0 (viewers closed politely).
if wanted clean_stop; then
  bad=$(echo $STOPS | tr ' ' '\n' | grep -vc '^0$')
  [ -n "$STOPS" ] && [ "$bad" -eq 0 ]
  check clean_stop $? "exit statuses:$STOPS"
fi

echo "RTCAM-VM-LOG begin"
tail -n 60 /tmp/rtcam.log
echo "RTCAM-VM-LOG end"
echo "RTCAM-VM-DONE"
poweroff -f
