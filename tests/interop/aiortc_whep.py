"""A WHEP player on aiortc (Python's WebRTC stack, not written by this project) against rtcam.

    python aiortc_whep.py URL TOKEN [--frames N] [--timeout S]

Offers video recvonly and a `control` data channel the way aiortc makes them (its data channel
in the legacy `DTLS/SCTP 5000` m-line form), without trickle (aiortc gathers before it offers),
decodes H.264 frames, sends a control `ping` and waits for its answer, then DELETEs the session.
Prints one JSON line: status, frames decoded, their size, the ping's answer, the DELETE status,
time to first frame (from the POST). Exit 0 when the run completed, 1 otherwise (the reason in
`error`). Judging the numbers is the caller's job (tests/interop.rs).

aiortc 1.9 cannot take a refused m-line (it needs codecs on it, then waits for ICE on it), so
this player offers no audio: rtcam refuses audio with port 0, as JSEP says.
"""
import argparse
import asyncio
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from aiortc import RTCPeerConnection, RTCSessionDescription


def request(method, url, token, body=None, content_type=None):
    headers = {"Authorization": f"Bearer {token}"}
    if content_type:
        headers["Content-Type"] = content_type
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode(errors="replace")


async def play(args, out):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    control = pc.createDataChannel("control")
    frames = []
    first_frame = asyncio.get_running_loop().create_future()
    opened = asyncio.Event()
    replies = {}

    @pc.on("track")
    def on_track(track):
        async def pull():
            while True:
                try:
                    frame = await track.recv()
                except Exception:
                    return
                frames.append((frame.width, frame.height))
                if not first_frame.done():
                    first_frame.set_result(time.monotonic())

        if track.kind == "video":
            asyncio.ensure_future(pull())

    control.on("open", opened.set)

    @control.on("message")
    def on_message(text):
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if isinstance(msg, dict) and "id" in msg:
            replies[msg["id"]] = msg

    await pc.setLocalDescription(await pc.createOffer())
    posted = time.monotonic()
    status, headers, answer = request("POST", args.url, args.token,
                                      pc.localDescription.sdp.encode(), "application/sdp")
    out["status"] = status
    if status != 201:
        raise RuntimeError(f"POST answered {status}: {answer.strip()[:200]}")
    location = headers.get("Location") or headers.get("location")
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    deadline = posted + args.timeout
    async def until(cond, what):
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what} (ICE {pc.iceConnectionState})")
            await asyncio.sleep(0.02)

    await until(lambda: len(frames) >= args.frames, f"{args.frames} frames")
    out["frames"] = len(frames)
    out["size"] = list(frames[-1])
    out["first_frame_ms"] = round((first_frame.result() - posted) * 1000, 1)
    await until(opened.is_set, "the control channel")
    control.send(json.dumps({"id": 1, "cmd": "ping", "t": "aiortc"}))
    await until(lambda: 1 in replies, "the ping's answer")
    out["ping"] = replies[1]
    if location:
        out["delete"] = request("DELETE", urllib.parse.urljoin(args.url, location), args.token)[0]
    await pc.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("token")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()
    out = {}
    try:
        asyncio.run(play(args, out))
        out["ok"] = True
    except Exception as e:  # the report says what went wrong; the caller judges
        out["ok"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out))
    sys.exit(0 if out["ok"] else 1)


if __name__ == "__main__":
    main()
