// The WHEP client: one Session (RTCPeerConnection + `control` data channel + WHEP resource)
// per attempt, signaling (POST the offer, DELETE the resource), the connection's state, the
// frame and stall watch, ICE restarts on the same session, and reconnecting with backoff.
// Callbacks of an old session are ignored (`s !== conn.cur`), so a late event can never tear
// down its successor.

import { $, rtcam, conn, emit, round1, sleep } from './state.js';
import { withAuth } from './auth.js';
import { onMessage, startPings, rejectPending } from './control.js';
import { collectStats } from './stats.js';
import { readStamp } from './stamp.js';
import { render } from './ui.js';
import { controlReset } from './steering.js';
import { fetchIceServers, iceServersFromLinks } from './ice-servers.js';
import { newIce, localCandidate, startTrickle, candidatesInOffer, canPatch, beginRestart, restartExchange } from './trickle.js';

const CFG = {
  whepUrl: new URL('whep', location.href).href, // relative: works behind a path prefix
  // `?trickle=off`: the offer waits for ICE gathering and carries every candidate, the way
  // players that do not trickle send it (tests/browser/bench.mjs compares the two).
  trickle: new URLSearchParams(location.search).get('trickle') !== 'off',
  gatherTimeoutMs: 3000,    // without trickle: how long the offer waits for gathering
  backoffMinMs: 500,
  backoffMaxMs: 5000,
  postTimeoutMs: 10000,     // the POST (server busy or gone)
  connectTimeoutMs: 15000,  // answer received → ICE/DTLS connected
  disconnectGraceMs: 3000,  // 'disconnected' may recover by itself (when ICE cannot restart)
  // The server drops a viewer silent for 5 s and Chromium reports 'disconnected' only after
  // about 2.5 s of silence: an ICE restart has to go out well before the grace above ends.
  // It costs little if the old path recovers: media stays on it until the new one is checked.
  restartAfterDisconnectMs: 500,
  restartConnectMs: 5000,   // restart answered → ICE connected again, else a new session
  restartGapMs: 5000,       // network 'change' events come in bursts: one restart per burst
  stallMs: 5000,            // connected but no frame decoded
  deleteTimeoutMs: 1500,
  statsEveryMs: 1000,
};

const video = $('video');
let backoff = CFG.backoffMinMs;
let retryTimer = 0;
let stopped = false;

class ConnError extends Error {
  constructor(message, opts = {}) {
    super(message);
    this.status = opts.status || 0;
    this.retryAfterMs = opts.retryAfterMs || 0;
  }
}

function newSession() {
  return {
    seq: ++rtcam.connectionSeq,
    closed: false,
    pc: null, dc: null, receiver: null, resource: null, abort: null,
    answer: null, ice: newIce(), restarting: false, restartTimer: 0, lastRestart: 0,
    t0: 0, connectedAt: 0, lastProgress: 0, lastFrames: 0,
    pending: new Map(), nextId: 1,
    timers: [], discTimer: 0, rvfc: 0, prevInbound: null,
  };
}

function setState(state, reason) {
  const changed = state !== rtcam.state || reason !== rtcam.reason;
  rtcam.state = state;
  rtcam.reason = reason || null;
  render();
  if (changed) emit('state', { state, reason: rtcam.reason });
}

export function connect() {
  if (stopped) return;
  clearTimeout(retryTimer);
  retryTimer = 0; conn.retryAt = 0; rtcam.retryInMs = null;
  if (conn.cur) teardown(conn.cur);
  const afterFailure = rtcam.state === 'reconnecting' || rtcam.state === 'error';
  const s = conn.cur = newSession();
  if (s.seq > 1) rtcam.reconnects++;
  Object.assign(rtcam, {
    connected: false, resource: null, framesDecoded: 0, framesDropped: 0, packetsLost: 0,
    codec: null, width: 0, height: 0, fps: null, bitrateKbps: null, rttMs: null, jitterBufferMs: null,
    pingRtt: null, pingsAnswered: 0, firstFrameMs: null, stampAgeMs: null, statsAt: null,
    etag: null, trickle: null, patches: 0, patchErrors: 0, candidatesSent: 0, iceRestarts: 0,
    iceServers: [], iceUfrag: null,
  });
  if (afterFailure) setState('reconnecting', rtcam.reason); else setState('connecting', null);
  start(s).catch((e) => fail(s, e));
}

