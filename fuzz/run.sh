#!/usr/bin/env bash
# Fuzzes rtcam's parsers with AFL++ (afl.rs, on the stable toolchain) for a bounded time each,
# starting from the committed corpus, and fails if any target crashed or hung: each such input
# is printed with what rtcam made of it.
#
#   fuzz/run.sh [SECONDS_PER_TARGET [TARGET...]]     (default: 45 s, every target)
#
# Installs cargo-afl (and with it AFL++) when missing. Findings stay in fuzz/target/afl/.
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-45}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(http_head whep_offer control_message convert config)
fi

# The version the `afl` dependency in fuzz/Cargo.toml is pinned to: the two must match.
afl_version=0.18.2
if ! cargo afl --version 2>/dev/null | grep -q "^cargo-afl $afl_version "; then
  cargo install --locked --version "$afl_version" cargo-afl
fi
# cargo-afl's install builds AFL++; `config --build` only says so when it already exists.
if ! built=$(cargo afl config --build 2>&1) && ! grep -q "already built" <<<"$built"; then
  printf '%s\n' "$built" >&2
  exit 1
fi

# With an explicit --target, cargo-afl's flags (instrumentation, opt-level 3, one codegen unit)
# reach only the code that runs in the targets, not the build scripts and proc macros, which
# then build as in any release build.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo afl build --release --locked --quiet --target "$host"
bin="${CARGO_TARGET_DIR:-target}/$host/release"

export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1
# A core_pattern that pipes to a crash handler (systemd-coredump, apport) delays crash reports;
# afl-fuzz refuses to start with one unless told it may.
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# Anything found ends the run at once: the inputs are in the output directory either way.
export AFL_BENCH_UNTIL_CRASH=1

fuzz_one() {
  local target=$1 out=target/afl/$1
  rm -rf "$out"
  mkdir -p "$out"
  # -t: a run over 2 s is a hang (a normal one takes well under a millisecond, an offer a few).
  cargo afl fuzz -i "corpus/$target" -o "$out" -V "$seconds" -t 2000 \
    -- "$bin/$target" >"$out/log" 2>&1 || {
    echo "$target: afl-fuzz failed:" >&2
    tail -n 30 "$out/log" >&2
    return 1
  }
}

# One fuzzer per core.
cores=$(nproc)
failed=0
pids=()
for target in "${targets[@]}"; do
  fuzz_one "$target" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$cores" ]; then
    wait "${pids[0]}" || failed=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done

stat() { sed -n "s/^$2 *: //p" "target/afl/$1/default/fuzzer_stats" 2>/dev/null; }
for target in "${targets[@]}"; do
  printf '%-16s %10s execs  %8s/s  corpus %5s  edges %s  crashes %s  hangs %s\n' "$target" \
    "$(stat "$target" execs_done)" "$(stat "$target" execs_per_sec)" \
    "$(stat "$target" corpus_count)" "$(stat "$target" edges_found)" \
    "$(stat "$target" saved_crashes)" "$(stat "$target" saved_hangs)"
  for kind in crashes hangs; do
    for input in "target/afl/$target/default/$kind"/id:*; do
      [ -e "$input" ] || continue
      failed=1
      echo "== $target: $kind: $input" >&2
      od -A d -c "$input" | head -n 40 >&2
      echo "-- what the target does with it:" >&2
      RUST_BACKTRACE=0 timeout 10 "$bin/$target" <"$input" 2>&1 | head -n 20 >&2 || true
    done
  done
done
exit "$failed"
