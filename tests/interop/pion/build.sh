#!/usr/bin/env bash
# Builds the pion WHEP player (tests/interop/pion/main.go) from Debian's own Go and pion
# packages, offline: golang-go and golang-github-pion-webrtc.v3-dev (pion 3.1, the stack of
# go2rtc and MediaMTX), installed here when missing (root, Debian).
#
#   bash tests/interop/pion/build.sh OUT
#
# Debian ships Go libraries as source under /usr/share/gocode/src without module metadata, so
# the build runs in GOPATH mode. There an import of github.com/pion/ice/v2 must be a directory
# .../pion/ice/v2, while some packages install to .../pion/<name> itself: a GOPATH of
# symlinks (under OUT's folder) gives each versioned path the directory it expects.
set -euo pipefail
out=${1:?usage: build.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
gocode=/usr/share/gocode/src

if ! command -v go >/dev/null || [ ! -d "$gocode/github.com/pion/webrtc" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends golang-go golang-github-pion-webrtc.v3-dev >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends golang-go golang-github-pion-webrtc.v3-dev >/dev/null; }
fi

gopath=$(dirname "$out")/gopath
rm -rf "$gopath"
mkdir -p "$gopath/src/pion-whep"
ln -s "$here/main.go" "$gopath/src/pion-whep/main.go"
# Every owner/repo of Debian's tree, then the versioned import paths it lacks.
for repo in "$gocode"/*/*/*; do
  rel=${repo#"$gocode"/}
  mkdir -p "$gopath/src/$(dirname "$rel")"
  ln -s "$repo" "$gopath/src/$rel"
done
grep -rhoE '"[a-z0-9.]+/[^/"]+/[^/"]+/v[0-9]+' "$gocode" "$here/main.go" | tr -d '"' | sort -u |
  while read -r path; do
    repo=${path%/v*}
    [ -e "$gocode/$path" ] && continue # Debian installed it under .../vN already
    [ -d "$gocode/$repo" ] || continue
    rm "$gopath/src/$repo"
    mkdir -p "$gopath/src/$repo"
    ln -s "$gocode/$repo" "$gopath/src/$path"
  done
(cd "$gopath/src/pion-whep" && GO111MODULE=off GOPATH="$gopath" GOFLAGS= go build -o "$out" .)
echo "pion-whep: built $out ($(dpkg-query -W -f '${Version}' golang-github-pion-webrtc.v3-dev 2>/dev/null || echo 'pion'))"
