// The numbers: what the browser's getStats says about the stream, the device's status
// events, and the stats panel that shows both.

import { $, rtcam, round1 } from './state.js';

export const fmt = {
  n: (v, unit = '', d = 0) => (v == null || Number.isNaN(v) ? '–' : v.toFixed(d) + unit),
  rate: (kbps) => (kbps == null ? '–' : kbps >= 1000 ? (kbps / 1000).toFixed(2) + ' Mb/s' : kbps + ' kb/s'),
  uptime: (s) => (s == null ? '–' : s < 3600 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s`
    : s < 86400 ? `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m` : `${Math.floor(s / 86400)}d${Math.floor(s / 3600) % 24}h`),
};

// Takes a getStats report of session `s` into `rtcam` (round trip, fps, bitrate, jitter
// buffer, frame counts, codec, size). Keeps what the next report is compared with in the
// session: the previous inbound-rtp entry, and `lastFrames`/`lastProgress` for the stall
// watchdog. Returns whether the report had the video's inbound-rtp entry.
export function collectStats(s, report, now) {
  let inbound = null, transport = null, pair = null;
  report.forEach((r) => {
    if (r.type === 'inbound-rtp' && (r.kind || r.mediaType) === 'video') inbound = r;
    else if (r.type === 'transport') transport = r;
  });
  if (transport && transport.selectedCandidatePairId) pair = report.get(transport.selectedCandidatePairId);
  if (!pair) report.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r; });
  if (pair && pair.currentRoundTripTime != null) rtcam.rttMs = round1(pair.currentRoundTripTime * 1000);
  // Which ICE session carries the media: after a restart, the new ufrag once the new path is in use.
  const local = pair && pair.localCandidateId && report.get(pair.localCandidateId);
  if (local && local.usernameFragment) rtcam.iceUfrag = local.usernameFragment;

  if (!inbound) return false;
  const prev = s.prevInbound;
  if (prev && inbound.timestamp > prev.timestamp) {
    const dt = (inbound.timestamp - prev.timestamp) / 1000;
    rtcam.fps = round1(((inbound.framesDecoded || 0) - (prev.framesDecoded || 0)) / dt);
    rtcam.bitrateKbps = Math.round(((inbound.bytesReceived || 0) - (prev.bytesReceived || 0)) * 8 / dt / 1000);
    const emitted = (inbound.jitterBufferEmittedCount || 0) - (prev.jitterBufferEmittedCount || 0);
    if (emitted > 0) rtcam.jitterBufferMs = round1(((inbound.jitterBufferDelay || 0) - (prev.jitterBufferDelay || 0)) / emitted * 1000);
  }
  s.prevInbound = inbound;
  rtcam.statsAt = now;
  const decoded = inbound.framesDecoded || 0;
  if (decoded > s.lastFrames) { s.lastFrames = decoded; s.lastProgress = now; }
  rtcam.framesDecoded = decoded;
  rtcam.framesDropped = inbound.framesDropped || 0;
  rtcam.packetsLost = Math.max(0, inbound.packetsLost || 0);
  if (inbound.frameWidth) { rtcam.width = inbound.frameWidth; rtcam.height = inbound.frameHeight; }
  const codec = inbound.codecId && report.get(inbound.codecId);
  if (codec && codec.mimeType) rtcam.codec = codec.mimeType;
  return true;
}

// The device's `{"event": "status"}`, once a second.
export function deviceStatus(m) {
  rtcam.device = { fps: m.fps, bitrate_kbps: m.bitrate_kbps, viewers: m.viewers, cpu_load: m.cpu_load,
    soc_temp_c: m.soc_temp_c, uptime_s: m.uptime_s };
  // This viewer's own link, as the device sees it: estimate, encoding, temporal layers.
  rtcam.link = m.link || null;
  if (!$('stats').hidden) renderStats();
}

const cells = {};
for (const k of ['res', 'codec', 'fps', 'rate', 'link', 'sent', 'rtt', 'ping', 'dec', 'drop', 'lost', 'jb', 'lat', 'ttff',
  'viewers', 'cpu', 'temp', 'up']) cells[k] = $('s-' + k);

export function renderStats() {
  const r = rtcam, d = r.device || {};
  const set = (k, v) => { if (cells[k].textContent !== v) cells[k].textContent = v; };
  set('res', r.width ? `${r.width}×${r.height}` : '–');
  set('codec', r.codec ? r.codec.replace(/^video\//, '') : '–');
  set('fps', fmt.n(r.fps, '', 1));
  set('rate', fmt.rate(r.bitrateKbps));
  const l = r.link;
  set('link', l && l.estimate_kbps != null ? fmt.rate(l.estimate_kbps) : '–');
  // 3 layers: all frames, every second, every fourth.
  const share = l && l.layers ? ['¼', '½', 'all'][Math.min(l.layers, 3) - 1] : null;
  set('sent', l && l.encoding ? `${l.encoding}, ${share} fps` : '–');
  set('rtt', fmt.n(r.rttMs, ' ms', 1));
  set('ping', fmt.n(r.pingRtt, ' ms', 1));
  set('dec', r.connectionSeq ? String(r.framesDecoded) : '–');
  set('drop', String(r.framesDropped));
  set('lost', String(r.packetsLost));
  set('jb', fmt.n(r.jitterBufferMs, ' ms', 0));
  set('lat', fmt.n(r.stampAgeMs, ' ms', 0));
  set('ttff', fmt.n(r.firstFrameMs, ' ms', 0));
  set('viewers', d.viewers == null ? '–' : String(d.viewers));
  set('cpu', d.cpu_load == null ? '–' : Math.round(d.cpu_load * 100) + ' %');
  set('temp', fmt.n(d.soc_temp_c, ' °C', 1));
  set('up', fmt.uptime(d.uptime_s));
}
