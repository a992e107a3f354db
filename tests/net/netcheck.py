#!/usr/bin/env python3
"""Helpers of the network tests (tests/net/run.sh); Python 3 standard library only.

  netcheck.py poll URL OUT STOPFILE         GET URL (rtcam's /api/status) every second, append
                                            {"t": unix ms, "status": …} lines to OUT until
                                            STOPFILE exists
  netcheck.py wait-links URL N TIMEOUT_S    wait until N links of /api/status are connected
  netcheck.py evaluate RUNS_DIR             read every run's data, check the thresholds, print
                                            the summary and the details, write results.json;
                                            exit 1 if any check failed or any number is missing

A run directory holds meta.json (written by run.sh), one JSON file per viewer (rtcam-client
--timeline or tests/browser/net-viewer.mjs), status.jsonl and rtcam.log (rtcam's stderr, each
line prefixed with the Unix time in seconds).
"""

import json
import os
import sys
import time
import urllib.request

# The thresholds (the issue "Keep the picture moving on slow and lossy links").
WINDOW_MS = 15_000          # "over the last 15 s"
SLOW_MIN_FPS = 20.0
SLOW_MAX_GAP_MS = 500.0
MIXED_FAST_MIN_FPS = 25.0
MIXED_FAST_MIN_KBPS = 1000.0
MIXED_SLOW_MIN_FPS = 10.0
MIXED_SLOW_MAX_GAP_MS = 1000.0
RECOVERY_KBPS = 1200.0
RECOVERY_WITHIN_MS = 15_000
# The received rate is averaged over this window when looking for the recovery.
RATE_WINDOW_MS = 2000
# …and must stay there this long to count as recovered (one keyframe's burst does not).
RECOVERY_HOLD_MS = 5000
STEP_MS = 250


# ---- polling ----------------------------------------------------------------------------

def get_json(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def poll(url, out, stopfile):
    with open(out, "a") as f:
        while not os.path.exists(stopfile):
            t = time.time()
            try:
                status = get_json(url)
                f.write(json.dumps({"t": round(t * 1000), "status": status}) + "\n")
            except Exception as e:  # rtcam not up yet, or going away: note it and go on
                f.write(json.dumps({"t": round(t * 1000), "error": str(e)}) + "\n")
            f.flush()
            time.sleep(max(0.0, 1.0 - (time.time() - t)))


def wait_links(url, n, timeout_s):
    end = time.time() + timeout_s
    while time.time() < end:
        try:
            links = get_json(url).get("links", [])
            if sum(1 for l in links if l.get("connected")) >= n:
                return 0
        except Exception:
            pass
        time.sleep(0.2)
    print(f"netcheck: fewer than {n} connected viewers after {timeout_s} s", file=sys.stderr)
    return 1


# ---- one viewer's data ------------------------------------------------------------------

def interp(samples, t):
    """Value of a rising counter at t from (t, value) samples, linear in between."""
    if not samples:
        return None
    if t <= samples[0][0]:
        return samples[0][1]
    if t >= samples[-1][0]:
        return samples[-1][1]
    lo, hi = 0, len(samples) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if samples[mid][0] <= t:
            lo = mid
        else:
            hi = mid
    (t0, v0), (t1, v1) = samples[lo], samples[hi]
    return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)