async function start(s) {
  if (!window.RTCPeerConnection) {
    throw new ConnError('this browser does not support WebRTC', { status: 400 });
  }
  const ctl = s.abort = new AbortController();
  const iceServers = await fetchIceServers(CFG.whepUrl, ctl.signal);
  s.abort = null;
  if (s.closed) return;
  const pc = s.pc = newPeerConnection(iceServers);
  const tr = pc.addTransceiver('video', { direction: 'recvonly' });
  preferH264(tr);
  s.receiver = tr.receiver;
  lowLatency(tr.receiver);

  video.srcObject = new MediaStream([tr.receiver.track]);
  video.play().catch(() => {});
  watchFrames(s);

  const dc = s.dc = pc.createDataChannel('control');
  dc.onopen = () => { if (s === conn.cur) { startPings(s); emit('open', {}); } };
  dc.onclose = () => fail(s, new ConnError('control channel closed'));
  dc.onmessage = (e) => onMessage(s, e.data);
  pc.onconnectionstatechange = () => onPcState(s);
  pc.oniceconnectionstatechange = () => onPcState(s);
  pc.onicecandidate = (e) => { if (!s.closed) localCandidate(s, e.candidate); };

  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  if (s.closed) return;
  // The time to first frame counts from here, gathering included when the offer waits for it.
  s.t0 = performance.now();
  // With trickle the offer goes out at once: the candidates follow by PATCH (trickle.js), and
  // the server also learns our address from the STUN checks.
  if (!CFG.trickle) {
    await iceGathered(pc, CFG.gatherTimeoutMs);
    if (s.closed) return;
    candidatesInOffer(s);
  }
  const { sdp: answer, etag, iceServers: linked } = await post(s, pc.localDescription.sdp);
  if (s.closed) { deleteResource(s); return; }
  if (linked.length) useIceServers(pc, linked);
  s.answer = answer;
  startTrickle(s, etag, pc.localDescription.sdp);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  lowLatency(tr.receiver);
  s.timers.push(setInterval(() => pollStats(s), CFG.statsEveryMs));
  s.timers.push(setTimeout(() => {
    if (!rtcam.connected && !s.connectedAt) fail(s, new ConnError(`no connection after ${CFG.connectTimeoutMs / 1000} s`));
  }, CFG.connectTimeoutMs));
}

// Resolves when ICE gathering is complete or after `ms`, whichever comes first (a STUN or TURN
// server that does not answer would otherwise hold the offer back for good).
function iceGathered(pc, ms) {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    };
    const check = () => { if (pc.iceGatheringState === 'complete') done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', check);
    check();
  });
}

async function post(s, sdp) {
  const ctl = s.abort = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctl.abort(); }, CFG.postTimeoutMs);
  try {
    let res;
    try {
      res = await fetch(CFG.whepUrl, {
        method: 'POST', body: sdp, signal: ctl.signal, cache: 'no-store',
        headers: withAuth({ 'Content-Type': 'application/sdp' }),
      });
    } catch (e) {
      throw new ConnError(timedOut ? 'server did not answer' : 'server unreachable');
    }
    const text = await res.text();
    const loc = res.headers.get('Location');
    if (loc) s.resource = new URL(loc, res.url || CFG.whepUrl).href;
    if (res.status !== 201) {
      const reason = (text.trim().split('\n')[0] || res.statusText || 'error').slice(0, 200);
      throw new ConnError(`${reason} (HTTP ${res.status})`, {
        status: res.status,
        retryAfterMs: parseRetryAfter(res.headers.get('Retry-After')),
      });
    }
    if (!text.startsWith('v=')) throw new ConnError('the server sent no SDP answer');
    rtcam.resource = s.resource;
    return {
      sdp: text,
      etag: res.headers.get('ETag'),
      iceServers: iceServersFromLinks(res.headers.get('Link')),
    };
  } catch (e) {
    if (e instanceof ConnError) throw e;
    throw new ConnError(timedOut ? 'server did not answer' : 'lost the server while signaling');
  } finally {
    clearTimeout(timer);
    s.abort = null;
  }
}

// A browser refuses the whole configuration over one ICE server it does not like: then none.
function newPeerConnection(iceServers) {
  const config = { iceServers, bundlePolicy: 'max-bundle' };
  try {
    const pc = new RTCPeerConnection(config);
    rtcam.iceServers = iceServers.map((x) => x.urls);
    return pc;
  } catch (e) {
    console.warn('rtcam: ICE servers refused, connecting without', e);
    return new RTCPeerConnection({ ...config, iceServers: [] });
  }
}

