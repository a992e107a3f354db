// What the page's modules share: the public state (`window.rtcam`), the event bus, the
// connection of the moment, and small helpers. Imports nothing.

export const $ = (id) => document.getElementById(id);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const round1 = (x) => Math.round(x * 10) / 10;

// ---------------------------------------------------------------------------------------
// Public state, for the UI, tests and benchmarks. Per-connection fields are reset by each
// new connection; `reconnects` and `lastError` carry over. main.js puts it on `window.rtcam`
// with the page's functions.
// ---------------------------------------------------------------------------------------
export const rtcam = {
  state: 'connecting',      // connecting | live | reconnecting | error
  reason: null,             // why we are reconnecting / in error
  connected: false,         // ICE+DTLS connected right now
  connectionSeq: 0,         // 1 for the first connection, +1 for every new one
  reconnects: 0,
  lastError: null,
  resource: null,           // the WHEP resource (Location) of the current connection
  etag: null,               // its ETag: names the ICE session, changes with each ICE restart
  trickle: null,            // 'on' | 'in-offer' (?trickle=off: the offer waited for gathering) | 'off' (no ETag on the 201) | 'unsupported' (PATCH refused)
  patches: 0,               // trickle PATCHes the server took (204)
  patchErrors: 0,           // trickle PATCHes refused or lost (412 after a restart, network)
  candidatesSent: 0,        // local candidates sent by PATCH
  iceRestarts: 0,           // ICE restarts answered and applied on this connection
  iceServers: [],           // STUN/TURN URLs from the endpoint's Link headers
  iceUfrag: null,           // our ufrag on the candidate pair in use (getStats)
  framesDecoded: 0,
  framesDropped: 0,
  packetsLost: 0,
  codec: null,              // e.g. "video/H264"
  width: 0,
  height: 0,
  fps: null,
  bitrateKbps: null,
  rttMs: null,              // ICE candidate-pair round trip
  jitterBufferMs: null,
  pingRtt: null,            // control-channel ping round trip, ms
  pingsAnswered: 0,
  firstFrameMs: null,       // POST start → first decoded frame
  stampAgeMs: null,         // capture → now for the frame on screen (same clock needed)
  retryInMs: null,
  statsAt: null,            // performance.now() of the getStats that gave the numbers above
  // Control, from the device's `control` events (null until the channel's first event):
  role: null,               // 'control' | 'view': what this page's token allows
  label: null,              // how the device names this viewer to others ("viewer 3")
  controller: null,         // {held, by, by_you}
  canSteer: false,          // control role and holding control, channel open
  ptz: null,                // {position, limits, moving} or null without pan/tilt/zoom
  ptzStops: [],             // why motion stopped, as told by ptz events ('command', 'deadman', ...)
  movesSent: 0,             // ptz.move commands sent by the pad, keys and zoom buttons
  device: null,             // the last status event: fps, bitrate_kbps, viewers, cpu_load, ...
  link: null,               // this viewer's link from that event: estimate_kbps, encoding, layers, sent_kbps
  stream: null,             // {width, height, fps, bitrate_kbps} as the device set it
  cameraControls: [],       // controls.list
  toasts: [],               // the last messages shown to the user (newest last)
};

// The connection of the moment, owned by whep.js and read by the modules that talk over it.
// `cur` is the live Session (null between attempts): a callback holding an older session
// compares it with `conn.cur` and gives up when they differ. `retryAt` is the
// performance.now() of the next attempt while one is scheduled, else 0.
export const conn = { cur: null, retryAt: 0 };

// Listeners for device events pushed on the control channel ({"event": "...", ...}) and for
// the page's own 'state' changes. `rtcam.on(name, fn)` returns an unsubscribe function;
// name '*' gets everything.
const listeners = new Map();
export function on(name, fn) {
  if (!listeners.has(name)) listeners.set(name, new Set());
  listeners.get(name).add(fn);
  return () => listeners.get(name).delete(fn);
}
export function emit(name, detail) {
  for (const key of [name, '*']) {
    for (const fn of listeners.get(key) || []) {
      try { fn(detail, name); } catch (e) { console.error('rtcam: listener failed', e); }
    }
  }
}
