#!/usr/bin/env bash
# The VM harness: boots Debian's own kernel in QEMU (software emulation, no KVM needed) with the
# kernel's vivid virtual camera, and checks static rtcam and rtcam-client inside it over the
# VM's loopback: device listing, the test pattern's stamps, capture in YUYV and NV12 (single-
# and multi-planar), a control set through rtcam, the camera going away and coming back while a
# viewer watches, and a clean stop on SIGTERM. The same checks (tests/vm/init.sh) run on every
# architecture; the table below says what differs.
#
#   bash tests/vm/run.sh [--arch x86_64|aarch64] [BIN_DIR]
#
# --arch: the machine to emulate (default x86_64). BIN_DIR: static rtcam and rtcam-client for
# that architecture, e.g. target/aarch64-unknown-linux-gnu/release from .ci/boards; without it
# they are built here (cargo profile `vm`, --features client). Kernel and busybox come from
# Debian's packages for the architecture, cached under target/vm/ARCH. Exits non-zero unless
# every expected check reported PASS exactly once. Needs root (apt-get).
#
# RTCAM_VM_TIMEOUT (seconds) overrides the architecture's bound on the VM run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

arch=x86_64
bin_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch="$2"; shift 2 ;;
    --arch=*) arch="${1#--arch=}"; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    -*) echo "vm: unknown option $1" >&2; exit 2 ;;
    *) bin_dir="$1"; shift ;;
  esac
done

# The M2M encoder's checks against vicodec: tests/vm/checks-m2m.sh names them in M2M_CHECKS
# (sourcing it only defines that and functions for init.sh).
. tests/vm/checks-m2m.sh
m2m_checks=$(echo $M2M_CHECKS)
# Every check tests/vm/init.sh knows, in the order it runs them.
all_checks="vivid_loaded devices_json test_pattern_stamps capture_YUYV control_brightness
  capture_NV12 before_unplug no_signal_while_unplugged recovered_after_replug idr_after_replug
  viewer_stayed_connected capture_NV12_multiplanar $m2m_checks libcamera_devices
  libcamera_capture libcamera_control_brightness libcamera_auto_preferred clean_stop"
# What differs per architecture. `excluded[NAME]="why"` leaves a check out on an architecture
# that cannot run it (the reason shows in the summary); init.sh runs only the expected ones,
# and the verdict demands each of those by name. Checks that share an rtcam run (capture_YUYV
# and control_brightness; before_unplug … viewer_stayed_connected) go out together or not at all.
declare -A excluded=()
case "$arch" in
  x86_64)
    debarch=amd64
    qemu_pkg=qemu-system-x86
    qemu=(qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024)
    console=ttyS0
    elf_machine='X86-64'
    kernel_fetch=apt              # the machine's own architecture: plain apt-get download
    vm_timeout=900
    # Built from Debian's kernel source by tests/vm/modules.sh (Debian's package lacks them).
    built_modules="v4l2-mem2mem vicodec vimc"
    # Nothing excluded.
    ;;
  aarch64)
    debarch=arm64
    qemu_pkg=qemu-system-arm
    # A Raspberry Pi 4's core (Cortex-A72), two of them; -M virt has no camera of its own.
    qemu=(qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 -accel tcg)
    console=ttyAMA0
    elf_machine='AArch64'
    kernel_fetch=apt-foreign      # another architecture: .cargo/apt-foreign's private apt
    vm_timeout=900
    # tests/vm/modules.sh builds for amd64 kernels only.
    built_modules=""
    for c in $m2m_checks; do excluded[$c]="no vicodec: tests/vm/modules.sh builds amd64 modules only"; done
    for c in libcamera_devices libcamera_capture libcamera_control_brightness libcamera_auto_preferred; do
      excluded[$c]="no vimc module for arm64 (tests/vm/modules.sh builds amd64 only)"
    done
    # Every other check, the camera ones included, runs here in about a minute of emulated
    # time (measured), like x86_64.
    ;;
  *) echo "vm: --arch x86_64 or aarch64, not $arch" >&2; exit 2 ;;
