#!/usr/bin/env python3
"""Checks of tests/net/nat.sh on a viewer's JSON; prints what it measured, exits 1 on a failure.

  natcheck.py chromium RUN FILE relay|direct|tcp|rtcam-relay
  natcheck.py restart RUN FILE CHANGED_UNIX_MS
  natcheck.py page-restart RUN FILE CHANGED_UNIX_MS
  natcheck.py client RUN FILE
  natcheck.py relay RUN RTCAM_LOG ALLOCATIONS
"""
import json
import re
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def chromium(run, v, want):
    problems = []
    if v.get("error"):
        problems.append("viewer error: " + str(v["error"])[:300])
    frames = v.get("frames") or []
    end = frames[-1][0] if frames else 0
    last = [f for f in frames if f[0] >= end - 10000]
    fps = (last[-1][1] - last[0][1]) / 10 if len(last) > 1 else 0
    pair = v.get("pair") or {}
    trickle = "trickle" if v.get("trickle", True) else "no trickle"
    print(f"{run}: {fps:.1f} fps over the last 10 s, pair {pair}, "
          f"{v.get('patches')} PATCHes answered 204, ICE servers {v.get('ice_servers')}; "
          f"first frame {v.get('first_frame_ms')} ms after the page's start ({trickle})")
    if fps < 10:
        problems.append(f"{fps:.1f} fps decoded over the last 10 s (want >= 10)")
    relayed = "relay" in (pair.get("local"), pair.get("remote"))
    if want == "tcp":
        if pair.get("protocol") != "tcp" or relayed:
            problems.append(f"selected pair {pair}: want a direct TCP one (ICE-TCP)")
    if want == "relay" and not relayed:
        problems.append(f"selected pair {pair} is not relayed")
    # Through rtcam's relay only: the viewer's side of the pair is not a relay of its own.
    if want == "rtcam-relay" and (pair.get("remote") != "relay" or pair.get("local") == "relay"):
        problems.append(f"selected pair {pair}: want rtcam's relay as the remote candidate")
    if want == "direct":
        if not pair or relayed:
            problems.append(f"selected pair {pair}: want a direct one")
        if not v.get("patches"):
            problems.append("no candidate was trickled")
    return problems


def restart(run, v, changed_unix_ms):
    problems = []
    if v.get("error"):
        problems.append("client error: " + v["error"])
    restarts = v.get("ice_restarts_ms") or []
    if v.get("ice_restart_errors"):
        problems.append(f"restart errors: {v['ice_restart_errors']}")
    if not restarts:
        problems.append("no ICE restart")
    change_ms = changed_unix_ms - v.get("start_unix_ms", 0)
    timeline = (v.get("timeline") or {}).get("frames") or []
    # Frames still in flight to the old address may land just after the change; what counts
    # is the first one after the restart, which only the new path can bring.
    restarted = restarts[0] if restarts else change_ms
    arrivals = [f[0] for f in timeline if f[0] > max(change_ms, restarted)]
    resumed = round(arrivals[0] - change_ms) if arrivals else None
    print(f"{run}: address changed at {change_ms} ms, ICE restarted at {restarts} ms, "
          f"first frame after the restart {resumed} ms after the change, "
          f"{len(arrivals)} frames after it")
    if resumed is None or resumed > 3000:
        problems.append(f"frames came back {resumed} ms after the change (want <= 3000)")
    if len(arrivals) < 60:
        problems.append(f"only {len(arrivals)} frames after the change")
    return problems


def page_restart(run, v, changed):
    """rtcam's page (tests/browser/net-restart.mjs) across an address change: one session, an
    ICE restart on it, and frames again within 3 s of the change."""
    problems = []
    if v.get("error"):
        problems.append("page error: " + str(v["error"])[:300])
    frames = v.get("frames") or []
    samples = v.get("samples") or []
    before = [t for t in frames if changed - 3000 <= t < changed]
    sessions = sorted({s[1] for s in samples})
    restarted = [s[0] for s in samples if s[0] >= changed and s[2] >= 1]
    restart_at = restarted[0] if restarted else None
    # Frames in flight on the old path may land just after the change; what counts is the
    # first one after the restart, which only the new path can bring.
    after = [t for t in frames if t > max(changed, restart_at or changed)]
    resumed = after[0] - changed if after and restart_at else None
    print(f"{run}: {len(before)} frames in the 3 s before the change; sessions {sessions}; "
          f"ICE restart seen {None if restart_at is None else restart_at - changed} ms after the "
          f"change; first frame after it {resumed} ms after the change; {len(after)} frames after")
    if len(before) < 30:
        problems.append(f"only {len(before)} frames in the 3 s before the change: not playing")
    if len(sessions) != 1:
        problems.append(f"sessions {sessions}: the page fell back to a new session (a new POST)")
    if restart_at is None:
        problems.append("no ICE restart on the session")
    if resumed is None or resumed > 3000:
        problems.append(f"frames came back {resumed} ms after the change (want <= 3000)")
    if len(after) < 60:
        problems.append(f"only {len(after)} frames after the change")
    return problems


def client(run, v):
    problems = []
    if v.get("error"):
        problems.append("client error: " + v["error"])
    decoded = v.get("decoded", 0)
    print(f"{run}: rtcam-client decoded {decoded} pictures in 15 s, "
          f"first frame after {v.get('first_frame_ms')} ms")
    if decoded < 150:
        problems.append(f"rtcam-client decoded {decoded} pictures in 15 s (want >= 150)")
    return problems


def relay(run, path, want):
    """rtcam's log: its TURN allocations (`want` of them), str0m's nominated path from one."""
    with open(path, errors="replace") as f:
        text = f.read()
    relayed = set(re.findall(r"TURN: \S+ relays for us at (\S+) for", text))
    sends = re.findall(r"ICE nominated send from: (\S+) to: (\S+) ", text)
    print(f"{run}: rtcam's relayed addresses {sorted(relayed)}, nominated paths {sends}")
    if len(relayed) < want:
        return [f"rtcam allocated {len(relayed)} relayed addresses (want {want})"]
    if not sends:
        return ["no nominated path in rtcam's log"]
    direct = [s for s in sends if s[0] not in relayed]
    if direct:
        return [f"nominated paths {direct} do not leave from rtcam's relays"]
    return []


def main():
    kind, run, path = sys.argv[1:4]
    if kind == "relay":
        problems = relay(run, path, int(sys.argv[4]))
        for p in problems:
            print(f"{run}: {p}")
        return 1 if problems else 0
    try:
        v = load(path)
    except Exception as e:  # noqa: BLE001 - any unreadable result is a failure to report
        print(f"{run}: no result ({e})")
        return 1
    if kind == "chromium":
        problems = chromium(run, v, sys.argv[4])
    elif kind == "client":
        problems = client(run, v)
    elif kind == "page-restart":
        problems = page_restart(run, v, int(sys.argv[4]))
    else:
        problems = restart(run, v, int(sys.argv[4]))
    for p in problems:
        print(f"{run}: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
