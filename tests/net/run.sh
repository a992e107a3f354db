#!/usr/bin/env bash
# The network tests of rtcam's congestion control: the real rtcam binary streams to viewers
# behind real rate-limited, lossy links, and the viewers' decoded frames say whether the
# picture keeps moving. Each viewer is the in-repo client (rtcam-client --timeline) or headless
# Chromium (tests/browser/net-viewer.mjs, Chromium's own WebRTC stack).
#
#   bash tests/net/run.sh [--scenario slow|mixed|recovery]... [--client rtcam-client|chromium]... [BIN_DIR]
#
# BIN_DIR: rtcam and rtcam-client (built with --features client), e.g. the VM harness's static
# binaries in target/x86_64-unknown-linux-gnu/vm; without it they are built here exactly as the
# VM harness builds them, so the two share one build. By default every scenario runs with
# every client (6 runs, about 5 minutes); --scenario and --client (repeatable) pick some.
#
# Topology (network namespaces, addresses from 198.18.0.0/15): rtcam in its own namespace on
# 198.18.0.1 (HTTP :8080, media UDP :8555); viewer "slow" in another, joined by a veth pair
# (198.18.1.1 - 198.18.1.2); viewer "fast" in a third (198.18.2.1 - 198.18.2.2). The
# bottleneck is on rtcam's side of the slow viewer's veth: tbf 600 kbit/s with about 100 ms of
# queue, and 2 % random loss of UDP by nftables.
#   slow      the slow viewer alone, 35 s: last 15 s >= 20 fps decoded, no gap > 500 ms
#   mixed     the slow viewer (40 s) and a fast one on an unlimited link (35 s, joining
#             second): over the fast one's last 15 s, fast >= 25 fps and >= 1000 kbit/s
#             received, slow >= 10 fps with no gap > 1 s
#   recovery  the slow viewer (55 s), the limit and the loss lifted 20 s after it connected:
#             received >= 1200 kbit/s (averaged over 2 s, and held for 5 s) within 15 s of
#             the lift; watched on to about 34 s after it, so a slower recovery is timed too
# Results: target/net/runs/ (per run: each viewer's JSON, rtcam's log with Unix times, the
# /api/status of every second, the bottleneck's counters), details.txt, summary.md and
# results.json. Exits non-zero if any check fails or any run did not produce its numbers; a
# run that cannot start is a failure, never a skip. Needs root (namespaces, tc, nft, apt-get).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

bin_dir=
scenarios=()
clients=()
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenarios+=("$2"); shift 2 ;;
    --client) clients+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    -*) echo "net: unknown option $1" >&2; exit 2 ;;
    *) bin_dir="$1"; shift ;;
  esac
done
[ ${#scenarios[@]} -gt 0 ] || scenarios=(slow mixed recovery)
[ ${#clients[@]} -gt 0 ] || clients=(rtcam-client chromium)
for s in "${scenarios[@]}"; do
  case "$s" in slow|mixed|recovery) ;; *) echo "net: no scenario $s" >&2; exit 2 ;; esac
done
for c in "${clients[@]}"; do
  case "$c" in rtcam-client|chromium) ;; *) echo "net: no client $c" >&2; exit 2 ;; esac
done

log() { printf '\n==> net: %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "net: needs root (network namespaces, tc, nft)"; exit 1; }

log "packages"
export DEBIAN_FRONTEND=noninteractive
need=()
command -v nft >/dev/null || need+=(nftables)
{ command -v ip && command -v tc; } >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
(cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error; })

if [ -z "$bin_dir" ]; then
  log "rtcam and rtcam-client (the VM harness's static build)"
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --profile vm --target x86_64-unknown-linux-gnu --features client --bins
  bin_dir=$root/target/x86_64-unknown-linux-gnu/vm
fi
bin_dir=$(cd "$bin_dir" && pwd)
for b in rtcam rtcam-client; do
  [ -x "$bin_dir/$b" ] || { echo "net: no $bin_dir/$b"; exit 1; }
done
"$bin_dir/rtcam-client" --help | grep -q -- --timeline \
  || { echo "net: $bin_dir/rtcam-client has no --timeline (an older build?)"; exit 1; }

out=$root/target/net
rm -rf "$out/runs"
mkdir -p "$out/runs"

# ---- the namespaces; removed again on any exit ----
tag=rtnet$$
S=$tag-cam
A=$tag-slow
B=$tag-fast
CAM=198.18.0.1
URL=http://$CAM:8080