esac
rust_target=$arch-unknown-linux-gnu
# vivid and what it needs, in load order (vivid last), the same on both architectures.
modules="rc-core cec mc videodev videobuf2-common videobuf2-v4l2 videobuf2-memops
         videobuf2-vmalloc videobuf2-dma-contig v4l2-dv-timings v4l2-tpg vivid"

expected=()
for c in $all_checks; do [ -n "${excluded[$c]:-}" ] || expected+=("$c"); done

work=$root/target/vm/$arch
mkdir -p "$work"
log() { printf '\n==> vm (%s): %s\n' "$arch" "$*"; }

log "packages"
export DEBIAN_FRONTEND=noninteractive
need=()
command -v "${qemu[0]}" >/dev/null || need+=("$qemu_pkg")
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
command -v readelf >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -z "$bin_dir" ]; then
  log "static rtcam and rtcam-client ($rust_target)"
  if [ "$arch" != "$(uname -m)" ]; then
    .cargo/cross-toolchain "$rust_target" >/dev/null
    # shellcheck disable=SC1090
    . "target/cross-toolchain/$rust_target.env"
  fi
  # Static C runtime: they run in an initramfs with no libraries. (RUSTFLAGS replaces
  # .cargo/config.toml's target rustflags, which say the same for the boards.)
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --profile vm --target "$rust_target" --features client --bins
  bin_dir=$root/target/$rust_target/vm
fi
for b in rtcam rtcam-client; do
  f=$bin_dir/$b
  [ -x "$f" ] || { echo "vm: no $f"; exit 1; }
  readelf -h "$f" | grep -q "Machine:.*$elf_machine" \
    || { echo "vm: $f is not an $arch binary"; exit 1; }
  if readelf -l "$f" | grep -q 'program interpreter'; then
    echo "vm: $f is dynamically linked; the initramfs has no libc"; exit 1
  fi
done

