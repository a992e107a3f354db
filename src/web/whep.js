// The WHEP client: one Session (RTCPeerConnection + `control` data channel + WHEP resource)
// per attempt, signaling (POST the offer, DELETE the resource), the connection's state, the
// frame and stall watch, and reconnecting with backoff. Callbacks of an old session are
// ignored (`s !== conn.cur`), so a late event can never tear down its successor.

import { $, rtcam, conn, emit, round1, sleep } from './state.js';
import { withAuth } from './auth.js';
import { onMessage, startPings, rejectPending } from './control.js';
import { collectStats } from './stats.js';
import { readStamp } from './stamp.js';
import { render } from './ui.js';
import { controlReset } from './steering.js';

const CFG = {
  whepUrl: new URL('whep', location.href).href, // relative: works behind a path prefix
  backoffMinMs: 500,
  backoffMaxMs: 5000,
  postTimeoutMs: 10000,     // the POST (server busy or gone)
  connectTimeoutMs: 15000,  // answer received → ICE/DTLS connected
  disconnectGraceMs: 3000,  // 'disconnected' may recover by itself
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
  });
  if (afterFailure) setState('reconnecting', rtcam.reason); else setState('connecting', null);
  start(s).catch((e) => fail(s, e));
}

async function start(s) {
  if (!window.RTCPeerConnection) {
    throw new ConnError('this browser does not support WebRTC', { status: 400 });
  }
  const pc = s.pc = new RTCPeerConnection({ iceServers: [], bundlePolicy: 'max-bundle' });
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

  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  if (s.closed) return;
  // No trickle ICE: the offer goes out at once, without waiting for gathering. The server
  // learns our address from the STUN checks; its answer lists its own host candidates.
  s.t0 = performance.now();
  const answer = await post(s, pc.localDescription.sdp);
  if (s.closed) { deleteResource(s); return; }
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  lowLatency(tr.receiver);
  s.timers.push(setInterval(() => pollStats(s), CFG.statsEveryMs));
  s.timers.push(setTimeout(() => {
    if (!rtcam.connected && !s.connectedAt) fail(s, new ConnError(`no connection after ${CFG.connectTimeoutMs / 1000} s`));
  }, CFG.connectTimeoutMs));
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
    return text;
  } catch (e) {
    if (e instanceof ConnError) throw e;
    throw new ConnError(timedOut ? 'server did not answer' : 'lost the server while signaling');
  } finally {
    clearTimeout(timer);
    s.abort = null;
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
    if (!rtcam.connected) {
      rtcam.connected = true;
      s.connectedAt = s.lastProgress = performance.now();
      if (rtcam.firstFrameMs != null) setState('live', null);
    }
  } else if (st === 'disconnected') {
    rtcam.connected = false;
    setState('reconnecting', 'connection interrupted');
    if (!s.discTimer) {
      s.discTimer = setTimeout(() => fail(s, new ConnError('connection lost')), CFG.disconnectGraceMs);
    }
  } else if (st === 'failed') {
    fail(s, new ConnError('connection failed'));
  } else if (st === 'closed') {
    fail(s, new ConnError('connection closed'));
  }
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
    s.pc.onconnectionstatechange = s.pc.oniceconnectionstatechange = null;
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
// back from the back/forward cache, retry at once when the network returns.
// ---------------------------------------------------------------------------------------
export function run() {
  addEventListener('pagehide', () => {
    stopped = true;
    clearTimeout(retryTimer); retryTimer = 0; conn.retryAt = 0;
    if (conn.cur) { teardown(conn.cur); conn.cur = null; } // DELETE with keepalive
  });
  addEventListener('pageshow', (e) => { if (e.persisted) { stopped = false; connect(); } });
  addEventListener('online', () => { if (retryTimer) connect(); });
  // A hidden page may not have decoded: the stall watchdog starts afresh when it shows again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && conn.cur) conn.cur.lastProgress = performance.now();
  });
  connect();
}