cleanup() {
  set +e
  for ns in "$A" "$B" "$S"; do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    # Only processes this script started live in its namespaces.
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  sleep 1
  for ns in "$A" "$B" "$S"; do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "namespaces $S, $A, $B"
for ns in "$S" "$A" "$B"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip -n "$S" addr add $CAM/32 dev lo
ip link add name vs-slow netns "$S" type veth peer name eth0 netns "$A"
ip link add name vs-fast netns "$S" type veth peer name eth0 netns "$B"
ip -n "$S" addr add 198.18.1.1/24 dev vs-slow
ip -n "$S" addr add 198.18.2.1/24 dev vs-fast
ip -n "$A" addr add 198.18.1.2/24 dev eth0
ip -n "$B" addr add 198.18.2.2/24 dev eth0
for l in "$S vs-slow" "$S vs-fast" "$A eth0" "$B eth0"; do
  # shellcheck disable=SC2086
  set -- $l
  ip -n "$1" link set "$2" up
done
# Default routes: Chromium gathers no candidates without one.
ip -n "$A" route add default via 198.18.1.1
ip -n "$B" route add default via 198.18.2.1

# The slow link: on rtcam's side of the slow viewer's veth, a token bucket of 600 kbit/s
# with about 100 ms of queue, and 2 % of the UDP packets dropped at random.
shape_on() {
  ip netns exec "$S" tc qdisc replace dev vs-slow root tbf rate 600kbit burst 6kb latency 100ms
  ip netns exec "$S" nft -f - <<'EOF'
table inet rtnet {
  chain out {
    type filter hook postrouting priority 0;
    oifname "vs-slow" meta l4proto udp numgen random mod 100 < 2 counter drop
  }
}
EOF
}
shape_off() {
  ip netns exec "$S" tc qdisc del dev vs-slow root 2>/dev/null || true
  ip netns exec "$S" nft delete table inet rtnet 2>/dev/null || true
}
# The bottleneck's counters (sent, dropped by the queue, dropped by the loss rule).
shape_counters() {
  ip netns exec "$S" tc -s qdisc show dev vs-slow | tr -s ' \n' ' '
  ip netns exec "$S" nft list table inet rtnet 2>/dev/null | grep -o 'counter packets [0-9]* bytes [0-9]*' \
    | sed 's/^/loss rule: /' || echo "loss rule: off"
}

# Adds `ms  line` stamps (Unix seconds with µs) to rtcam's log lines.
stamp() { while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
now_ms() { date +%s%3N; }

# start_viewer NS CLIENT SECONDS OUTFILE: runs in the background; its pid is in $!.
start_viewer() {
  local ns=$1 client=$2 seconds=$3 file=$4
  if [ "$client" = rtcam-client ]; then
    ip netns exec "$ns" "$bin_dir/rtcam-client" "$URL/whep" --seconds "$seconds" --timeline \
      >"$file" 2>"${file%.json}.err" &
  else
    ip netns exec "$ns" node tests/browser/net-viewer.mjs "$URL/" --seconds "$seconds" \
      >"$file" 2>"${file%.json}.err" &
  fi
}

run_no=0
run_one() {
  local scenario=$1 client=$2
  run_no=$((run_no + 1))
  local name
  name=$(printf '%d-%s-%s' "$run_no" "$scenario" "$client")
  local d=$out/runs/$name
  mkdir -p "$d/state"
  log "run $name"
  local notes=() load_before lift=null
  load_before=$(loadavg)
  shape_off
  shape_on
  : >"$d/rtcam.toml"
  # rtcam, as it runs on a device, in its namespace; its state (the control token) in the run.
  ip netns exec "$S" env RUST_LOG=rtcam=debug STATE_DIRECTORY="$d/state" "$bin_dir/rtcam" \
    --config "$d/rtcam.toml" --source test --size 1280x720 --fps 30 --bitrate 1500 \
    --listen $CAM:8080 --rtc-port 8555 >"$d/rtcam.out" 2> >(stamp >"$d/rtcam.log") &
  local rtcam_pid=$!
  local up=0
  for _ in $(seq 100); do
    if ip netns exec "$S" curl -fsS -m 1 "$URL/healthz" >/dev/null 2>&1; then up=1; break; fi
    kill -0 $rtcam_pid 2>/dev/null || break
    sleep 0.2
  done
  ip netns exec "$S" python3 tests/net/netcheck.py poll "$URL/api/status" "$d/status.jsonl" "$d/stop" &
  local poll_pid=$!
  local viewers=() vpids=()
  if [ $up = 0 ]; then
    notes+=("rtcam did not come up (see rtcam.log)")
  elif ! ip netns exec "$A" curl -fsS -m 5 "$URL/healthz" >/dev/null \
      || ! ip netns exec "$B" curl -fsS -m 5 "$URL/healthz" >/dev/null; then
    notes+=("a viewer namespace cannot reach rtcam")
  else
    case "$scenario" in
      slow)
        start_viewer "$A" "$client" 35 "$d/slow.json"; vpids+=($!)
        viewers+=('{"name": "slow", "label": "viewer 1", "link": "600 kbit/s, 2 % loss", "file": "slow.json", "seconds": 35}')
        ;;
      mixed)
        # The slow viewer first (so it is "viewer 1" in /api/status), the fast one once it is
        # connected; the slow one watches on to the end of the fast one's run.
        start_viewer "$A" "$client" 40 "$d/slow.json"; vpids+=($!)
        viewers+=('{"name": "slow", "label": "viewer 1", "link": "600 kbit/s, 2 % loss", "file": "slow.json", "seconds": 40}')
        if ip netns exec "$S" python3 tests/net/netcheck.py wait-links "$URL/api/status" 1 30; then
          start_viewer "$B" "$client" 35 "$d/fast.json"; vpids+=($!)
        else
          notes+=("the slow viewer never connected; the fast one was not started")
          echo '{"error": "not started: the slow viewer never connected"}' >"$d/fast.json"
        fi
        viewers+=('{"name": "fast", "label": "viewer 2", "link": "unlimited", "file": "fast.json", "seconds": 35}')
        ;;
      recovery)
        start_viewer "$A" "$client" 55 "$d/slow.json"; vpids+=($!)
        viewers+=('{"name": "slow", "label": "viewer 1", "link": "600 kbit/s, 2 % loss, lifted after 20 s", "file": "slow.json", "seconds": 55}')
        if ip netns exec "$S" python3 tests/net/netcheck.py wait-links "$URL/api/status" 1 30; then
          sleep 20
          shape_counters >"$d/bottleneck.txt"
          shape_off
          lift=$(now_ms)
          echo "lifted at $lift" >>"$d/bottleneck.txt"
        else
          notes+=("the viewer never connected; nothing was lifted")
        fi
        ;;
    esac
    for p in "${vpids[@]}"; do wait "$p" || notes+=("a viewer exited with status $? (see its .err)"); done
  fi
  [ "$scenario" = recovery ] || shape_counters >"$d/bottleneck.txt"
  touch "$d/stop"
  wait $poll_pid || true
  if kill -0 $rtcam_pid 2>/dev/null; then
    kill -TERM $rtcam_pid
    local rc=0
    for _ in $(seq 50); do kill -0 $rtcam_pid 2>/dev/null || break; sleep 0.2; done
    if kill -0 $rtcam_pid 2>/dev/null; then
      kill -9 $rtcam_pid; notes+=("rtcam did not stop on SIGTERM within 10 s")
    fi
    wait $rtcam_pid || rc=$?
    [ $rc = 0 ] || notes+=("rtcam exited with status $rc")
  else
    wait $rtcam_pid || true
    notes+=("rtcam had exited before the end of the run")
  fi
  shape_off
  local notes_json="" v_json=""
  for n in "${notes[@]+"${notes[@]}"}"; do notes_json+="${notes_json:+, }$(printf '%s' "$n" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"; done
  for v in "${viewers[@]+"${viewers[@]}"}"; do v_json+="${v_json:+, }$v"; done
  cat >"$d/meta.json" <<EOF
{"run": "$name", "scenario": "$scenario", "client": "$client", "viewers": [$v_json],
 "lift_unix_ms": $lift, "loadavg": ["$load_before", "$(loadavg)"], "notes": [$notes_json]}
EOF
  printf 'net: %s: bottleneck: %s\n' "$name" "$(tr '\n' ' ' <"$d/bottleneck.txt")"
}

started=$(date +%s)
expected=0
for scenario in "${scenarios[@]}"; do
  for client in "${clients[@]}"; do
    expected=$((expected + 1))
    run_one "$scenario" "$client"
  done
done

log "results ($(( $(date +%s) - started )) s of runs)"
NETCHECK_EXPECT_RUNS=$expected python3 tests/net/netcheck.py evaluate "$out/runs"