// The 201's Links may be fresher than those of the OPTIONS (short-lived TURN credentials):
// they apply to this session's later gathering (ICE restarts).
function useIceServers(pc, iceServers) {
  try {
    pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
    rtcam.iceServers = iceServers.map((x) => x.urls);
  } catch (e) {
    console.warn('rtcam: ICE servers of the answer refused', e);
  }
}

function parseRetryAfter(v) {
  if (!v) return 0;
  const secs = Number(v);
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(v) - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), 60000) : 0;
}

// H.264 only when the browser can receive it (packetization-mode 1 first, constrained
// baseline first), plus RTX for retransmissions.
function preferH264(tr) {
  try {
    if (!tr.setCodecPreferences || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
    const caps = RTCRtpReceiver.getCapabilities('video');
    if (!caps) return;
    let h264 = caps.codecs.filter((c) => /^video\/h264$/i.test(c.mimeType));
    if (!h264.length) return; // the server will answer with its reason
    const fmtp = (c) => c.sdpFmtpLine || '';
    const pm1 = h264.filter((c) => /packetization-mode=1/.test(fmtp(c)));
    if (pm1.length) h264 = pm1;
    const rank = (c) => (/profile-level-id=42e0/i.test(fmtp(c)) ? 0 : /profile-level-id=4200/i.test(fmtp(c)) ? 1 : 2);
    h264.sort((a, b) => rank(a) - rank(b));
    const rtx = caps.codecs.filter((c) => /^video\/rtx$/i.test(c.mimeType));
    tr.setCodecPreferences([...h264, ...rtx]);
  } catch (e) {
    console.warn('rtcam: setCodecPreferences failed', e);
  }
}

function lowLatency(receiver) {
  try { if ('jitterBufferTarget' in receiver) receiver.jitterBufferTarget = 0; } catch (e) { /* unsupported */ }
  try { receiver.playoutDelayHint = 0; } catch (e) { /* unsupported */ }
}

function onPcState(s) {
  if (s !== conn.cur || s.closed) return;
  const st = s.pc.connectionState || s.pc.iceConnectionState;
  if (st === 'connected' || st === 'completed') {
    clearTimeout(s.discTimer); s.discTimer = 0;
    if (s.restarting === 'answered') restartDone(s);
    if (!rtcam.connected) {
      rtcam.connected = true;
      s.connectedAt = s.lastProgress = performance.now();
      if (rtcam.firstFrameMs != null) setState('live', null);
    }
  } else if (st === 'disconnected') {
    rtcam.connected = false;
    setState('reconnecting', 'connection interrupted');
    if (!s.discTimer && !s.restarting) {
      const restart = canPatch(s);
      s.discTimer = setTimeout(() => {
        s.discTimer = 0;
        if (restart) restartIce(s, 'connection lost'); else fail(s, new ConnError('connection lost'));
      }, restart ? CFG.restartAfterDisconnectMs : CFG.disconnectGraceMs);
    }
  } else if (st === 'failed') {
    rtcam.connected = false;
    // An ICE restart mends a lost path, not a failed DTLS handshake; one under way has its
    // own deadline.
    if (s.restarting) return;
    setState('reconnecting', 'connection failed');
    if (s.pc.iceConnectionState === 'failed') restartIce(s, 'connection failed');
    else fail(s, new ConnError('connection failed'));
  } else if (st === 'closed') {
    fail(s, new ConnError('connection closed'));
  }
}

// ---------------------------------------------------------------------------------------
// ICE restart: a new network path for the same session (WHEP PATCH, If-Match: *), so the
// control channel, the decoder and the viewer's place on the server all carry on. Anything
// that goes wrong falls back to a new session (fail → reconnect with backoff). Resolves true
// once the server's answer is applied.
// ---------------------------------------------------------------------------------------
async function restartIce(s, why) {
  if (s !== conn.cur || s.closed || s.restarting || stopped) return false;
  // Not before the first answer is applied: the restart's answer is made from it.
  if (!s.answer || !canPatch(s) || !s.pc.restartIce || s.pc.signalingState !== 'stable') {
    fail(s, new ConnError(why));
    return false;
  }
  s.restarting = 'asking';
  s.lastRestart = performance.now();
  clearTimeout(s.discTimer); s.discTimer = 0;
  console.info(`rtcam: ICE restart (${why})`);
  try {
    const pc = s.pc;
    pc.restartIce();
    const offer = await pc.createOffer();
    if (s.closed) return false;
    beginRestart(s, offer.sdp);
    await pc.setLocalDescription(offer);
    if (s.closed) return false;
    const answer = await restartExchange(s, s.answer);
    if (s.closed) return false;
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    if (s.closed) return false;
    s.answer = answer;
  } catch (e) {
    s.restarting = false;
    // Not the PATCH's status as ours: a 404 here means the server gave up on this session,
    // which a new one mends.
    fail(s, new ConnError(`ICE restart failed: ${(e && e.message) || e}`));
    return false;
  }
  rtcam.iceRestarts++;
  s.restarting = 'answered';
  s.restartTimer = setTimeout(() => {
    if (s.restarting) fail(s, new ConnError(`no connection ${CFG.restartConnectMs / 1000} s after an ICE restart`));
  }, CFG.restartConnectMs);
  s.timers.push(s.restartTimer);
  // A working old path keeps the state 'connected': no event will come.
  const st = s.pc.iceConnectionState;
  if (st === 'connected' || st === 'completed') restartDone(s);
  return true;
}

function restartDone(s) {
  s.restarting = false;
  clearTimeout(s.restartTimer); s.restartTimer = 0;
}

// A network change ('online', navigator.connection 'change'): the path the session uses may
// be gone, and waiting for ICE to notice would take longer than the server waits for us.
function networkChanged() {
  if (retryTimer) { connect(); return; } // a retry was waiting for the network: now
  const s = conn.cur;
  if (!s || s.closed || !s.answer || s.restarting) return;
  if (performance.now() - s.lastRestart < CFG.restartGapMs) return;
  restartIce(s, 'network changed');
}

// For tests and the console: an ICE restart of the current session now.
export function restartIceNow() {
  const s = conn.cur;
  return s ? restartIce(s, 'asked for') : Promise.resolve(false);
}

// Called from every failure path: tear down and retry with backoff.
function fail(s, err) {
  if (s !== conn.cur || s.closed || stopped) return;
  const e = err instanceof ConnError ? err : new ConnError(String((err && err.message) || err));
  console.warn('rtcam: ' + e.message);
  rtcam.lastError = e.message;
  teardown(s);
  conn.cur = null;
  let delay = backoff;
  backoff = Math.min(backoff * 2, CFG.backoffMaxMs);
  if (e.retryAfterMs) delay = Math.max(delay, e.retryAfterMs);
  // Errors that retrying will not fix by itself (bad offer, no H.264, not authorized): say
  // so, but keep trying slowly, the server may be restarted with another configuration.
  const permanent = [400, 401, 403, 404, 405, 413, 415].includes(e.status);
  if (permanent) delay = Math.max(delay, CFG.backoffMaxMs);
  setState(permanent ? 'error' : 'reconnecting', e.message);
  scheduleRetry(delay);
}

function scheduleRetry(delay) {
  clearTimeout(retryTimer);
  conn.retryAt = performance.now() + delay;
  rtcam.retryInMs = delay;
  retryTimer = setTimeout(connect, delay);
  render();
}

// Closes everything of a session. Returns the DELETE's promise (never rejects).
function teardown(s) {
  if (s.closed) return Promise.resolve();
  s.closed = true;
  if (s.abort) s.abort.abort();
  for (const t of s.timers) { clearTimeout(t); clearInterval(t); }
  clearTimeout(s.discTimer);
  if (s.rvfc && video.cancelVideoFrameCallback) video.cancelVideoFrameCallback(s.rvfc);
  rejectPending(s);
  const deleted = deleteResource(s); // first: the server frees the viewer at once
  if (s.lastFrames > 0 || rtcam.firstFrameMs != null) keepLastFrame();
  if (s.dc) { s.dc.onopen = s.dc.onclose = s.dc.onmessage = null; try { s.dc.close(); } catch (e) { /* closed */ } }
  if (s.pc) {
    s.pc.onconnectionstatechange = s.pc.oniceconnectionstatechange = s.pc.onicecandidate = null;
    try { s.pc.close(); } catch (e) { /* closed */ }
  }
  if (s === conn.cur) rtcam.connected = false;
  controlReset();
  return deleted;
}

// While reconnecting, the last picture stays up (dimmed) instead of a black screen.
function keepLastFrame() {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h || video.readyState < 2) return;
  try {
    const still = $('still');
    if (still.width !== w || still.height !== h) { still.width = w; still.height = h; }
    still.getContext('2d').drawImage(video, 0, 0, w, h);
    still.dataset.has = '1';
  } catch (e) { /* no picture to keep */ }
}