class Viewer:
    """One viewer's run, the same shape whatever the client: decoded (or presented) frame
    times, cumulative decoded frames and received bytes over time, picture sizes; all times
    in ms since the viewer's WHEP POST."""

    def __init__(self, client, data):
        self.client = client
        self.error = data.get("error")
        self.start_unix_ms = data.get("start_unix_ms")
        self.extra = {}
        if client == "rtcam-client":
            tl = data.get("timeline") or {}
            fields = tl.get("fields", [])
            rows = [dict(zip(fields, r)) for r in tl.get("frames", [])]
            self.end_ms = data.get("watched_ms") or 0
            self.frame_times = [r["t_ms"] for r in rows if r["decoded"]]
            self.decoded = [(0.0, 0)]
            self.bytes = [(0.0, 0)]
            n = b = 0
            for r in rows:
                b += r["bytes"]
                self.bytes.append((r["t_ms"], b))
                if r["decoded"]:
                    n += 1
                    self.decoded.append((r["t_ms"], n))
            self.decoded.append((self.end_ms, n))
            self.bytes.append((self.end_ms, b))
            self.sizes = [(r["t_ms"], r["width"], r["height"]) for r in rows if r["decoded"]]
            self.keyframe_times = [r["t_ms"] for r in rows if r["keyframe"]]
            self.keyframes = None
            self.extra = {k: data.get(k) for k in
                          ("frames", "decoded", "keyframes", "decode_errors", "gaps",
                           "keyframe_requests", "first_frame_ms")}
        else:
            frames = data.get("frames", [])
            stats = data.get("stats", [])
            self.end_ms = stats[-1]["t_ms"] if stats else 0
            self.frame_times = [f[0] for f in frames]
            self.decoded = [(0.0, 0)] + [(s["t_ms"], s.get("framesDecoded", 0)) for s in stats]
            self.bytes = [(0.0, 0)] + [(s["t_ms"], s.get("bytesReceived", 0)) for s in stats]
            self.sizes = [(f[0], f[2], f[3]) for f in frames]
            self.keyframe_times = None
            self.keyframes = [(0.0, 0)] + [(s["t_ms"], s.get("keyFramesDecoded", 0))
                                           for s in stats]
            last = stats[-1] if stats else {}
            self.extra = {k: last.get(k) for k in
                          ("framesDecoded", "framesDropped", "keyFramesDecoded", "packetsLost",
                           "nackCount", "pliCount", "freezeCount", "totalFreezesDuration")}
            self.extra["first_frame_ms"] = frames[0][0] if frames else None
        # Chromium's own freeze statistics (count, total seconds) over time.
        self.freezes = None
        if client == "chromium":
            stats = data.get("stats", [])
            self.freezes = ([(0.0, 0)] + [(s["t_ms"], s.get("freezeCount", 0)) for s in stats],
                            [(0.0, 0)] + [(s["t_ms"], s.get("totalFreezesDuration", 0))
                                          for s in stats])
        self.has_numbers = (not self.error and self.start_unix_ms is not None
                            and len(self.frame_times) > 0 and self.end_ms > 0)

    def fps(self, a, b):
        return (interp(self.decoded, b) - interp(self.decoded, a)) * 1000.0 / (b - a)

    def kbps(self, a, b):
        return (interp(self.bytes, b) - interp(self.bytes, a)) * 8.0 / (b - a)

    def longest_gap(self, a, b):
        """The longest time in [a, b] without a decoded frame (the edges count)."""
        times = [a] + [t for t in self.frame_times if a <= t <= b] + [b]
        return max(t1 - t0 for t0, t1 in zip(times, times[1:]))

    def gaps_at_keyframes(self, a, b, over_ms=200):
        """Gaps between decoded frames longer than over_ms in [a, b], and how many of them
        end with a keyframe (rtcam-client: a keyframe arrived within the gap or is the frame
        that ends it; Chromium: keyFramesDecoded rose within 250 ms of the gap, as far as the
        250 ms getStats samples tell)."""
        times = [t for t in self.frame_times if a <= t <= b]
        gaps = [(t0, t1) for t0, t1 in zip(times, times[1:]) if t1 - t0 > over_ms]
        at_key = 0
        for t0, t1 in gaps:
            if self.keyframe_times is not None:
                hit = any(t0 < k <= t1 + 1 for k in self.keyframe_times)
            else:
                hit = interp(self.keyframes, t1 + 250) - interp(self.keyframes, t0 - 250) >= 0.5
            at_key += hit
        return len(gaps), at_key

    def height_in(self, a, b):
        """The picture heights seen in [a, b], most frequent first."""
        counts = {}
        for t, w, h in self.sizes:
            if a <= t < b:
                counts[f"{w}x{h}"] = counts.get(f"{w}x{h}", 0) + 1
        return sorted(counts, key=lambda k: -counts[k])

    def window(self, a, b):
        w = {
            "fps": round(self.fps(a, b), 1),
            "longest_gap_ms": round(self.longest_gap(a, b)),
            "kbps": round(self.kbps(a, b)),
            "pictures": self.height_in(a, b),
        }
        if self.freezes:
            count, total = self.freezes
            w["chromium_freezes"] = round(interp(count, b) - interp(count, a))
            w["chromium_freeze_ms"] = round((interp(total, b) - interp(total, a)) * 1000)
        return w

    def per_bin(self, bin_ms=5000):
        out = []
        t = 0
        while t < self.end_ms - 500:
            b = min(t + bin_ms, self.end_ms)
            w = self.window(t, b)
            w["from_s"] = round(t / 1000, 1)
            w["to_s"] = round(b / 1000, 1)
            out.append(w)
            t = b
        return out

    def recovery(self, lift_ms):
        """(ms from the lift until the received rate, averaged over RATE_WINDOW_MS, reached
        RECOVERY_KBPS and then held it for RECOVERY_HOLD_MS; ms until it first reached it).
        None where it never did within what was watched."""
        steps = []
        t = lift_ms + STEP_MS
        while t <= self.end_ms:
            steps.append((t, self.kbps(t - RATE_WINDOW_MS, t) >= RECOVERY_KBPS))
            t += STEP_MS
        first = next((t - lift_ms for t, ok in steps if ok), None)
        held = None
        for i, (t, ok) in enumerate(steps):
            if not ok or t + RECOVERY_HOLD_MS > self.end_ms:
                continue
            if all(ok2 for t2, ok2 in steps[i:] if t2 <= t + RECOVERY_HOLD_MS):
                held = t - lift_ms
                break
        return held, first


