// Drives the viewer page in headless Chromium against a running rtcam:
//   node page-test.mjs http://127.0.0.1:PORT/
// Prints one JSON line with the results; exits 0 on success, 1 on failure (the reason and the
// browser console go to stderr). Screenshots go to artifacts/ (desktop and phone viewports).
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, openPage, waitInPage, snapshot } from './lib.mjs';

const url = process.argv[2];
if (!url) {
  console.error('usage: node page-test.mjs <url of rtcam>');
  process.exit(2);
}
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const WAIT = 60_000;

const result = { ok: false };
let page = null;
let log = [];
mkdirSync(ARTIFACTS, { recursive: true });
let browser = null;

function check(cond, what) {
  if (!cond) throw new Error(what);
}

try {
  browser = await launch();
  ({ page, log } = await openPage(browser.context, url));

  // 1. A connection that plays H.264 and answers pings.
  await waitInPage(page, 'connected, 30 frames decoded, H.264, a ping answered', () => {
    const r = window.rtcam;
    return r && r.connected && r.framesDecoded >= 30 && /h264/i.test(r.codec || '') &&
      typeof r.pingRtt === 'number' && r.pingsAnswered >= 1 && r.state === 'live';
  }, null, WAIT);
  Object.assign(result, await snapshot(page));

  // 1b. The device tells this viewer about its own link: an estimate from Chromium's
  // congestion-control feedback, and the encoding and layers it is sent (all, on a loopback).
  const link = await waitInPage(page, 'the status event carries this viewer\'s link', () => {
    const l = window.rtcam.link;
    return l && typeof l.estimate_kbps === 'number' && l.estimate_kbps > 0 ? l : null;
  }, null, WAIT);
  check(link.encoding === 'main' && link.layers === 3, `link on loopback: ${JSON.stringify(link)}`);
  result.link = link;

  // 1c. Trickle ICE: the offer went out before gathering ended, and the candidates followed
  // by PATCH with the resource's ETag; the server took them (204), ending with
  // a=end-of-candidates. (Chromium's host candidates are mDNS names, which rtcam skips: the
  // media path itself comes from the connectivity checks.)
  const trickled = await waitInPage(page, 'trickled candidates taken by the server (PATCH 204)', () => {
    const r = window.rtcam;
    return r.trickle === 'on' && r.patches >= 1 && r.etag ? { trickle: r.trickle, patches: r.patches,
      patchErrors: r.patchErrors, candidatesSent: r.candidatesSent, etag: r.etag } : null;
  }, null, WAIT);
  check(trickled.patchErrors === 0, `trickle PATCHes refused: ${JSON.stringify(trickled)}`);
  result.trickled = trickled;

  // 1d. ICE servers from Link headers (rtcam announces none on a LAN): the page's own parser.
  const links = await page.evaluate(async () => {
    const m = await import(new URL('ice-servers.js', location.href).href);
    return m.iceServersFromLinks('<stun:stun.example.net:3478>; rel="ice-server", ' +
      '<turn:turn.example.net:3478?transport=udp>; rel="ice-server"; username="1700000000:viewer"; ' +
      'credential="abc+/=,x"; credential-type="password", <https://example.net/>; rel="next", ' +
      '<turn:no-credentials.example.net>; rel="ice-server"');
  });
  check(JSON.stringify(links) === JSON.stringify([
    { urls: 'stun:stun.example.net:3478' },
    { urls: 'turn:turn.example.net:3478?transport=udp', username: '1700000000:viewer', credential: 'abc+/=,x' },
  ]), `Link headers parsed as ${JSON.stringify(links)}`);

  // 2. The RPC helper: a command with a result, an unknown command rejected with its code.
  const rpc = await page.evaluate(async () => {
    const status = await window.rtcam.send('status');
    const pong = await window.rtcam.send('ping', { t: 42 });
    let unknown = null;
    try { await window.rtcam.send('no-such-command'); } catch (e) { unknown = e.code; }
    const keyframe = await window.rtcam.send('keyframe');
    return { status, pong, unknown, keyframe };
  });
  check(rpc.pong.t === 42, `ping did not echo t: ${JSON.stringify(rpc.pong)}`);
  check(rpc.unknown === 'unknown_command', `unknown command gave ${rpc.unknown}`);
  check(rpc.status && rpc.status.width > 0, `status result: ${JSON.stringify(rpc.status)}`);
  result.status = rpc.status;

  // 3. The stamp reader: on a synthetic picture (exact), then on the live video. The
  // geometry, CRC and decoder are the page's own (src/web/stamp.js, imported as the page
  // imports it); only the drawing of the cells is the test's.
  const synthetic = await page.evaluate(async () => {
    const stamp = await import(new URL('stamp.js', location.href).href);
    const r = window.rtcam;
    if (r.decodeStamp !== stamp.decodeStamp || r.crc16 !== stamp.crc16) return { notTheModule: true };
    const make = (w, seq, us, corrupt) => {
      const { c, perRow, rows } = stamp.stampGeometry(w);
      const bytes = new Uint8Array(14), dv = new DataView(bytes.buffer);
      dv.setUint32(0, seq);
      dv.setUint32(4, Math.floor(us / 4294967296));
      dv.setUint32(8, us % 4294967296);
      dv.setUint16(12, stamp.crc16(bytes, 12));
      if (corrupt) bytes[5] ^= 0x10;
      const h = rows * c, data = new Uint8ClampedArray(w * h * 4);
      for (let i = 0; i < stamp.STAMP_BITS; i++) {
        const v = (bytes[i >> 3] >> (7 - (i & 7))) & 1 ? 235 : 16;
        const x0 = (i % perRow) * c, y0 = Math.floor(i / perRow) * c;
        for (let y = y0; y < y0 + c; y++) for (let x = x0; x < x0 + c; x++) {
          const o = (y * w + x) * 4;
          data[o] = data[o + 1] = data[o + 2] = v; data[o + 3] = 255;
        }
      }
      return stamp.decodeStamp({ data, width: w, height: h }, w);
    };
    const us = Date.now() * 1000 + 123;
    return {
      vga: make(640, 4000000000, us),
      small: make(320, 7, us),
      odd: make(1280, 1, 2 ** 52 + 5),
      corrupt: make(640, 1, us, true),
      us,
    };
  });
  check(!synthetic.notTheModule, 'window.rtcam.decodeStamp/crc16 are not those of stamp.js');
  check(synthetic.vga && synthetic.vga.seq === 4000000000 && synthetic.vga.captureUs === synthetic.us,
    `synthetic 640 stamp: ${JSON.stringify(synthetic)}`);
  check(synthetic.small && synthetic.small.seq === 7 && synthetic.small.captureUs === synthetic.us,
    `synthetic 320 stamp: ${JSON.stringify(synthetic)}`);
  check(synthetic.odd && synthetic.odd.captureUs === 2 ** 52 + 5, `synthetic 1280 stamp: ${JSON.stringify(synthetic)}`);
  check(synthetic.corrupt === null, 'a stamp with a wrong CRC was accepted');

  const stamps = await waitInPage(page, 'two readable frame stamps', async () => {
    const a = window.rtcam.readStamp();
    await new Promise((r) => setTimeout(r, 300));
    const b = window.rtcam.readStamp();
    return a && b && b.seq > a.seq ? { a, b, now: Date.now() } : null;
  }, null, 20_000);
  const ageMs = stamps.now - stamps.b.captureUs / 1000;
  check(Math.abs(ageMs) < 60_000, `stamp capture time is ${ageMs} ms away from the page's clock`);
  result.stamp = stamps.b;
  const lat = await page.evaluate(() => window.rtcam.stampLatencies(2000));
  check(lat.length > 0, 'stampLatencies gave no samples in 2 s');
  result.stampLatencySamples = lat.length;
  result.stampLatencyMedianMs = [...lat].sort((x, y) => x - y)[Math.floor(lat.length / 2)];

  // 4. Screenshots: desktop, then a phone in portrait.
  await page.waitForTimeout(1500); // a couple of stats updates
  await page.screenshot({ path: join(ARTIFACTS, 'page.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(1200);
  await page.screenshot({ path: join(ARTIFACTS, 'page-phone.png') });
  await page.setViewportSize({ width: 1280, height: 720 });

  // 4b. An ICE restart mid-stream (what a network change does): the same WHEP resource and
  // connection (no new POST), a new ETag, the media moved to the new ICE session (our new
  // ufrag on the candidate pair in use), and frames keep coming.
  const pre = await waitInPage(page, 'the candidate pair in use in the stats', () => {
    const r = window.rtcam;
    return r.iceUfrag && r.state === 'live' ? { ...r } : null;
  }, null, WAIT);
  const restartStart = Date.now();
  const restarted = await page.evaluate(() => window.rtcam.restartIce());
  const answeredMs = Date.now() - restartStart;
  check(restarted === true, 'restartIce() did not get through (see the console)');
  await waitInPage(page, 'the media on the new ICE session', (pre) => {
    const r = window.rtcam;
    return r.iceRestarts === pre.iceRestarts + 1 && r.iceUfrag !== pre.iceUfrag;
  }, pre, WAIT);
  const movedMs = Date.now() - restartStart; // to within the page's 1 s stats period
  const post = await waitInPage(page, '30 more frames after restartIce()', (pre) => {
    const r = window.rtcam;
    return r.connected && r.state === 'live' && r.framesDecoded >= pre.framesDecoded + 30 ? { ...r } : null;
  }, pre, WAIT);
  check(post.connectionSeq === pre.connectionSeq && post.reconnects === pre.reconnects,
    `the restart made a new connection: seq ${pre.connectionSeq} → ${post.connectionSeq}`);
  check(post.resource === pre.resource, `the resource changed: ${pre.resource} → ${post.resource}`);
  check(post.etag && post.etag !== pre.etag, `the ETag did not change: ${pre.etag} → ${post.etag}`);
  // Trickles after the restart carry the new ETag: none refused as stale.
  check(post.patchErrors === 0, `${post.patchErrors} trickle PATCHes refused around the restart`);
  const frames = await waitInPage(page, 'frames still coming after the restart', async () => {
    const a = window.rtcam.framesDecoded;
    await new Promise((r) => setTimeout(r, 1500));
    return window.rtcam.framesDecoded > a ? window.rtcam.framesDecoded : null;
  }, null, 20_000);
  const restartViewers = (await page.evaluate(() => window.rtcam.send('status'))).viewers;
  check(restartViewers === 1, `the server counts ${restartViewers} viewers after the restart`);
  result.iceRestart = {
    etagBefore: pre.etag, etagAfter: post.etag, ufragBefore: pre.iceUfrag, ufragAfter: post.iceUfrag,
    connectionSeq: post.connectionSeq, framesDecoded: frames, patches: post.patches,
    answeredMs, mediaOnNewSessionMs: movedMs,
  };

  // 5. A fresh connection: the old one is deleted, a new one plays.
  const before = await snapshot(page);
  await page.evaluate(() => window.rtcam.reconnect());
  const after = await waitInPage(page, 'frames on a new connection after reconnect()', (seq) => {
    const r = window.rtcam;
    return r.connectionSeq > seq && r.connected && r.framesDecoded >= 10 && r.state === 'live' &&
      typeof r.pingRtt === 'number' ? { ...r } : null;
  }, before.connectionSeq, WAIT);
  check(after.reconnects === before.reconnects + 1, `reconnects went ${before.reconnects} → ${after.reconnects}`);
  const viewers = await waitInPage(page, 'the server to count one viewer after reconnect()', async () => {
    const s = await window.rtcam.send('status');
    return s.viewers === 1 ? s.viewers : null;
  }, null, 15_000);
  result.reconnect = {
    reconnects: after.reconnects,
    connectionSeq: after.connectionSeq,
    framesDecoded: after.framesDecoded,
    firstFrameMs: after.firstFrameMs,
    viewers,
  };

  // 6. A network change ('online'; navigator.connection 'change' takes the same path)
  // restarts ICE on the session of the moment, again without a new POST.
  const beforeOnline = await snapshot(page);
  await page.evaluate(() => window.dispatchEvent(new Event('online')));
  const online = await waitInPage(page, 'an ICE restart after an online event', (pre) => {
    const r = window.rtcam;
    return r.iceRestarts === 1 && r.iceUfrag !== pre.iceUfrag && r.etag !== pre.etag &&
      r.framesDecoded >= pre.framesDecoded + 10 ? { ...r } : null;
  }, beforeOnline, WAIT);
  check(online.connectionSeq === beforeOnline.connectionSeq, 'the online event made a new connection');

  // 7. A server that refuses PATCH (an rtcam from before it: 405): the restart falls back to
  // a new session, which no longer trickles.
  await page.route('**/whep/*', (route) => (route.request().method() === 'PATCH'
    ? route.fulfill({ status: 405, headers: { Allow: 'DELETE' }, body: 'method not allowed' })
    : route.continue()));
  // Its OPTIONS announces a STUN server (unreachable: host candidates still carry the media).
  await page.route('**/whep', (route) => (route.request().method() === 'OPTIONS'
    ? route.fulfill({ status: 204, headers: { Link: '<stun:127.0.0.1:9>; rel="ice-server", </x>; rel="next"' } })
    : route.continue()));
  const beforeOld = await snapshot(page);
  const refused = await page.evaluate(() => window.rtcam.restartIce());
  check(refused === false, 'restartIce() reported success against a server without PATCH');
  const fallback = await waitInPage(page, 'a new session after the refused restart', (seq) => {
    const r = window.rtcam;
    return r.connectionSeq > seq && r.state === 'live' && r.framesDecoded >= 10 ? { ...r } : null;
  }, beforeOld.connectionSeq, WAIT);
  check(fallback.trickle === 'unsupported' && fallback.patches === 0,
    `the new session still trickles: ${fallback.trickle}, ${fallback.patches} patches`);
  check(JSON.stringify(fallback.iceServers) === '["stun:127.0.0.1:9"]',
    `ICE servers from OPTIONS: ${JSON.stringify(fallback.iceServers)}`);
  await page.unroute('**/whep/*');
  await page.unroute('**/whep');
  result.fallback = { connectionSeq: fallback.connectionSeq, trickle: fallback.trickle, lastError: fallback.lastError };

  // 8. ICE servers on the 201 (fresher credentials than those of the OPTIONS) replace them.
  await page.route('**/whep', async (route) => {
    if (route.request().method() !== 'POST') return route.continue();
    const response = await route.fetch();
    return route.fulfill({ response, headers: { ...response.headers(),
      link: '<turn:127.0.0.1:9?transport=udp>; rel="ice-server"; username="1700000000:viewer"; credential="abc+/="' } });
  });
  const beforeLinked = await snapshot(page);
  await page.evaluate(() => window.rtcam.reconnect());
  const linked = await waitInPage(page, 'a session with the ICE servers of the 201', (seq) => {
    const r = window.rtcam;
    return r.connectionSeq > seq && r.state === 'live' && r.framesDecoded >= 10 ? { ...r } : null;
  }, beforeLinked.connectionSeq, WAIT);
  check(JSON.stringify(linked.iceServers) === '["turn:127.0.0.1:9?transport=udp"]',
    `ICE servers from the 201: ${JSON.stringify(linked.iceServers)}`);
  await page.unroute('**/whep');

  // 9. Without trickle (?trickle=off, as players that do not trickle): the offer waits for
  // gathering and carries its candidates; no PATCH goes out, and it plays.
  const plain = new URL(url);
  plain.searchParams.set('trickle', 'off');
  const offers = [];
  const { page: noTrickle } = await openPage(browser.context, plain.href);
  noTrickle.on('request', (r) => {
    if (r.method() === 'POST' && /\/whep$/.test(new URL(r.url()).pathname)) offers.push(r.postData() || '');
  });
  await noTrickle.evaluate(() => window.rtcam.reconnect());
  const gathered = await waitInPage(noTrickle, 'a session whose offer carried its candidates', () => {
    const r = window.rtcam;
    return r.trickle === 'in-offer' && r.state === 'live' && r.framesDecoded >= 10 ? { ...r } : null;
  }, null, WAIT);
  check(offers.length >= 1 && /^a=candidate:/m.test(offers.at(-1)),
    `the offer without trickle lacks its candidates: ${offers.at(-1)}`);
  check(gathered.patches === 0 && gathered.patchErrors === 0,
    `PATCHes without trickle: ${gathered.patches} sent, ${gathered.patchErrors} refused`);
  result.noTrickle = { trickle: gathered.trickle, framesDecoded: gathered.framesDecoded };
  await noTrickle.close();

  result.ok = true;
  console.log(JSON.stringify(result));
} catch (e) {
  result.ok = false;
  result.error = String(e && e.message ? e.message : e);
  if (page) {
    await page.screenshot({ path: join(ARTIFACTS, 'failure.png') }).catch(() => {});
    result.page = await snapshot(page).catch(() => null);
  }
  console.log(JSON.stringify(result));
  console.error(`page test FAILED: ${result.error}`);
  console.error('--- browser console ---');
  for (const line of log) console.error(line);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
}