log "kernel and busybox ($debarch)"
if [ $kernel_fetch = apt ]; then
  apt-cache depends "linux-image-$debarch" 2>/dev/null | grep -q 'Depends: linux-image-' \
    || apt-get update -qq
  kpkg=$(apt-cache depends "linux-image-$debarch" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
else
  kpkg=$(.cargo/apt-foreign "$debarch" --depends "linux-image-$debarch")
fi
[ -n "$kpkg" ] || { echo "vm: cannot find the kernel package behind linux-image-$debarch"; exit 1; }
kroot=$work/$kpkg
if [ ! -d "$kroot/boot" ]; then
  rm -rf "$work/debs" "$kroot.tmp"
  mkdir -p "$work/debs" "$kroot.tmp"
  if [ $kernel_fetch = apt ]; then
    (cd "$work/debs" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg" busybox-static)
  else
    .cargo/apt-foreign "$debarch" "$work/debs" "$kpkg" busybox-static
  fi
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$kroot.tmp"; done
  rm -rf "$work/debs"
  mv "$kroot.tmp" "$kroot"
fi
vmlinuz=$(ls "$kroot"/boot/vmlinuz-*)
moddir=$(ls -d "$kroot"/lib/modules/* 2>/dev/null || ls -d "$kroot"/usr/lib/modules/*)
busybox=$kroot/bin/busybox
[ -x "$busybox" ] || busybox=$kroot/usr/bin/busybox
[ -x "$busybox" ] || { echo "vm: no busybox in busybox-static ($debarch)"; exit 1; }

if [ -n "$built_modules" ]; then
  log "test drivers Debian's kernel lacks: $built_modules (tests/vm/modules.sh)"
  bash tests/vm/modules.sh "${kpkg#linux-image-}" "$work/built-modules"
fi

if [ -z "${excluded[libcamera_capture]:-}" ]; then
  log "libcamera userland (tests/vm/libcamera-userland.sh)"
  bash tests/vm/libcamera-userland.sh "$work/libcamera"
fi

log "initramfs"
rd=$work/initramfs
rm -rf "$rd"
mkdir -p "$rd"/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp "$busybox" "$rd/bin/busybox"
cp "$bin_dir/rtcam" "$bin_dir/rtcam-client" "$rd/bin/"
# Uncompressed: busybox's insmod does not read compressed modules.
for m in $modules; do
  f=$(find "$moddir" -name "$m.ko*" | head -n1)
  [ -n "$f" ] || { echo "vm: module $m not in $kpkg"; exit 1; }
  case "$f" in
    *.xz) xz -dc "$f" >"$rd/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$rd/lib/modules/$m.ko" ;;
    *) cp "$f" "$rd/lib/modules/$m.ko" ;;
  esac
done
for m in $built_modules; do cp "$work/built-modules/$m.ko" "$rd/lib/modules/"; done
cat >"$rd/etc/rtcam-vm.env" <<ENV
VM_ARCH=$arch
VM_MODULES="$(echo $modules)"
VM_BUILT_MODULES="$built_modules"
VM_CHECKS="${expected[*]}"
ENV
[ -z "${excluded[libcamera_capture]:-}" ] && cp -a "$work/libcamera/root/." "$rd/"
cp tests/vm/checks-libcamera.sh "$rd/etc/"
cp tests/vm/init.sh "$rd/init"
cp tests/vm/checks-m2m.sh "$rd/etc/"
chmod +x "$rd/init"
cat >"$rd/etc/rtcam.toml" <<'TOML'
[auth]
control_token = "vm-test-control-token"
state_dir = "/tmp/rtcam-state"
TOML
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"
ls -la "$work/initrd.gz"

log "boot $(basename "$vmlinuz") (serial console below)"
console_log=$work/console.log
started=$(date +%s)
timeout "${RTCAM_VM_TIMEOUT:-$vm_timeout}" "${qemu[@]}" \
  -nographic -no-reboot -nic none -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=$console panic=-1 quiet loglevel=3" </dev/null | tee "$console_log" || true
ran=$(( $(date +%s) - started ))

log "results: every expected check by name"
tr -d '\r' <"$console_log" | grep -a '^RTCAM-VM-CHECK ' >"$work/checks.txt" || true
passed=0 failed=0
printf '  %-28s %-8s %s\n' check result detail
for c in "${expected[@]}"; do
  lines=$(awk -v c="$c" '$2 == c' "$work/checks.txt")
  n=$(printf '%s' "$lines" | grep -c . || true)
  verdict=$(printf '%s\n' "$lines" | awk 'NR == 1 {print $3}')
  detail=$(printf '%s\n' "$lines" | awk 'NR == 1 {$1 = $2 = $3 = ""; sub(/^ +/, ""); print}')
  if [ "$n" -eq 0 ]; then
    verdict=MISSING detail="never reported"
  elif [ "$n" -gt 1 ]; then
    verdict=TWICE detail="reported $n times"
  fi
  printf '  %-28s %-8s %s\n' "$c" "$verdict" "${detail:0:90}"
  if [ "$verdict" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
for c in "${!excluded[@]}"; do
  printf '  %-28s %-8s %s\n' "$c" excluded "${excluded[$c]}"
done
# A check the table does not expect means the table and init.sh disagree.
for c in $(awk '{print $2}' "$work/checks.txt" | sort -u); do
  case " ${expected[*]} " in
    *" $c "*) ;;
    *) printf '  %-28s %-8s %s\n' "$c" UNEXPECTED "not expected on $arch"; failed=$((failed + 1)) ;;
  esac
done
if ! grep -aq '^RTCAM-VM-DONE' "$console_log"; then
  echo "vm ($arch): the run did not finish (timeout or crash)"
  failed=$((failed + 1))
fi
echo "vm ($arch): VM ran $ran s; console: $console_log"
echo "vm-$arch: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -eq "${#expected[@]}" ]
