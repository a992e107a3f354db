// WHEP's PATCH (RFC 8840 SDP fragments): the page's ICE candidates trickled to the server as
// they are gathered, and the exchange of an ICE restart. The resource's ETag names the ICE
// session: trickles carry it in If-Match (a stale one gets 412: those candidates were for an
// earlier session), a restart sends `If-Match: *` and gets the next tag. whep.js decides
// when to restart; this module only speaks the protocol.
//
// Per session `s` (whep.js): `s.resource` (the PATCH URL), `s.closed`, and `s.ice`, made by
// newIce(). The server learns our address from the connectivity checks anyway, so trickle is
// an optimisation: a failed trickle is counted and dropped, never fatal.

import { rtcam } from './state.js';
import { withAuth } from './auth.js';

const FRAG = 'application/trickle-ice-sdpfrag';
const TRICKLE_TIMEOUT_MS = 5000;
const RESTART_TIMEOUT_MS = 4000; // the server drops a viewer silent for 5 s

// A server that answers PATCH with 405 (an rtcam from before PATCH) or 501 (a proxy) will not
// learn to in this page's life: no trickling, and network changes go to a new session.
let unsupported = false;

export class PatchError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status;
  }
}

export function newIce() {
  return {
    etag: null,      // of the current ICE session; null until the 201 (and while restarting)
    ufrag: null,     // our current ICE ufrag: candidates of an earlier one are dropped
    queue: [],       // 'a=candidate:...' lines not sent yet
    end: false,      // gathering is complete: a=end-of-candidates is due
    endSent: false,
    busy: false,     // a PATCH is in flight (trickles go one at a time, batched)
    off: false,      // the server cannot take PATCH
    creds: null,     // {ufrag, pwd} of the restart under way
  };
}

// Whether ICE restarts can be asked of this session's server.
export function canPatch(s) {
  return !unsupported && !s.ice.off && !!s.resource && !!s.ice.ufrag;
}

// The RTCPeerConnection's `icecandidate`: queued, and sent when the ETag is known. A null or
// empty candidate ends the current generation's gathering.
export function localCandidate(s, c) {
  const ice = s.ice;
  if (ice.off) return; // nobody to send them to: the queue would only grow
  if (!c || !c.candidate) {
    ice.end = true;
  } else {
    if (c.usernameFragment && ice.ufrag && c.usernameFragment !== ice.ufrag) return;
    ice.queue.push('a=' + c.candidate.replace(/^a=/, ''));
  }
  flush(s);
}

// The offer waited for gathering and carries every candidate: nothing is left to trickle
// until an ICE restart starts a new generation.
export function candidatesInOffer(s) {
  s.ice.queue = [];
  s.ice.end = s.ice.endSent = true;
}

// The 201 came: from here on candidates go out. Without an ETag the server is not one that
// takes PATCH.
export function startTrickle(s, etag, localSdp) {
  s.ice.ufrag = sdpValue(localSdp, 'ice-ufrag');
  if (unsupported) { markUnsupported(s.ice); return; }
  if (!etag) { s.ice.off = true; s.ice.queue = []; rtcam.trickle = 'off'; return; }
  s.ice.etag = etag;
  rtcam.etag = etag;
  rtcam.trickle = s.ice.endSent ? 'in-offer' : 'on';
  flush(s);
}

// Sends what is queued, one PATCH at a time: candidates that arrive while one is in flight
// go together in the next.
async function flush(s) {
  const ice = s.ice;
  while (!ice.busy && !ice.off && !unsupported && !s.closed && ice.etag && s.resource &&
         (ice.queue.length || (ice.end && !ice.endSent))) {
    const lines = ice.queue.splice(0);
    const end = ice.end;
    const etag = ice.etag;
    ice.busy = true;
    let status = 0;
    try {
      status = (await patch(s.resource, etag, fragment(s, lines, end), TRICKLE_TIMEOUT_MS)).status;
    } catch (e) { /* network error or timeout: dropped, see below */ }
    ice.busy = false;
    if (s.closed) return;
    if (status === 204 || status === 200) {
      rtcam.patches++;
      rtcam.candidatesSent += lines.length;
      if (end && ice.etag === etag) ice.endSent = true;
    } else if (status === 405 || status === 501) {
      markUnsupported(ice);
    } else {
      // 412: a restart moved on meanwhile (these were stale). 404: the session is ending.
      // Anything else: the server found our address from the checks anyway.
      rtcam.patchErrors++;
      if (end && ice.etag === etag) ice.endSent = true; // no retry loop on a refused end
    }
  }
}

