// STUN/TURN servers as the WHEP endpoint announces them (draft-ietf-wish-whep, as WHIP, RFC
// 9725 §4.6): `Link: <turn:host:3478?transport=udp>; rel="ice-server"; username="u";
// credential="p"; credential-type="password"` on `OPTIONS /whep` and on the 201. Without any,
// the page connects with no ICE servers (host candidates: a LAN).

import { withAuth } from './auth.js';

const OPTIONS_TIMEOUT_MS = 2000; // a slow or silent OPTIONS must not hold up the viewer

// A Link header value as `fetch` gives it (several headers joined with ", ") → the
// RTCIceServer entries of its rel="ice-server" links. Links browsers would refuse (a scheme
// other than stun/stuns/turn/turns, a TURN server without credentials) are left out, so one
// bad link cannot stop the RTCPeerConnection from being created.
export function iceServersFromLinks(header) {
  const out = [];
  for (const link of splitOutside(header || '', ',')) {
    const m = /^\s*<([^>]*)>(.*)$/s.exec(link);
    if (!m) continue;
    const params = {};
    for (const p of splitOutside(m[2], ';')) {
      const kv = /^\s*([^=\s]+)\s*(?:=\s*(.*?))?\s*$/s.exec(p);
      if (kv) params[kv[1].toLowerCase()] = unquote(kv[2] || '');
    }
    // rel may list several relation types.
    if (!(params.rel || '').toLowerCase().split(/\s+/).includes('ice-server')) continue;
    const urls = m[1].trim();
    const scheme = (/^([a-z]+):/i.exec(urls) || [])[1];
    if (!['stun', 'stuns', 'turn', 'turns'].includes((scheme || '').toLowerCase())) continue;
    const server = { urls };
    if (params.username != null) server.username = params.username;
    if (params.credential != null) server.credential = params.credential;
    if (/^turns?$/i.test(scheme) && (server.username == null || server.credential == null)) continue;
    out.push(server);
  }
  return out;
}

// Splits on `sep` where it is neither inside <...> nor inside a quoted string: a TURN URL
// has ';' and ',' may appear in a quoted credential.
function splitOutside(text, sep) {
  const parts = [];
  let cur = '', angle = false, quote = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === '\\' && i + 1 < text.length) { cur += c + text[++i]; continue; }
      if (c === '"') quote = false;
    } else if (angle) {
      if (c === '>') angle = false;
    } else if (c === '<') angle = true;
    else if (c === '"') quote = true;
    else if (c === sep) { parts.push(cur); cur = ''; continue; }
    cur += c;
  }
  if (cur.trim()) parts.push(cur);
  return parts;
}

function unquote(v) {
  const m = /^"((?:[^"\\]|\\.)*)"$/s.exec(v);
  return m ? m[1].replace(/\\(.)/gs, '$1') : v;
}

// OPTIONS on the WHEP endpoint, with the POST's auth (a server may hand TURN credentials only
// to viewers it knows). Any failure means no ICE servers: the LAN case still works.
// `signal` lets a torn-down session abort it.
export async function fetchIceServers(url, signal) {
  const ctl = new AbortController();
  const abort = () => ctl.abort();
  if (signal) signal.addEventListener('abort', abort);
  const timer = setTimeout(abort, OPTIONS_TIMEOUT_MS);
  try {
    const res = await fetch(url, { method: 'OPTIONS', headers: withAuth(), cache: 'no-store', signal: ctl.signal });
    return res.ok ? iceServersFromLinks(res.headers.get('Link')) : [];
  } catch (e) {
    return [];
  } finally {
    clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', abort);
  }
}
