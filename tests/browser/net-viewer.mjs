// One headless Chromium viewer of a running rtcam for the network tests (tests/net/run.sh),
// which runs it inside a viewer's network namespace behind a rate-limited, lossy link:
//   node net-viewer.mjs http://ADDR:PORT/ [--seconds 35] [--no-turn] [--no-trickle]
// --no-turn: the TURN servers of the Link headers are left out (only rtcam's relay can help).
// --no-trickle: the offer waits for ICE gathering to complete and carries every candidate (as
// a player that does not trickle), for time to first frame with and without trickle.
// A minimal page of its own (served by playwright on rtcam's origin, so its WHEP POST is
// same-origin) plays the stream with Chromium's own WebRTC stack: no reconnects, no stamp
// reading, nothing but the video element. Prints one JSON object:
//   start_unix_ms  when the offer was POSTed; every t_ms counts from there
//   seconds        how long it watched after the POST
//   frames         [[t_ms, presentedFrames, width, height], …]: every requestVideoFrameCallback
//                  (a decoded frame handed to the compositor)
//   stats          [{t_ms, framesDecoded, bytesReceived, …}, …]: getStats() inbound-rtp video,
//                  every 250 ms
//   pair           the selected ICE candidate pair's local and remote candidate types and its
//                  protocol (udp, tcp)
//                  (host, srflx, prflx, relay) when it stopped watching
//   first_frame_ms the first presented frame, counted from the page's start (before OPTIONS and
//                  the offer, so ICE gathering counts too)
//   patches        trickle PATCHes answered 204
//   error          set if it never played (the process then exits 1)
import { launch } from './lib.mjs';

function parseArgs(argv) {
  const opts = { url: null, seconds: 35, noTurn: false, noTrickle: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--seconds') opts.seconds = Number(argv[++i]);
    else if (a === '--no-turn') opts.noTurn = true;
    else if (a === '--no-trickle') opts.noTrickle = true;
    else if (!a.startsWith('--') && !opts.url) opts.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url || !(opts.seconds > 0)) throw new Error('usage: node net-viewer.mjs <url> [--seconds 35]');
  return opts;
}