function deleteResource(s) {
  const url = s.resource;
  s.resource = null;
  if (!url) return Promise.resolve();
  // keepalive: the DELETE survives the page going away (pagehide).
  const req = fetch(url, { method: 'DELETE', headers: withAuth(), keepalive: true, cache: 'no-store' })
    .then(() => {}, () => {});
  return Promise.race([req, sleep(CFG.deleteTimeoutMs)]);
}

// Starts over on a fresh connection at once: DELETE the old one (waiting for it briefly, so
// a server at its viewer limit has room), then POST a new offer. Resolves once the new
// attempt has started (rtcam.connectionSeq has moved on).
export async function reconnect() {
  stopped = false;
  clearTimeout(retryTimer); retryTimer = 0;
  backoff = CFG.backoffMinMs;
  const old = conn.cur;
  conn.cur = null;
  rtcam.connected = false;
  if (old) await teardown(old);
  connect();
  return rtcam.connectionSeq;
}

// ---------------------------------------------------------------------------------------
// Frames: requestVideoFrameCallback gives the first-frame time; getStats (below) is the
// fallback and the stall watchdog's measure.
// ---------------------------------------------------------------------------------------
function watchFrames(s) {
  if (!video.requestVideoFrameCallback) return;
  const cb = (now) => {
    if (s !== conn.cur || s.closed) return;
    s.lastProgress = performance.now();
    if (rtcam.firstFrameMs == null) firstFrame(s, now);
    s.rvfc = video.requestVideoFrameCallback(cb);
  };
  s.rvfc = video.requestVideoFrameCallback(cb);
}

