#!/usr/bin/env bash
# Watching from outside the home network: rtcam behind a NAT router, a real coturn on the
# "internet", viewers behind NATs of their own, all in network namespaces.
#
#   bash tests/net/nat.sh [BIN_DIR]
#
# BIN_DIR: rtcam and rtcam-client (--features client), e.g. the VM harness's static build in
# target/x86_64-unknown-linux-gnu/vm; without it they are built as tests/net/run.sh builds them.
#
# Topology (198.18.0.0/15 for the "internet", 10.x behind the NATs):
#   cam 10.10.1.2 -- r1 [masquerade; only TCP 8080 forwarded] 198.18.101.2 --+
#                                                                               pub: coturn on
#   viewer 10.20.1.2 -- r2 [masquerade, or fully-random] 198.18.102.2 ---------+ 198.18.100.1
#   mover 198.18.110.2 -- cam's second link 198.18.110.1 (no NAT; its address changes)
# Runs, each a check that fails the script:
#   turn     r2 symmetric (fully-random): no direct path. rtcam has STUN and a TURN server with
#            a REST secret, which viewers get through the WHEP Link headers. Chromium plays
#            through a relay: >= 10 fps decoded over its last 10 s, the selected pair is relay;
#            then again without trickle (all candidates in the offer), which plays the same
#            way. Both print their time to first frame.
#   relay    r2 symmetric, and the viewers (Chromium told to leave TURN out, then
#            rtcam-client --trickle) have no TURN server: only rtcam's own allocations can carry
#            the stream, one on the coturn above (REST secret) and one on a second coturn
#            (198.18.100.2, a long-term user). Both allocate; Chromium plays >= 10 fps on a
#            pair whose remote candidate is rtcam's relay, rtcam-client decodes >= 150 pictures
#            in 15 s, and every path rtcam nominates leaves from one of its relayed addresses.
#   relay-tcp  the camera's network lets no UDP out (r1 drops it), r2 symmetric, the viewer has
#            no TURN server: rtcam allocates on coturn over TCP (turn:…?transport=tcp), and
#            Chromium plays >= 10 fps on a pair whose remote candidate is that relay.
#   stun     r2 endpoint-independent, STUN only (no TURN anywhere): Chromium trickles its
#            server-reflexive candidate by PATCH and plays, on a pair that is not relayed;
#            rtcam-client --trickle likewise (its public address from the STUN server that
#            rtcam's Link headers name) decodes >= 10 fps.
#   restart  rtcam-client --follow-network watches from "mover"; 8 s in, its address changes
#            (a network switch); it restarts ICE by PATCH (no new POST) and frames come again
#            within 3 s of the change.
#   tcp      the mover's network drops all UDP: Chromium plays over ICE-TCP, connecting to
#            rtcam's passive TCP candidate on the media port (no TURN anywhere).
#   page-restart  the same with rtcam's own page in Chromium (tests/browser/net-restart.mjs),
#            the new address up just before the old one goes (a phone's mobile data is up when
#            its Wi-Fi drops): one session throughout, an ICE restart on it, frames again within
#            3 s of the change.
# Results in target/net/nat/: per run rtcam's log, the viewer's JSON, coturn's log. Exits
# non-zero on any failed check; a run that cannot start fails too. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
bin_dir=${1:-}

log() { printf '\n==> nat: %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "nat: needs root (network namespaces, nft)"; exit 1; }

log "packages"
export DEBIAN_FRONTEND=noninteractive
need=()
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
command -v turnserver >/dev/null || need+=(coturn)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The package may start a system-wide coturn; this test runs its own in a namespace.
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
  systemctl disable --now coturn >/dev/null 2>&1 || true
fi
(cd tests/browser && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --loglevel=error; })

if [ -z "$bin_dir" ]; then
  log "rtcam and rtcam-client (the VM harness's static build)"
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --locked --profile vm --target x86_64-unknown-linux-gnu --features client --bins
  bin_dir=$root/target/x86_64-unknown-linux-gnu/vm
fi
bin_dir=$(cd "$bin_dir" && pwd)
"$bin_dir/rtcam-client" --help | grep -q -- --follow-network \
  || { echo "nat: $bin_dir/rtcam-client has no --follow-network (an older build?)"; exit 1; }