// The page: WHEP with a receive-only video transceiver, the ICE servers from the Link headers
// of OPTIONS /whep, the offer sent without waiting for ICE gathering and the candidates
// trickled by PATCH (behind a NAT rtcam must know the viewer's public address to reach it).
const PAGE = `<!doctype html><meta charset="utf-8"><title>net viewer</title>
<video id="v" muted autoplay playsinline width="640" height="360"></video>
<script>
const STATS_FIELDS = ['framesDecoded', 'framesReceived', 'framesDropped', 'keyFramesDecoded',
  'bytesReceived', 'packetsReceived', 'packetsLost', 'nackCount', 'pliCount', 'firCount',
  'frameWidth', 'frameHeight', 'freezeCount', 'totalFreezesDuration', 'pauseCount',
  'totalPausesDuration', 'jitterBufferDelay', 'jitterBufferEmittedCount',
  'retransmittedBytesReceived'];
window.net = { frames: [], stats: [], t0: null, startUnixMs: null, resource: null, error: null,
  iceState: [], patches: 0, iceServers: [], begin: null, firstFrameMs: null };
// RFC 8288 Link values with rel="ice-server" (fetch joins several headers with ", ").
function iceServers(header) {
  const servers = [];
  for (const link of (header || '').match(/<[^>]*>(?:\\s*;\\s*[^;,<]+=("[^"]*"|[^;,<]*))*/g) || []) {
    const url = link.slice(1, link.indexOf('>'));
    const params = {};
    for (const m of link.matchAll(/;\\s*([a-z-]+)=("([^"]*)"|[^;,]*)/g)) params[m[1]] = m[3] ?? m[2];
    if (params.rel !== 'ice-server') continue;
    const server = { urls: url };
    if (params.username) server.username = params.username;
    if (params.credential) server.credential = params.credential;
    servers.push(server);
  }
  return servers;
}
window.netStart = async function (noTurn, noTrickle) {
  const net = window.net;
  net.begin = performance.now();
  const video = document.getElementById('v');
  const options = await fetch('/whep', { method: 'OPTIONS' });
  net.iceServers = iceServers(options.headers.get('Link'))
    .filter((s) => !(noTurn && /^turns?:/.test(s.urls)));
  const pc = new RTCPeerConnection({ iceServers: net.iceServers });
  let etag = null;
  let queued = [];
  const trickle = async () => {
    if (!etag || !queued.length || !net.resource) return;
    const body = queued.join('');
    queued = [];
    const r = await fetch(net.resource, { method: 'PATCH', body,
      headers: { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': etag } });
    if (r.status === 204) net.patches++;
    else net.error = net.error || ('PATCH answered ' + r.status + ': ' + (await r.text()));
  };
  pc.onicecandidate = (e) => {
    if (noTrickle) return;
    queued.push(e.candidate ? 'a=' + e.candidate.candidate + '\\r\\n' : 'a=end-of-candidates\\r\\n');
    trickle().catch((err) => { net.error = String(err); });
  };
  window.pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.ontrack = (e) => {
    video.srcObject = e.streams[0] || new MediaStream([e.track]);
    video.play().catch(() => {});
  };
  pc.oniceconnectionstatechange = () =>
    net.iceState.push([Math.round(performance.now() - net.t0), pc.iceConnectionState]);
  const cb = (now, md) => {
    if (net.firstFrameMs === null) net.firstFrameMs = Math.round(now - net.begin);
    net.frames.push([Math.round((now - net.t0) * 10) / 10, md.presentedFrames, md.width, md.height]);
    video.requestVideoFrameCallback(cb);
  };
  video.requestVideoFrameCallback(cb);
  await pc.setLocalDescription(await pc.createOffer());
  if (noTrickle && pc.iceGatheringState !== 'complete') {
    await new Promise((resolve) => {
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
    });
  }
  net.t0 = performance.now();
  net.startUnixMs = Date.now();
  const r = await fetch('/whep', { method: 'POST', headers: { 'Content-Type': 'application/sdp' },
    body: pc.localDescription.sdp });
  if (r.status !== 201) throw new Error('WHEP POST answered ' + r.status + ': ' + (await r.text()));
  net.resource = r.headers.get('Location');
  etag = r.headers.get('ETag');
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
  await trickle();
  const poll = async () => {
    const t = Math.round((performance.now() - net.t0) * 10) / 10;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && (s.kind || s.mediaType) === 'video') {
        const row = { t_ms: t };
        for (const k of STATS_FIELDS) if (s[k] !== undefined) row[k] = s[k];
        net.stats.push(row);
      }
    });
  };
  setInterval(() => { poll().catch((e) => { net.error = String(e); }); }, 250);
};
// The selected pair's candidate types and transport, e.g. {local: 'relay', remote: 'srflx',
// protocol: 'udp'}.
window.netPair = async function () {
  const report = await window.pc.getStats();
  let pair = null;
  report.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
  });
  if (!pair) report.forEach((s) => { if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  if (!pair) return null;
  const local = report.get(pair.localCandidateId);
  const remote = report.get(pair.remoteCandidateId);
  return { local: local && local.candidateType, remote: remote && remote.candidateType,
    protocol: local && local.protocol };
};
window.netStop = async function () {
  const net = window.net;
  if (net.resource) await fetch(net.resource, { method: 'DELETE' }).catch(() => {});
  if (window.pc) window.pc.close();
};
</script>`;

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

const pageUrl = new URL('/net-viewer.html', opts.url).href;
const out = { client: 'chromium', start_unix_ms: null, seconds: opts.seconds, frames: [], stats: [] };
let browser = null;
let page = null;
const log = [];
try {
  browser = await launch();
  page = await browser.context.newPage();
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.stack || e}`));
  await page.route(pageUrl, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: PAGE }));
  await page.goto(pageUrl, { waitUntil: 'load', timeout: 60_000 });
  await page.evaluate(([noTurn, noTrickle]) => window.netStart(noTurn, noTrickle),
    [opts.noTurn, opts.noTrickle]);
  const startUnixMs = await page.evaluate(() => window.net.startUnixMs);
  // Watch until `seconds` after the POST.
  const left = startUnixMs + opts.seconds * 1000 - Date.now();
  if (left > 0) await page.waitForTimeout(left);
  const net = await page.evaluate(() => window.net);
  const pair = await page.evaluate(() => window.netPair()).catch(() => null);
  await page.evaluate(() => window.netStop()).catch(() => {});
  Object.assign(out, {
    start_unix_ms: net.startUnixMs,
    frames: net.frames,
    stats: net.stats,
    ice: net.iceState,
    ice_servers: net.iceServers.map((s) => s.urls),
    patches: net.patches,
    trickle: !opts.noTrickle,
    first_frame_ms: net.firstFrameMs,
    pair,
  });
  if (net.error) out.error = net.error;
  if (!net.frames.length) out.error = out.error || 'no frame was presented';
} catch (e) {
  out.error = String(e && e.stack ? e.stack : e);
}
if (browser) await browser.close();
if (out.error) out.console = log.slice(-30);
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.error ? 1 : 0);