// An ICE restart, step 1: called with the offer of the page's restartIce() + createOffer(),
// before setLocalDescription starts the new generation's gathering. Trickling pauses until
// the server's new ETag is known; candidates of the old generation are dropped.
export function beginRestart(s, offerSdp) {
  const ice = s.ice;
  ice.creds = { ufrag: sdpValue(offerSdp, 'ice-ufrag'), pwd: sdpValue(offerSdp, 'ice-pwd') };
  ice.etag = null;
  ice.ufrag = ice.creds.ufrag;
  ice.queue = [];
  ice.end = ice.endSent = false;
}

// Step 2, after setLocalDescription: the PATCH with our new credentials and the candidates
// gathered so far. Resolves with the remote description to apply (`answer` with the server's
// new credentials and candidates), or throws a PatchError.
export async function restartExchange(s, answer) {
  const ice = s.ice;
  const { ufrag, pwd } = ice.creds || {};
  if (!ufrag || !pwd) throw new PatchError('the restart offer has no ICE credentials');
  const lines = ice.queue.splice(0);
  const end = ice.end;
  const body = `a=ice-ufrag:${ufrag}\r\na=ice-pwd:${pwd}\r\n` + fragment(s, lines, end);
  let res;
  try {
    res = await patch(s.resource, '*', body, RESTART_TIMEOUT_MS);
  } catch (e) {
    throw new PatchError(e && e.name === 'AbortError' ? 'no answer in time' : 'server unreachable');
  }
  if (res.status === 405 || res.status === 501) markUnsupported(ice);
  if (res.status !== 200) throw new PatchError(`HTTP ${res.status}`, res.status);
  const theirs = parseFragment(res.text);
  if (!theirs.ufrag || !theirs.pwd) throw new PatchError('the answer has no ICE credentials');
  const etag = res.headers.get('ETag');
  if (!etag) throw new PatchError('the answer has no ETag');
  if (ice.ufrag !== ufrag) throw new PatchError('superseded by another restart');
  ice.etag = etag;
  rtcam.etag = etag;
  rtcam.candidatesSent += lines.length;
  if (end) ice.endSent = true;
  flush(s); // the new generation's candidates gathered during the exchange
  return answerAfterRestart(answer, theirs);
}

function markUnsupported(ice) {
  unsupported = true;
  ice.off = true;
  ice.queue = [];
  rtcam.trickle = 'unsupported';
}

function fragment(s, lines, end) {
  const sdp = (s.pc && s.pc.localDescription && s.pc.localDescription.sdp) || '';
  const mline = /^m=(\S+) \d+ (\S+) (.*)$/m.exec(sdp);
  // The bundle's first m-line and mid (RFC 8840 §4.4); with max-bundle there is one transport.
  let out = mline ? `m=${mline[1]} 9 ${mline[2]} ${mline[3].trim()}\r\n` : 'm=video 9 UDP/TLS/RTP/SAVPF 0\r\n';
  out += `a=mid:${sdpValue(sdp, 'mid') || '0'}\r\n`;
  for (const l of lines) out += l + '\r\n';
  if (end) out += 'a=end-of-candidates\r\n';
  return out;
}

async function patch(url, ifMatch, body, timeoutMs) {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, {
      method: 'PATCH', body, cache: 'no-store', signal: ctl.signal,
      headers: withAuth({ 'Content-Type': FRAG, 'If-Match': ifMatch }),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  } finally {
    clearTimeout(timer);
  }
}

// The first `a=<name>:` value of an SDP or fragment.
function sdpValue(sdp, name) {
  const m = new RegExp(`^a=${name}:(\\S+)`, 'm').exec(sdp || '');
  return m ? m[1] : null;
}

function parseFragment(text) {
  return {
    ufrag: sdpValue(text, 'ice-ufrag'),
    pwd: sdpValue(text, 'ice-pwd'),
    candidates: (text.match(/^a=candidate:.*$/gm) || []).map((l) => l.trim()),
  };
}

// WHEP renegotiates nothing but ICE: the server's side after a restart is its earlier answer
// with the new credentials and candidates in place of the old ones (as the Rust client's
// answer_after_restart does).
export function answerAfterRestart(answer, theirs) {
  const out = [];
  let placed = false;
  for (const line of answer.split(/\r?\n/)) {
    if (line.startsWith('a=candidate:') || line === 'a=end-of-candidates') {
      if (!placed) { out.push(...theirs.candidates, 'a=end-of-candidates'); placed = true; }
    } else if (line.startsWith('a=ice-ufrag:')) {
      out.push('a=ice-ufrag:' + theirs.ufrag);
    } else if (line.startsWith('a=ice-pwd:')) {
      out.push('a=ice-pwd:' + theirs.pwd);
    } else if (line) {
      out.push(line);
    }
  }
  return out.join('\r\n') + '\r\n';
}