# ---- status and log ---------------------------------------------------------------------

def load_status(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return [s for s in out if "status" in s]


def link_of(sample, label):
    for l in sample["status"].get("links", []):
        if l.get("label") == label:
            return l
    return None


def brief_link(l):
    if l is None:
        return None
    return {k: l.get(k) for k in ("estimate_kbps", "encoding", "layers", "sent_kbps", "nacks",
                                  "plis", "rtt_ms", "loss")}


def status_at(samples, t_unix_ms, label):
    """The sample nearest to t (and not later than 1 s after it) that lists the viewer."""
    best = None
    for s in samples:
        if s["t"] > t_unix_ms + 1000:
            break
        if link_of(s, label) is not None:
            best = s
    return best


def log_lines(path, t0_unix_ms):
    """rtcam's log lines about encodings, bitrates, viewers and trouble, with their time in s
    since t0."""
    keep = ("encoding", "bitrate", "viewer", "keyframe", "layer", "estimate", "WARN", "ERROR")
    out = []
    if not os.path.exists(path):
        return out
    with open(path, errors="replace") as f:
        for line in f:
            stamp, _, rest = line.rstrip("\n").partition(" ")
            try:
                t = float(stamp) * 1000
            except ValueError:
                continue
            if any(k in rest for k in keep) and "offer:" not in rest and "answer:" not in rest:
                out.append(f"{(t - t0_unix_ms) / 1000:7.2f} s  {rest}")
    return out


# ---- evaluation -------------------------------------------------------------------------

def evaluate_run(d):
    meta = json.load(open(os.path.join(d, "meta.json")))
    status = load_status(os.path.join(d, "status.jsonl"))
    run = {"run": meta["run"], "scenario": meta["scenario"], "client": meta["client"],
           "viewers": [], "checks": [], "notes": meta.get("notes", [])}
    first_start = None
    views = []
    for v in meta["viewers"]:
        path = os.path.join(d, v["file"])
        data = {}
        try:
            with open(path) as f:
                text = f.read().strip().splitlines()
            data = json.loads(text[-1]) if text else {"error": "no output"}
        except (OSError, ValueError) as e:
            data = {"error": f"no usable output in {v['file']}: {e}"}
        view = Viewer(meta["client"], data)
        rec = {"name": v["name"], "label": v["label"], "link": v["link"],
               "ok": view.has_numbers, "error": view.error, "client_counters": view.extra}
        run["viewers"].append(rec)
        if not view.has_numbers:
            rec["error"] = view.error or "no decoded frames or no timing"
            continue
        views.append((v, rec, view))
    # The checked window: the last 15 s that every viewer watched (with two viewers, the last
    # 15 s of the one that joined second and leaves first).
    common_end = min((view.start_unix_ms + min(v["seconds"] * 1000, view.end_ms)
                      for v, _, view in views), default=0)
    for v, rec, view in views:
        first_start = view.start_unix_ms if first_start is None else min(first_start,
                                                                           view.start_unix_ms)
        end = common_end - view.start_unix_ms
        rec["watched_ms"] = round(view.end_ms)
        rec["window_s"] = [round(max(0, end - WINDOW_MS) / 1000, 2), round(end / 1000, 2)]
        rec["last_15s"] = view.window(max(0, end - WINDOW_MS), end)
        rec["bins_5s"] = view.per_bin()
        n, k = view.gaps_at_keyframes(5000, view.end_ms)
        rec["gaps_over_200ms_after_5s"] = {"gaps": n, "ending_with_a_keyframe": k}
        lift = meta.get("lift_unix_ms")
        if lift:
            lift_ms = lift - view.start_unix_ms
            rec["lift_at_s"] = round(lift_ms / 1000, 2)
            rec["before_lift"] = view.window(max(0, lift_ms - WINDOW_MS), lift_ms)
            sustained, first = view.recovery(lift_ms)
            rec["adapt_ms"] = sustained
            rec["first_reach_ms"] = first
            rec["after_lift_observed_ms"] = round(view.end_ms - lift_ms)
        # What /api/status said of the viewer's link: at the end, and every 5 s.
        end_sample = status_at(status, view.start_unix_ms + end - 500, v["label"])
        rec["status_end"] = brief_link(link_of(end_sample, v["label"])) if end_sample else None
        moments = list(range(5, int(view.end_ms / 1000) + 1, 5))
        if lift:
            # Around and after the lift: every 2 s.
            l0 = int(lift_ms / 1000)
            moments = sorted(set([m for m in moments if m < l0 - 2]
                                 + list(range(l0 - 2, int(view.end_ms / 1000) + 1, 2))))
        # The estimate over the checked window, from every status sample.
        est = sorted(l["estimate_kbps"] for l in (
            link_of(x, v["label"]) for x in status
            if view.start_unix_ms + end - WINDOW_MS <= x["t"] <= view.start_unix_ms + end)
            if l and l.get("estimate_kbps") is not None)
        rec["estimate_in_window"] = ({"min": est[0], "median": est[len(est) // 2], "max": est[-1]}
                                     if est else None)
        rec["status_at"] = []
        for m in moments:
            sample = status_at(status, view.start_unix_ms + m * 1000, v["label"])
            if sample:
                rec["status_at"].append({"t_s": m, **brief_link(link_of(sample, v["label"]))})
    # rtcam's own view of the stream at the end.
    if status:
        st = status[-1]["status"]
        run["rtcam_end"] = {k: st.get(k) for k in (
            "fps_measured", "bitrate_kbps", "bitrate_measured_kbps", "frames_encoded",
            "frames_dropped", "frames_skipped", "keyframes", "encode_ms_p50",
            "low_frames_encoded", "low_encode_ms_p50", "cpu_load")}
    run["loadavg"] = meta.get("loadavg")
    # The loss rule drops in the sender's own namespace, so rtcam's send gets EPERM for each
    # dropped packet and logs it at debug: the count is the number of packets the rule dropped.
    try:
        with open(os.path.join(d, "rtcam.log"), errors="replace") as f:
            run["send_errors_eperm"] = sum("Operation not permitted" in line for line in f)
    except OSError:
        run["send_errors_eperm"] = None
    run["log"] = log_lines(os.path.join(d, "rtcam.log"), first_start or 0)

    def check(name, ok, detail, viewer):
        run["checks"].append({"check": name, "ok": bool(ok), "detail": detail, "viewer": viewer})

    by = {r["name"]: r for r in run["viewers"]}
    for r in run["viewers"]:
        if not r["ok"]:
            check(f"{r['name']} produced its numbers", False, r["error"], r["name"])
    sc = meta["scenario"]
    if sc == "slow" and by["slow"]["ok"]:
        w = by["slow"]["last_15s"]
        check("slow: >= 20 fps decoded (last 15 s)", w["fps"] >= SLOW_MIN_FPS, f"{w['fps']} fps", "slow")
        check("slow: no gap > 500 ms (last 15 s)", w["longest_gap_ms"] <= SLOW_MAX_GAP_MS,
              f"longest {w['longest_gap_ms']} ms", "slow")
    if sc == "mixed":
        if by["fast"]["ok"]:
            w = by["fast"]["last_15s"]
            check("mixed: fast >= 25 fps (last 15 s)", w["fps"] >= MIXED_FAST_MIN_FPS,
                  f"{w['fps']} fps", "fast")
            check("mixed: fast >= 1000 kbit/s (last 15 s)", w["kbps"] >= MIXED_FAST_MIN_KBPS,
                  f"{w['kbps']} kbit/s", "fast")
        if by["slow"]["ok"]:
            w = by["slow"]["last_15s"]
            check("mixed: slow >= 10 fps (last 15 s)", w["fps"] >= MIXED_SLOW_MIN_FPS,
                  f"{w['fps']} fps", "slow")
            check("mixed: slow no gap > 1 s (last 15 s)", w["longest_gap_ms"] <= MIXED_SLOW_MAX_GAP_MS,
                  f"longest {w['longest_gap_ms']} ms", "slow")
    if sc == "recovery" and by["slow"]["ok"]:
        r = by["slow"]
        if not meta.get("lift_unix_ms"):
            check("recovery: the limit was lifted", False, "no lift time recorded", "slow")
        elif r["after_lift_observed_ms"] < RECOVERY_WITHIN_MS:
            check("recovery: watched 15 s after the lift", False,
                  f"only {r['after_lift_observed_ms']} ms", "slow")
        else:
            a = r["adapt_ms"]
            check("recovery: >= 1200 kbit/s within 15 s of the lift",
                  a is not None and a <= RECOVERY_WITHIN_MS,
                  f"not within the {r['after_lift_observed_ms'] / 1000:.1f} s watched after it"
                  if a is None else f"after {a / 1000:.2f} s", "slow")
    if not run["checks"]:
        check("run produced numbers", False, "no checks could be evaluated", None)
    run["ok"] = all(c["ok"] for c in run["checks"])
    return run


def fmt(v, unit="", none="–"):
    return none if v is None else f"{v}{unit}"


def print_summary(runs, out):
    p = lambda s="": print(s, file=out)
    p("| run | viewer (link) | fps, last 15 s | longest freeze, ms | received kbit/s | time to adapt | pictures | estimate in window, kbit/s (min-median-max) | status at end: estimate kbit/s / encoding / layers / sent kbit/s | checks |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        for r in run["viewers"]:
            checks = [c for c in run["checks"] if c.get("viewer") == r["name"]]
            verdict = "; ".join(("PASS " if c["ok"] else "**FAIL** ") + c["check"].split(": ", 1)[-1]
                                + f" ({c['detail']})" for c in checks) or "–"
            if not r["ok"]:
                p(f"| {run['run']} | {r['name']} ({r['link']}) | – | – | – | – | – | – | – | FAIL: no numbers ({' '.join((r.get('error') or '').split())[:100]}) |")
                continue
            w = r["last_15s"]
            adapt = "–"
            if "adapt_ms" in r:
                adapt = (f"> {r['after_lift_observed_ms'] / 1000 - RECOVERY_HOLD_MS / 1000:.1f} s"
                         if r["adapt_ms"] is None else f"{r['adapt_ms'] / 1000:.2f} s")
            se = r.get("status_end") or {}
            st = f"{fmt(se.get('estimate_kbps'))} / {fmt(se.get('encoding'))} / {fmt(se.get('layers'))} / {fmt(se.get('sent_kbps'))}"
            e = r.get("estimate_in_window")
            est = f"{e['min']}-{e['median']}-{e['max']}" if e else "–"
            p(f"| {run['run']} | {r['name']} ({r['link']}) | {w['fps']} | {w['longest_gap_ms']} | {w['kbps']} | {adapt} | {' '.join(w['pictures']) or '–'} | {est} | {st} | {verdict} |")


def print_details(runs, out):
    p = lambda s="": print(s, file=out)
    for run in runs:
        p()
        p(f"=== {run['run']}: {'PASS' if run['ok'] else 'FAIL'}  (load average before/after: {run.get('loadavg')})")
        for c in run["checks"]:
            p(f"  {'PASS' if c['ok'] else 'FAIL'}  {c['check']}: {c['detail']}")
        for note in run.get("notes", []):
            p(f"  note: {note}")
        if "send_errors_eperm" in run:
            p(f"  packets the loss rule dropped (rtcam's sends that got EPERM): {run['send_errors_eperm']}")
        if run.get("rtcam_end"):
            p(f"  rtcam at the end: {json.dumps(run['rtcam_end'])}")
        for r in run["viewers"]:
            p(f"  -- {r['name']} ({r['link']}, {r['label']}); checked window {r.get('window_s')} s since its POST")
            if not r["ok"]:
                p(f"     no numbers: {r.get('error')}")
                continue
            p(f"     counters: {json.dumps(r['client_counters'])}")
            g = r["gaps_over_200ms_after_5s"]
            p(f"     gaps > 200 ms between decoded frames after the first 5 s: {g['gaps']}, "
              f"{g['ending_with_a_keyframe']} of them ending with a keyframe")
            if "lift_at_s" in r:
                p(f"     lift at {r['lift_at_s']} s; before it (15 s): {json.dumps(r['before_lift'])}; "
                  f">= {RECOVERY_KBPS:.0f} kbit/s (2 s average, held 5 s) after {fmt(r['adapt_ms'], ' ms')}, "
                  f"first reached after {fmt(r['first_reach_ms'], ' ms')}")
            p(f"     checked window: {json.dumps(r['last_15s'])}; estimate in it (kbit/s): {json.dumps(r['estimate_in_window'])}")
            chromium = "chromium_freezes" in r["last_15s"]
            p("     per 5 s:   from-to s   fps  longest gap ms  kbit/s  "
              + ("freezes (Chromium: n, ms)  " if chromium else "") + "pictures")
            for b in r["bins_5s"]:
                fr = f"{b['chromium_freezes']:4d} {b['chromium_freeze_ms']:6d}              " if chromium else ""
                p(f"              {b['from_s']:5.1f}-{b['to_s']:<5.1f} {b['fps']:5.1f} {b['longest_gap_ms']:8d} {b['kbps']:10d}   {fr}{' '.join(b['pictures'])}")
            p("     /api/status of its link:  t s  estimate  encoding  layers  sent  nacks  plis  rtt ms  loss")
            for m in r["status_at"]:
                p(f"              {m['t_s']:5d} {fmt(m['estimate_kbps']):>9} {fmt(m['encoding']):>9} {fmt(m['layers']):>7} {fmt(m['sent_kbps']):>6} {fmt(m['nacks']):>6} {fmt(m['plis']):>5} {fmt(m['rtt_ms']):>7} {fmt(m['loss']):>6}")
        if run["log"]:
            p("  rtcam log (encodings, bitrates, viewers; s since the first viewer's POST):")
            for line in run["log"][:60]:
                p(f"    {line}")
            if len(run["log"]) > 60:
                p(f"    … {len(run['log']) - 60} more in the run's rtcam.log")


def evaluate(runs_dir):
    dirs = sorted(os.path.join(runs_dir, d) for d in os.listdir(runs_dir)
                  if os.path.exists(os.path.join(runs_dir, d, "meta.json")))
    runs = []
    for d in dirs:
        try:
            runs.append(evaluate_run(d))
        except Exception as e:  # a broken run is a failed run, never a skipped one
            runs.append({"run": os.path.basename(d), "scenario": "?", "client": "?",
                         "viewers": [], "checks": [{"check": "evaluation", "ok": False,
                                                    "detail": repr(e)}], "ok": False, "log": []})
    expected = int(os.environ.get("NETCHECK_EXPECT_RUNS", "0"))
    if len(runs) < expected:
        runs.append({"run": "missing runs", "scenario": "?", "client": "?", "viewers": [],
                     "checks": [{"check": "every run has data", "ok": False,
                                 "detail": f"{len(runs)} of {expected} runs"}],
                     "ok": False, "log": []})
    with open(os.path.join(runs_dir, "results.json"), "w") as f:
        json.dump(runs, f, indent=1)
    with open(os.path.join(runs_dir, "details.txt"), "w") as f:
        print_details(runs, f)
    with open(os.path.join(runs_dir, "summary.md"), "w") as f:
        print_summary(runs, f)
    print_details(runs, sys.stdout)
    print()
    print_summary(runs, sys.stdout)
    failed = [c["check"] + " (" + run["run"] + ")" for run in runs for c in run["checks"]
              if not c["ok"]]
    print()
    if failed:
        print(f"net: {len(failed)} check(s) failed:")
        for c in failed:
            print(f"  - {c}")
        return 1
    print("net: every check passed")
    return 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "poll":
        poll(argv[1], argv[2], argv[3])
        return 0
    if len(argv) == 4 and argv[0] == "wait-links":
        return wait_links(argv[1], int(argv[2]), float(argv[3]))
    if len(argv) == 2 and argv[0] == "evaluate":
        return evaluate(argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