function firstFrame(s, now) {
  if (!s.t0) return;
  rtcam.firstFrameMs = round1(Math.max(0, now - s.t0));
  backoff = CFG.backoffMinMs; // success: the next failure retries quickly again
  setState('live', null);
  emit('live', { firstFrameMs: rtcam.firstFrameMs });
}

async function pollStats(s) {
  if (s !== conn.cur || s.closed) return;
  let report;
  try { report = await s.pc.getStats(); } catch (e) { return; }
  if (s !== conn.cur || s.closed) return;
  const now = performance.now();
  if (collectStats(s, report, now) && rtcam.framesDecoded > 0 && rtcam.firstFrameMs == null) {
    firstFrame(s, now); // no rVFC
  }
  if (!rtcam.width && video.videoWidth) { rtcam.width = video.videoWidth; rtcam.height = video.videoHeight; }
  if (rtcam.framesDecoded > 0) {
    const stamp = readStamp(video);
    rtcam.stampAgeMs = stamp ? round1(performance.timeOrigin + performance.now() - stamp.captureUs / 1000) : null;
  }
  // Watchdog: nothing decoded for a while since the connection came up (this also cuts
  // short a 'disconnected' that follows a stall). Hidden pages may not decode, so they are
  // given the benefit of the doubt.
  if (s.connectedAt && !document.hidden && now - s.lastProgress > CFG.stallMs) {
    fail(s, new ConnError(`no video for ${CFG.stallMs / 1000} s`));
    return;
  }
  render();
}

// ---------------------------------------------------------------------------------------
// Page lifecycle: connect now, hang up when the page goes (the DELETE has keepalive), come
// back from the back/forward cache, retry or restart ICE at once when the network changes.
// ---------------------------------------------------------------------------------------
export function run() {
  addEventListener('pagehide', () => {
    stopped = true;
    clearTimeout(retryTimer); retryTimer = 0; conn.retryAt = 0;
    if (conn.cur) { teardown(conn.cur); conn.cur = null; } // DELETE with keepalive
  });
  addEventListener('pageshow', (e) => { if (e.persisted) { stopped = false; connect(); } });
  addEventListener('online', networkChanged);
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener('change', networkChanged);
  }
  // A hidden page may not have decoded: the stall watchdog starts afresh when it shows again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && conn.cur) conn.cur.lastProgress = performance.now();
  });
  connect();
}
