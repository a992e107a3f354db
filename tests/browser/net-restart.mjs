// rtcam's own viewer page in headless Chromium while the network under it changes, for the
// network tests (tests/net/nat.sh runs it in a namespace whose address it changes mid-stream):
//   node net-restart.mjs http://ADDR:PORT/ [--seconds 16]
// The page is the one users open: it restarts ICE by WHEP PATCH when the network changes or
// ICE fails, and only falls back to a new session (a new POST) if that does not connect.
// Prints one JSON object (times are Unix milliseconds, comparable with the caller's clock):
//   start_unix_ms  when it started watching
//   frames         the time of every frame presented (requestVideoFrameCallback)
//   samples        [[unix_ms, connectionSeq, iceRestarts, state, connected, videoWidth], …]
//                  every 50 ms: a new connectionSeq is a new session, iceRestarts counts
//                  restarts on this one, videoWidth shows the encoding (main or low)
//   pc_events      [[unix_ms, what, iceConnectionState, connectionState], …]: every state
//                  change of every RTCPeerConnection the page made
//   video          [[unix_ms, framesReceived, framesDecoded, keyFramesDecoded, pliCount,
//                  packetsReceived, packetsLost], …] every 100 ms: the latest connection's
//                  inbound video (getStats)
//   error          set if it never played (the process then exits 1)
import { launch, openPage, waitInPage } from './lib.mjs';

const args = process.argv.slice(2);
const url = args.find((a) => !a.startsWith('--'));
const i = args.indexOf('--seconds');
const seconds = i >= 0 ? Number(args[i + 1]) : 16;
if (!url || !(seconds > 0)) {
  console.error('usage: node net-restart.mjs <url> [--seconds 16]');
  process.exit(2);
}

const out = { start_unix_ms: Date.now(), frames: [], samples: [], error: null };
let browser = null;
try {
  browser = await launch();
  // Every peer connection's state changes, for the report (the page keeps its own private).
  await browser.context.addInitScript(() => {
    window.__pcEvents = [];
    const Native = window.RTCPeerConnection;
    window.RTCPeerConnection = function (...a) {
      const pc = new Native(...a);
      const seq = window.__pcEvents.length;
      const note = (what) => window.__pcEvents.push([Date.now(), what, pc.iceConnectionState, pc.connectionState]);
      pc.addEventListener('iceconnectionstatechange', () => note('ice'));
      pc.addEventListener('connectionstatechange', () => note('connection'));
      note(`new ${seq}`);
      window.__pcs = [...(window.__pcs || []), pc];
      return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
    Object.setPrototypeOf(window.RTCPeerConnection, Native);
  });
  const { page } = await openPage(browser.context, url);
  await page.evaluate(() => {
    window.__frames = [];
    const v = document.querySelector('video');
    const onFrame = () => { window.__frames.push(Date.now()); v.requestVideoFrameCallback(onFrame); };
    v.requestVideoFrameCallback(onFrame);
    window.__samples = [];
    window.__video = [];
    setInterval(async () => {
      const pc = (window.__pcs || []).at(-1);
      if (!pc) return;
      const t = Date.now();
      for (const r of (await pc.getStats()).values()) {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          window.__video.push([t, r.framesReceived, r.framesDecoded, r.keyFramesDecoded, r.pliCount,
            r.packetsReceived, r.packetsLost]);
        }
      }
    }, 100);
    setInterval(() => {
      const r = window.rtcam;
      window.__samples.push([Date.now(), r.connectionSeq, r.iceRestarts, r.state, r.connected,
        document.querySelector('video').videoWidth]);
    }, 50);
  });
  await waitInPage(page, 'the page to play', () => window.__frames.length >= 10, null, 60_000);
  const end = out.start_unix_ms + seconds * 1000;
  while (Date.now() < end) await page.waitForTimeout(250);
  Object.assign(out, await page.evaluate(() => ({ frames: window.__frames, samples: window.__samples,
    pc_events: window.__pcEvents, video: window.__video })));
} catch (e) {
  out.error = String(e && e.message ? e.message : e);
}
if (browser) await browser.close();
console.log(JSON.stringify(out));
process.exit(out.error ? 1 : 0);
