#!/usr/bin/env bash
# Builds the kernel's test drivers that Debian's kernel package leaves out: v4l2-mem2mem (the
# memory-to-memory framework, CONFIG_V4L2_MEM2MEM_DEV is off in Debian), vicodec (a stateful
# M2M encoder/decoder of the FWHT codec) and vimc (a virtual media-controller camera that
# libcamera's vimc pipeline handler drives). They are built out of tree from Debian's own
# linux-source against the headers of the very kernel the VM boots, so they load there
# (unsigned modules load: Debian does not enforce signatures).
#
#   bash tests/vm/modules.sh KERNEL_RELEASE OUT_DIR
#
# KERNEL_RELEASE: e.g. 6.1.0-57-amd64 (the VM kernel package's name without linux-image-).
# OUT_DIR gets v4l2-mem2mem.ko, vicodec.ko and vimc.ko; a second run with the same release
# reuses them. Load order in the VM: Debian's mc, videodev, videobuf2-*, v4l2-tpg first, then
# v4l2-mem2mem, vicodec, vimc. Needs root (apt-get). x86_64 kernels only: building for arm64
# would need the arm64 headers' kbuild tools cross-built for this machine (not done).
set -euo pipefail

krel=${1:?usage: modules.sh KERNEL_RELEASE OUT_DIR}
out=${2:?usage: modules.sh KERNEL_RELEASE OUT_DIR}
case "$krel" in
  *-amd64) ;;
  *) echo "modules: only amd64 kernels are built here, not $krel" >&2; exit 2 ;;
esac
built="v4l2-mem2mem vicodec vimc"

mkdir -p "$out"
if [ "$(cat "$out/release" 2>/dev/null)" = "$krel" ]; then
  all=1
  for m in $built; do [ -f "$out/$m.ko" ] || all=0; done
  [ $all = 1 ] && { echo "modules: $built for $krel (cached in $out)"; exit 0; }
fi

headers=/usr/src/linux-headers-$krel
source_tar=/usr/src/linux-source-6.1.tar.xz
need=()
[ -d "$headers" ] || need+=("linux-headers-$krel")
[ -f "$source_tar" ] || need+=(linux-source-6.1)
command -v make >/dev/null || need+=(make)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; }
fi
# The driver sources must come from the same kernel version as the headers: a newer point
# release's sources can use symbols or structures the older kernel does not have.
image_version=$(dpkg-query -W -f '${Version}' "linux-headers-$krel")
source_version=$(dpkg-query -W -f '${Version}' linux-source-6.1)
if [ "$image_version" != "$source_version" ]; then
  echo "modules: linux-source-6.1 is $source_version but the kernel's headers are $image_version;" \
    "install the matching linux-source-6.1" >&2
  exit 1
fi

work=$out/build
rm -rf "$work"
mkdir -p "$work"
src=linux-source-6.1/drivers/media
tar -xJf "$source_tar" -C "$work" \
  "$src/v4l2-core/v4l2-mem2mem.c" "$src/test-drivers/vicodec" "$src/test-drivers/vimc"

# One folder per module with a one-line Kbuild makefile; vicodec links against the
# v4l2-mem2mem just built, so it gets that module's symbol versions.
mkdir -p "$work/m2m"
cp "$work/$src/v4l2-core/v4l2-mem2mem.c" "$work/m2m/"
echo 'obj-m += v4l2-mem2mem.o' >"$work/m2m/Makefile"
cp -r "$work/$src/test-drivers/vicodec" "$work/vicodec"
printf '%s\n' 'vicodec-objs := vicodec-core.o codec-fwht.o codec-v4l2-fwht.o' 'obj-m += vicodec.o' \
  >"$work/vicodec/Makefile"
cp -r "$work/$src/test-drivers/vimc" "$work/vimc"
printf '%s\n' 'vimc-y := vimc-core.o vimc-common.o vimc-streamer.o vimc-capture.o vimc-debayer.o vimc-scaler.o vimc-sensor.o vimc-lens.o' \
  'obj-m += vimc.o' >"$work/vimc/Makefile"

jobs=$(nproc)
make -s -j"$jobs" -C "$headers" M="$work/m2m" modules
make -s -j"$jobs" -C "$headers" M="$work/vicodec" KBUILD_EXTRA_SYMBOLS="$work/m2m/Module.symvers" modules
make -s -j"$jobs" -C "$headers" M="$work/vimc" modules
cp "$work/m2m/v4l2-mem2mem.ko" "$work/vicodec/vicodec.ko" "$work/vimc/vimc.ko" "$out/"
# As `make INSTALL_MOD_STRIP=1` would: the initramfs need not carry debug info (4 MB of it).
for m in $built; do strip --strip-debug "$out/$m.ko"; done
echo "$krel" >"$out/release"
rm -rf "$work"
echo "modules: built $built for $krel in $out"
