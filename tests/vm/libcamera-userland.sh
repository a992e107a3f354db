#!/usr/bin/env bash
# A glibc userland with Debian's libcamera for the VM (tests/vm/run.sh): libcamera0.0.3 (its
# vimc pipeline handler drives the kernel's vimc virtual camera), libcamera-ipa (vimc's IPA
# module), libcamera-tools' `cam` (the helper rtcam starts) and the libraries they load. The
# VM is otherwise a busybox initramfs with static binaries; this tree is copied over its root.
#
#   bash tests/vm/libcamera-userland.sh OUT_DIR
#
# Downloads the packages with apt-get download (this machine's architecture: amd64 only, like
# tests/vm/modules.sh) and unpacks them into OUT_DIR/root, without documentation. A second run
# reuses OUT_DIR. Needs root (apt-get).
set -euo pipefail
out=${1:?usage: libcamera-userland.sh OUT_DIR}
[ "$(dpkg --print-architecture)" = amd64 ] || { echo "libcamera-userland: amd64 only" >&2; exit 2; }

# libcamera0.0.3, libcamera-ipa and what `cam` links (its package libcamera-tools also holds
# qcam, whose Qt is left out), with their Depends closure; less what only a desktop needs
# (alternatives and data packages that no library here loads).
roots="libcamera0.0.3 libcamera-ipa libevent-2.1-7 libevent-pthreads-2.1-7 libdrm2
  libjpeg62-turbo libsdl2-2.0-0 libtiff6 libyaml-0-2"
closure() {
  # shellcheck disable=SC2086
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances $roots 2>/dev/null | grep -v '^[ <]' | sort -u \
    | grep -vxE 'libelogind0|sysvinit-utils|lsb-base|x11-common|xkb-data|libasound2-data|libx11-data'
}
packages="libcamera-tools $(closure | tr '\n' ' ')"
case "$packages" in
  *libcamera0.0.3*libc6*|*libc6*libcamera0.0.3*) ;;
  *) apt-get update -qq; packages="libcamera-tools $(closure | tr '\n' ' ')" ;;
esac

# The cache is valid for these packages made by this script.
stamp="$out/root/.packages"
made="$(echo $packages) $(sha256sum <"$0" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$made" ]; then
  echo "libcamera-userland: cached in $out/root"
  exit 0
fi
rm -rf "$out/debs" "$out/root"
mkdir -p "$out/debs" "$out/root"
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
(cd "$out/debs" && { apt-get download -qq -o APT::Sandbox::User=root $packages 2>/dev/null \
  || { apt-get update -qq && apt-get download -qq -o APT::Sandbox::User=root $packages; }; })
for deb in "$out"/debs/*.deb; do dpkg-deb -x "$deb" "$out/root"; done
rm -rf "$out/debs"
# Only what cam, libcamera, its IPA modules and their proxies load goes into the VM image:
# walk ELF NEEDED entries from them through the unpacked tree.
full=$out/full
rm -rf "$full"
mv "$out/root" "$full"
mkdir -p "$out/root"
keep() { # path relative to the tree: copy it (symlinks as they are, and what they point to)
  [ -e "$out/root/$1" ] || [ -L "$out/root/$1" ] && return 0
  mkdir -p "$out/root/$(dirname "$1")"
  cp -a "$full/$1" "$out/root/$1"
  if [ -L "$full/$1" ]; then
    target=$(readlink "$full/$1")
    case "$target" in /*) keep "${target#/}" ;; *) keep "$(dirname "$1")/$target" ;; esac
  fi
}
# (libpulse finds its private library through its RUNPATH, pulseaudio/.)
libdirs="lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu usr/lib/x86_64-linux-gnu/pulseaudio"
queue=$(cd "$full" && echo usr/bin/cam usr/lib/x86_64-linux-gnu/libcamera*.so* \
  $(find usr/lib/x86_64-linux-gnu/libcamera usr/libexec -type f 2>/dev/null))
seen=" "
while [ -n "$queue" ]; do
  next=""
  for f in $queue; do
    case "$seen" in *" $f "*) continue ;; esac
    seen="$seen$f "
    keep "$f"
    for lib in $(readelf -d "$full/$f" 2>/dev/null | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
      found=""
      for d in $libdirs; do [ -e "$full/$d/$lib" ] && found=$d/$lib && break; done
      [ -n "$found" ] || { echo "libcamera-userland: $f needs $lib, not in the packages" >&2; exit 1; }
      next="$next $found"
    done
  done
  queue=$next
done
keep lib64/ld-linux-x86-64.so.2
mkdir -p "$out/root/usr/share"
cp -a "$full/usr/share/libcamera" "$out/root/usr/share/libcamera"
rm -rf "$full"
# Bookworm's libc6 is not merged-/usr: its files are in lib/ and lib64/, which the
# initramfs merges with its own /lib (modules).
[ -x "$out/root/usr/bin/cam" ] || { echo "libcamera-userland: no usr/bin/cam" >&2; exit 1; }
echo "$made" >"$stamp"
du -sh "$out/root"
