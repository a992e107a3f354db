#!/usr/bin/env bash
# The V4L2 harness: boots Debian's own kernel in QEMU (software emulation, no KVM needed) with
# the kernel's vivid virtual camera, and checks a static rtcam against it: device listing,
# capture in YUYV and NV12 (single- and multi-planar), a control set through rtcam, and the
# camera going away and coming back while a viewer watches. See tests/vm/init.sh for the
# checks. Needs root (apt-get) and about 1 GB of disk under target/vm-image.
#
#   bash tests/vm/run.sh          # exits non-zero if any check failed
#
# RTCAM_VM_TIMEOUT (seconds, default 900) bounds the VM run.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
work=$root/target/vm-image
mkdir -p "$work"

log() { printf '\n==> vm: %s\n' "$*"; }

log "packages"
export DEBIAN_FRONTEND=noninteractive
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
[ -x /bin/busybox ] && file -L /bin/busybox 2>/dev/null | grep -q static || need+=(busybox-static)
command -v cpio >/dev/null || need+=(cpio)
command -v xz >/dev/null || need+=(xz-utils)
command -v zstd >/dev/null || need+=(zstd)
command -v file >/dev/null || need+=(file)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
busybox=$(command -v busybox)
file -L "$busybox" | grep -q 'statically linked' || { echo "busybox is not static: $busybox"; exit 1; }

log "static rtcam and rtcam-client"
# Built once, with the static C runtime so they run in an initramfs with no libraries.
RUSTFLAGS='-C target-feature=+crt-static' \
  cargo build --locked --profile vm --target x86_64-unknown-linux-gnu --bins
bin=$root/target/x86_64-unknown-linux-gnu/vm

log "kernel"
# The kernel package linux-image-amd64 points at, as on any Debian machine.
if ! apt-cache depends linux-image-amd64 2>/dev/null | grep -q 'Depends: linux-image-'; then
  apt-get update -qq
fi
kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "cannot find the kernel package"; exit 1; }
kdir=$work/$kpkg
if [ ! -d "$kdir/boot" ]; then
  rm -rf "$kdir" && mkdir -p "$kdir"
  (cd "$work" && apt-get download -qq "$kpkg")
  dpkg-deb -x "$work/${kpkg}"_*.deb "$kdir"
fi
vmlinuz=$(ls "$kdir"/boot/vmlinuz-*)
moddir=$(ls -d "$kdir"/lib/modules/* 2>/dev/null || ls -d "$kdir"/usr/lib/modules/*)

log "initramfs"
rd=$work/initramfs
rm -rf "$rd"
mkdir -p "$rd"/{bin,dev,proc,sys,tmp,etc,lib/modules}
cp "$busybox" "$rd/bin/busybox"
for tool in sh mount umount insmod rmmod lsmod sleep cat grep echo ifconfig wget kill \
            poweroff mkdir ls head tail sed wc dmesg tr cut date touch rm; do
  ln -s busybox "$rd/bin/$tool"
done
cp "$bin/rtcam" "$bin/rtcam-client" "$rd/bin/"
# In the order they depend on each other (vivid last), uncompressed: busybox's insmod does not
# read compressed modules.
modules="rc-core cec mc videodev videobuf2-common videobuf2-v4l2 videobuf2-memops
         videobuf2-vmalloc videobuf2-dma-contig v4l2-dv-timings v4l2-tpg vivid"
for m in $modules; do
  f=$(find "$moddir" -name "$m.ko*" | head -n1)
  [ -n "$f" ] || { echo "module $m not found under $moddir"; exit 1; }
  case "$f" in
    *.xz) xz -dc "$f" >"$rd/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$rd/lib/modules/$m.ko" ;;
    *) cp "$f" "$rd/lib/modules/$m.ko" ;;
  esac
done
echo "$modules" | tr -s ' \n' ' ' >"$rd/etc/modules"
cp tests/vm/init.sh "$rd/init"
chmod +x "$rd/init"
cat >"$rd/etc/rtcam.toml" <<'TOML'
[auth]
control_token = "vm-test-control-token"
state_dir = "/tmp/rtcam-state"
TOML
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"
ls -la "$work/initrd.gz"

log "boot (serial console below)"
console=$work/console.log
timeout "${RTCAM_VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 1024 \
  -nographic -no-reboot -nic none -kernel "$vmlinuz" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" </dev/null | tee "$console" || true

log "results"
grep -a '^RTCAM-VM' "$console" || true
passed=$(grep -ac '^RTCAM-VM-CHECK .* PASS' "$console" || true)
failed=$(grep -ac '^RTCAM-VM-CHECK .* FAIL' "$console" || true)
echo "vm: $passed passed, $failed failed"
if ! grep -aq '^RTCAM-VM-DONE' "$console"; then
  echo "vm: the run did not finish (timeout or crash)"
  exit 1
fi
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