out=$root/target/net/nat
rm -rf "$out"
mkdir -p "$out"

tag=rtnat$$
PUB=$tag-pub R1=$tag-r1 CAM=$tag-cam R2=$tag-r2 VIEW=$tag-view MOVER=$tag-mover
ALL=("$VIEW" "$MOVER" "$CAM" "$R2" "$R1" "$PUB")
TURN_IP=198.18.100.1
URL=http://198.18.101.2:8080
SECRET=nat-test-secret-$$

cleanup() {
  set +e
  for ns in "${ALL[@]}"; do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill $pids 2>/dev/null
  done
  sleep 1
  for ns in "${ALL[@]}"; do
    ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    ip netns del "$ns"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# link NS1 IF1 ADDR1 NS2 IF2 ADDR2: a veth pair, both ends up.
link() {
  ip link add name "$2" netns "$1" type veth peer name "$5" netns "$4"
  ip -n "$1" addr add "$3" dev "$2"
  ip -n "$4" addr add "$6" dev "$5"
  ip -n "$1" link set "$2" up
  ip -n "$4" link set "$5" up
}

log "namespaces"
for ns in "${ALL[@]}"; do
  ip netns add "$ns"
  ip -n "$ns" link set lo up
done
ip -n "$PUB" addr add $TURN_IP/32 dev lo
link "$R1" out 198.18.101.2/24 "$PUB" r1 198.18.101.1/24
link "$R2" out 198.18.102.2/24 "$PUB" r2 198.18.102.1/24
link "$CAM" eth0 10.10.1.2/24 "$R1" in 10.10.1.1/24
link "$VIEW" eth0 10.20.1.2/24 "$R2" in 10.20.1.1/24
link "$CAM" mv 198.18.110.1/24 "$MOVER" eth0 198.18.110.2/24
# The internet's default route goes nowhere: coturn tears an allocation down when a send to an
# unroutable (private) candidate fails, rather than dropping that one packet. A veth whose
# other end nobody reads, and a gateway with a fixed MAC, take such packets without an error
# (no dummy interface: that needs a kernel module).
ip -n "$PUB" link add void type veth peer name void-end
ip -n "$PUB" addr add 198.18.199.1/24 dev void
ip -n "$PUB" link set void up
ip -n "$PUB" link set void-end up
ip -n "$PUB" neigh add 198.18.199.2 lladdr 02:00:00:00:00:01 dev void nud permanent
ip -n "$PUB" route add default via 198.18.199.2 dev void
for r in "$R1" "$R2" "$PUB"; do ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1; done
ip -n "$R1" route add default via 198.18.101.1
ip -n "$R2" route add default via 198.18.102.1
ip -n "$CAM" route add default via 10.10.1.1
ip -n "$VIEW" route add default via 10.20.1.1
ip -n "$MOVER" route add default via 198.18.110.1
# Like every home router's firewall, both drop what the WAN sends to the router itself.
# Without that, a viewer's check that arrives before rtcam's first one to it leaves a conntrack
# entry on r1 for which rtcam's own flow then gets another public port (and no viewer reaches
# that one): a hole-punching failure of this test rig, not of the NAT type it stands for.
for r in "$R1" "$R2"; do
  ip netns exec "$r" nft -f - <<'EOF'
table inet fw {
  chain input { type filter hook input priority 0; iifname "out" drop; }
}
EOF
done
ip netns exec "$R1" nft -f - <<'EOF'
table ip nat {
  chain pre { type nat hook prerouting priority -100; iifname "out" tcp dport 8080 dnat to 10.10.1.2:8080; }
  chain post { type nat hook postrouting priority 100; oifname "out" masquerade; }
}
EOF
# r2's NAT: endpoint-independent (masquerade keeps the port for every destination) or
# symmetric (fully-random: a new port for every destination).
r2_nat() {
  ip netns exec "$R2" nft delete table ip nat 2>/dev/null || true
  ip netns exec "$R2" nft -f - <<EOF
table ip nat {
  chain post { type nat hook postrouting priority 100; oifname "out" masquerade $1; }
}
EOF
}

# start_coturn IP DIR CREDENTIAL_LINE...: a coturn on IP (STUN and TURN on UDP and TCP 3478),
# its config, log and output in DIR, with the credential lines given (a REST secret, or
# users); its pid in $coturn_pid. Fails when it does not listen within 10 s.
start_coturn() {
  local ip=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  {
    cat <<EOF
listening-ip=$ip
relay-ip=$ip
listening-port=3478
min-port=49152
max-port=49999
realm=rtcam.test
fingerprint
no-cli
no-tls
no-dtls
no-multicast-peers
simple-log
log-file=$dir/turnserver-$ip.log
pidfile=$dir/turnserver-$ip.pid
EOF
    printf '%s\n' "$@"
  } >"$dir/turnserver-$ip.conf"
  ip netns exec "$PUB" turnserver -c "$dir/turnserver-$ip.conf" >"$dir/turnserver-$ip.out" 2>&1 &
  coturn_pid=$!
  for _ in $(seq 50); do
    ip netns exec "$PUB" ss -lun 2>/dev/null | grep -q "$ip:3478" && return 0
    sleep 0.2
  done
  echo "nat: coturn on $ip did not start"
  cat "$dir/turnserver-$ip.out"
  return 1
}

log "coturn on $TURN_IP (STUN and TURN, REST secret)"
start_coturn $TURN_IP "$out" use-auth-secret "static-auth-secret=$SECRET" || exit 1
turn_pid=$coturn_pid

failures=()
fail() { failures+=("$1"); echo "nat: FAIL: $1"; }

# start_rtcam RUN TOML: rtcam in the camera's namespace, as on a device behind a home router.
start_rtcam() {
  local d=$out/$1
  mkdir -p "$d/state"
  printf '%s\n' "$2" >"$d/rtcam.toml"
  ip netns exec "$CAM" env RUST_LOG="${NAT_RUST_LOG:-rtcam=debug}" STATE_DIRECTORY="$d/state" "$bin_dir/rtcam" \
    --config "$d/rtcam.toml" --source test --size 640x360 --fps 30 --bitrate 800 \
    --listen 0.0.0.0:8080 --rtc-port 8555 >"$d/rtcam.out" 2>"$d/rtcam.log" &
  rtcam_pid=$!
  for _ in $(seq 100); do
    ip netns exec "$VIEW" curl -fsS -m 1 "$URL/healthz" >/dev/null 2>&1 && return 0
    kill -0 $rtcam_pid 2>/dev/null || break
    sleep 0.2
  done
  fail "$1: rtcam did not answer through its router (see $d/rtcam.log)"
  return 1
}
stop_rtcam() {
  kill -TERM $rtcam_pid 2>/dev/null || true
  wait $rtcam_pid 2>/dev/null || true
}

run_turn() {
  log "run turn: viewer behind a symmetric NAT, TURN relay"
  r2_nat fully-random
  start_rtcam turn "[ice]
stun = [\"stun:$TURN_IP:3478\"]
[[ice.turn]]
url = \"turn:$TURN_IP:3478?transport=udp\"
secret = \"$SECRET\"" || return 0
  ip netns exec "$VIEW" node tests/browser/net-viewer.mjs "$URL/" --seconds 20 \
    >"$out/turn/chromium.json" 2>"$out/turn/chromium.err" || true
  ip netns exec "$VIEW" node tests/browser/net-viewer.mjs "$URL/" --seconds 12 --no-trickle \
    >"$out/turn/chromium-no-trickle.json" 2>"$out/turn/chromium-no-trickle.err" || true
  stop_rtcam
  python3 tests/net/natcheck.py chromium turn "$out/turn/chromium.json" relay \
    || fail "turn: chromium"
  python3 tests/net/natcheck.py chromium turn "$out/turn/chromium-no-trickle.json" relay \
    || fail "turn: chromium without trickle"
}

run_relay_tcp() {
  log "run relay-tcp: the camera's network lets no UDP out; rtcam's relay over TCP"
  r2_nat fully-random
  ip netns exec "$R1" nft -f - <<'NFT'
table inet no_udp {
  chain block { type filter hook forward priority 0; meta l4proto udp drop; }
}
NFT
  NAT_RUST_LOG="${NAT_RUST_LOG:-rtcam=debug,str0m=debug}" start_rtcam relay-tcp "[ice]
[[ice.turn]]
url = \"turn:$TURN_IP:3478?transport=tcp\"
secret = \"$SECRET\"" || { ip netns exec "$R1" nft delete table inet no_udp; return 0; }
  ip netns exec "$VIEW" node tests/browser/net-viewer.mjs "$URL/" --seconds 15 --no-turn \
    >"$out/relay-tcp/chromium.json" 2>"$out/relay-tcp/chromium.err" || true
  stop_rtcam
  ip netns exec "$R1" nft delete table inet no_udp
  python3 tests/net/natcheck.py chromium relay-tcp "$out/relay-tcp/chromium.json" rtcam-relay \
    || fail "relay-tcp: chromium"
  grep -q "TURN over TCP: connected to $TURN_IP:3478" "$out/relay-tcp/rtcam.log" \
    || fail "relay-tcp: rtcam did not reach coturn over TCP"
  python3 tests/net/natcheck.py relay relay-tcp "$out/relay-tcp/rtcam.log" 1 \
    || fail "relay-tcp: the stream did not go through rtcam's relay"
}

run_relay() {
  log "run relay: viewer behind a symmetric NAT without TURN, rtcam's own relays"
  r2_nat fully-random
  # A second coturn with a long-term user (coturn takes either a REST secret or users, not
  # both): rtcam allocates on both, one with each kind of credentials.
  local lt_ip=198.18.100.2 lt_pass=cam-pass-$$
  ip -n "$PUB" addr add $lt_ip/32 dev lo 2>/dev/null || true
  start_coturn $lt_ip "$out/relay" lt-cred-mech "user=cam:$lt_pass" \
    || { fail "relay: the second coturn did not start"; return 0; }
  local lt_pid=$coturn_pid
  # str0m's debug log names the nominated path (natcheck.py relay reads it).
  NAT_RUST_LOG="${NAT_RUST_LOG:-rtcam=debug,str0m=debug}" start_rtcam relay "[ice]
stun = [\"stun:$TURN_IP:3478\"]
[[ice.turn]]
url = \"turn:$TURN_IP:3478?transport=udp\"
secret = \"$SECRET\"
[[ice.turn]]
url = \"turn:$lt_ip:3478\"
username = \"cam\"
credential = \"$lt_pass\"" || { kill $lt_pid 2>/dev/null; return 0; }
  # Neither viewer uses a TURN server of its own (Chromium is told to leave the Link headers'
  # out; rtcam-client takes none): their public addresses (STUN, trickled) are what rtcam's
  # relays need permissions for.
  ip netns exec "$VIEW" node tests/browser/net-viewer.mjs "$URL/" --seconds 20 --no-turn \
    >"$out/relay/chromium.json" 2>"$out/relay/chromium.err" || true
  ip netns exec "$VIEW" "$bin_dir/rtcam-client" "$URL/whep" --seconds 15 --trickle \
    >"$out/relay/client.json" 2>"$out/relay/client.err" || true
  stop_rtcam
  kill $lt_pid 2>/dev/null || true
  python3 tests/net/natcheck.py chromium relay "$out/relay/chromium.json" rtcam-relay \
    || fail "relay: chromium"
  python3 tests/net/natcheck.py client relay "$out/relay/client.json" || fail "relay: rtcam-client"
  python3 tests/net/natcheck.py relay relay "$out/relay/rtcam.log" 2 \
    || fail "relay: the stream did not go through rtcam's relays"
}

run_stun() {
  log "run stun: both NATs endpoint-independent, STUN only"
  r2_nat ""
  start_rtcam stun "[ice]
stun = [\"stun:$TURN_IP:3478\"]" || return 0
  ip netns exec "$VIEW" node tests/browser/net-viewer.mjs "$URL/" --seconds 20 \
    >"$out/stun/chromium.json" 2>"$out/stun/chromium.err" || true
  # The in-repo client: its public address from the STUN server rtcam names, trickled.
  ip netns exec "$VIEW" "$bin_dir/rtcam-client" "$URL/whep" --seconds 15 --trickle \
    >"$out/stun/client.json" 2>"$out/stun/client.err" || true
  stop_rtcam
  python3 tests/net/natcheck.py client stun "$out/stun/client.json" || fail "stun: rtcam-client"
  python3 tests/net/natcheck.py chromium stun "$out/stun/chromium.json" direct \
    || fail "stun: chromium"
  grep -q "typ srflx" "$out/stun/rtcam.log" || grep -q "STUN: .* maps" "$out/stun/rtcam.log" \
    || fail "stun: rtcam never learned its public address"
}

run_restart() {
  log "run restart: the viewer's address changes mid-stream"
  r2_nat "" # for start_rtcam's check from the viewer's side
  start_rtcam restart "" || return 0
  local d=$out/restart
  ip netns exec "$MOVER" "$bin_dir/rtcam-client" http://198.18.110.1:8080/whep --seconds 16 \
    --timeline --follow-network >"$d/client.json" 2>"$d/client.err" &
  local client=$!
  sleep 8
  local changed
  changed=$(date +%s%3N)
  move_viewer 198.18.110.2 198.18.110.3
  wait $client || true
  move_viewer 198.18.110.3 198.18.110.2
  stop_rtcam
  python3 tests/net/natcheck.py restart restart "$d/client.json" "$changed" \
    || fail "restart: rtcam-client"
  [ "$(grep -c 'answered' "$d/rtcam.log")" = 1 ] || fail "restart: the viewer posted a new offer"
}

# move_viewer OLD NEW [--make-before-break]: the mover's address changes, as a phone's does when
# it switches networks: the old one goes first, or (as when mobile data is already up when
# Wi-Fi goes) the new one comes first.
move_viewer() {
  if [ "${3:-}" = --make-before-break ]; then
    # Else deleting the primary address takes the new (secondary) one with it.
    ip netns exec "$MOVER" sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1
    ip -n "$MOVER" addr add "$2/24" dev eth0
    ip -n "$MOVER" addr del "$1/24" dev eth0
  else
    ip -n "$MOVER" addr del "$1/24" dev eth0
    ip -n "$MOVER" addr add "$2/24" dev eth0
  fi
  ip -n "$MOVER" route replace default via 198.18.110.1
}

run_page_restart() {
  log "run page-restart: rtcam's page in Chromium, its address changes mid-stream"
  r2_nat ""
  start_rtcam page-restart "" || return 0
  local d=$out/page-restart
  ip netns exec "$MOVER" node tests/browser/net-restart.mjs http://198.18.110.1:8080/ --seconds 20 \
    >"$d/chromium.json" 2>"$d/chromium.err" &
  local viewer=$!
  # Chromium takes a few seconds to start and play under load; the check wants 3 s of frames
  # before the change.
  sleep 12
  local changed
  changed=$(date +%s%3N)
  move_viewer 198.18.110.2 198.18.110.3 --make-before-break
  wait $viewer || true
  move_viewer 198.18.110.3 198.18.110.2
  stop_rtcam
  python3 tests/net/natcheck.py page-restart page-restart "$d/chromium.json" "$changed" \
    || fail "page-restart: chromium"
  [ "$(grep -c 'answered' "$d/rtcam.log")" = 1 ] || fail "page-restart: the page posted a new offer"
}

run_tcp() {
  log "run tcp: the viewer's network lets no UDP through"
  r2_nat "" # for start_rtcam's check from the viewer's side
  start_rtcam tcp "" || return 0
  local d=$out/tcp
  ip netns exec "$MOVER" nft -f - <<'NFT'
table inet no_udp {
  chain out { type filter hook output priority 0; meta l4proto udp drop; }
  chain in { type filter hook input priority 0; meta l4proto udp drop; }
}
NFT
  ip netns exec "$MOVER" node tests/browser/net-viewer.mjs http://198.18.110.1:8080/ --seconds 15 \
    >"$d/chromium.json" 2>"$d/chromium.err" || true
  ip netns exec "$MOVER" nft delete table inet no_udp
  stop_rtcam
  python3 tests/net/natcheck.py chromium tcp "$d/chromium.json" tcp || fail "tcp: chromium"
}

# NAT_RUNS (e.g. "stun") picks runs while debugging; CI runs them all.
for run in ${NAT_RUNS:-turn relay relay_tcp stun tcp restart page_restart}; do
  "run_$run"
done
kill $turn_pid 2>/dev/null || true

if [ ${#failures[@]} -gt 0 ]; then
  log "${#failures[@]} check(s) failed"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
log "every check passed"
