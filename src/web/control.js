// The control channel's client: JSON requests {"id", "cmd", ...args} on the `control` data
// channel, matched to responses by id; device events ({"event": ...}) go to the event bus.
// whep.js opens the channel with each session and hands its messages here.

import { rtcam, conn, emit, round1 } from './state.js';
import { toast } from './ui.js';

const RPC_TIMEOUT_MS = 5000;
const PING_EVERY_MS = 1000;

function rpcError(code, message) {
  const e = new Error(message);
  e.code = code;
  return e;
}

// Sends a command on the current connection; resolves with its result, rejects with an Error
// whose `code` is the device's error code (or not_connected, timeout, send_failed, closed).
export function send(cmd, args = {}, opts = {}) {
  const s = conn.cur;
  if (!s || s.closed || !s.dc || s.dc.readyState !== 'open') {
    return Promise.reject(rpcError('not_connected', 'the control channel is not open'));
  }
  const id = s.nextId;
  s.nextId = (s.nextId + 1) >>> 0 || 1;
  const timeoutMs = opts.timeoutMs || RPC_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      s.pending.delete(id);
      reject(rpcError('timeout', `${cmd}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    s.pending.set(id, { resolve, reject, timer });
    try {
      s.dc.send(JSON.stringify({ ...args, id, cmd }));
    } catch (e) {
      clearTimeout(timer);
      s.pending.delete(id);
      reject(rpcError('send_failed', String(e && e.message)));
    }
  });
}

// A command the user asked for: as send(), and a failure is shown unless `opts.quiet`.
export function command(cmd, args = {}, opts = {}) {
  return send(cmd, args, opts).catch((e) => {
    if (!opts.quiet) toast(e.message || `${cmd} failed`);
    throw e;
  });
}

export function onMessage(s, data) {
  if (s !== conn.cur || typeof data !== 'string') return;
  let m;
  try { m = JSON.parse(data); } catch (e) { console.warn('rtcam: bad control message', data.slice(0, 200)); return; }
  if (!m || typeof m !== 'object') return;
  if (typeof m.event === 'string') { emit(m.event, m); return; }
  if (!('ok' in m)) return; // unknown message: ignore
  const p = typeof m.id === 'number' ? s.pending.get(m.id) : null;
  if (!p) {
    if (!m.ok) console.warn('rtcam: control error', m.error);
    return;
  }
  s.pending.delete(m.id);
  clearTimeout(p.timer);
  if (m.ok) p.resolve(m.result || {});
  else p.reject(rpcError((m.error && m.error.code) || 'error', (m.error && m.error.message) || 'request failed'));
}

// Pings once a second while session `s` is current: rtcam.pingRtt, rtcam.pingsAnswered.
export function startPings(s) {
  const ping = () => {
    if (s !== conn.cur || s.closed) return;
    const t = performance.now();
    send('ping', { t }).then(() => {
      if (s !== conn.cur) return;
      rtcam.pingRtt = round1(performance.now() - t);
      rtcam.pingsAnswered++;
    }, () => {});
  };
  ping();
  s.timers.push(setInterval(ping, PING_EVERY_MS));
}

// Session `s` is closing: every command still waiting for its answer fails.
export function rejectPending(s) {
  for (const p of s.pending.values()) {
    clearTimeout(p.timer);
    p.reject(rpcError('closed', 'the connection closed'));
  }
  s.pending.clear();
}
