// Steers the simulated pan/tilt/zoom camera from the viewer page in headless Chromium:
//   node control-test.mjs http://127.0.0.1:PORT/ CONTROL_TOKEN
// rtcam must run the test pattern with `test_pattern_drift = false`, so the picture moves only
// when the camera is steered. Prints one JSON line with the results; exits 0 on success, 1 on
// failure (the reason and both pages' consoles go to stderr). Screenshots go to artifacts/.
//
// What it checks, with real mouse and keyboard input (Playwright's, not synthetic events):
//   1. the page opened with the control token claims control by itself;
//   2. holding the pad's pan-right arrow moves the camera: the reported pan grows, and the
//      decoded picture is shifted by exactly as much as the camera's pan control says;
//   3. letting go stops it with ptz.stop (the device reports "stopped": "command", not the
//      dead-man), and the pan stays put afterwards;
//   4. arrow keys and the zoom button steer too, home goes home, the brightness slider and the
//      snapshot button work;
//   5. a page without the token is view-only: its claim gets `forbidden`, its controls are
//      disabled with a hint, and pressing its pad moves nothing; it follows control changes.
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, openPage, waitInPage, snapshot } from './lib.mjs';

const [url, token] = process.argv.slice(2);
if (!url || !token) {
  console.error('usage: node control-test.mjs <url of rtcam> <control token>');
  process.exit(2);
}
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), 'artifacts');
const WAIT = 60_000;
const ARCSEC_PER_TURN = 360 * 3600; // the simulated camera: one turn of pan = the picture width

const result = { ok: false };
const pages = {}; // name → {page, log}
mkdirSync(ARTIFACTS, { recursive: true });
let browser = null;

function check(cond, what) {
  if (!cond) throw new Error(what);
}

// ---- in the page ------------------------------------------------------------------------

// A signature of the picture on screen: per column, the mean luma of two horizontal bands
// (the colour bars, and the checkers and stripes below them). A pan shifts it sideways.
function pictureSignature() {
  const v = document.getElementById('video');
  const w = v.videoWidth, h = v.videoHeight;
  if (!w || !h || v.readyState < 2) return null;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(v, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data;
  const bands = [[0.28, 0.48], [0.72, 0.94]].map(([a, b]) => {
    const y0 = Math.floor(a * h), y1 = Math.floor(b * h), out = new Array(w).fill(0);
    for (let y = y0; y < y1; y++) {
      for (let x = 0, o = y * w * 4; x < w; x++, o += 4) out[x] += 0.299 * px[o] + 0.587 * px[o + 1] + 0.114 * px[o + 2];
    }
    return out.map((s) => Math.round(s / (y1 - y0) * 10) / 10);
  });
  return { w, h, bands };
}

// ---- in node ----------------------------------------------------------------------------

// Mean absolute difference between `after` and `before` shifted by s:
// after[x] vs before[(x + s) mod w], over both bands.
function sad(before, after, s) {
  let sum = 0, n = 0;
  for (let b = 0; b < before.bands.length; b++) {
    const p = before.bands[b], q = after.bands[b], w = p.length;
    for (let x = 0; x < w; x++) { sum += Math.abs(q[x] - p[(x + s) % w]); n++; }
  }
  return sum / n;
}

function bestShift(before, after) {
  let best = 0, bestSad = Infinity;
  for (let s = 0; s < before.w; s++) {
    const d = sad(before, after, s);
    if (d < bestSad) { best = s; bestSad = d; }
  }
  return { shift: best, sad: Math.round(bestSad * 100) / 100 };
}

// Where the pattern's window starts for a pan control value (as src/source/pattern.rs does it).
function windowX(panArcsec, w) {
  const dx = Math.trunc(panArcsec * w / ARCSEC_PER_TURN);
  return (((dx % w) + w) % w) & ~1;
}

// Waits until the picture stands still (two signatures 600 ms apart agree) and returns it.
async function stillPicture(page, what) {
  const deadline = Date.now() + WAIT;
  let prev = null;
  while (Date.now() < deadline) {
    const sig = await page.evaluate(pictureSignature);
    if (sig && prev && sig.w === prev.w && sad(prev, sig, 0) < 3) return sig;
    prev = sig;
    await page.waitForTimeout(600);
  }
  throw new Error(`the picture did not stand still (${what})`);
}

const rpc = (page, cmd, args = {}) => page.evaluate(([c, a]) => window.rtcam.send(c, a), [cmd, args]);
const rpcError = (page, cmd, args = {}) => page.evaluate(([c, a]) =>
  window.rtcam.send(c, a).then(() => null, (e) => e.code), [cmd, args]);
const panControl = async (page) => (await rpc(page, 'controls.get', { name: 'pan_absolute' })).value;

async function center(page, selector) {
  const box = await page.locator(selector).boundingBox();
  check(box, `${selector} is not on the page`);
  return { x: box.x + box.width / 2, y: box.y + box.height / 2 };
}

// Holds the mouse button down on `selector` for `ms` (real pointer input).
async function hold(page, selector, ms) {
  const p = await center(page, selector);
  await page.mouse.move(p.x, p.y);
  await page.mouse.down();
  await page.waitForTimeout(ms);
  const during = await page.evaluate(() => ({ ptz: window.rtcam.ptz, movesSent: window.rtcam.movesSent }));
  await page.mouse.up();
  return during;
}

// After a release: the device says motion stopped because of a ptz.stop ("command"). Returns
// every stop reported since `stopsBefore` (a starved browser could have let the dead-man stop
// it while held; that is reported, the last one must still be the command).
async function waitStopped(page, stopsBefore, what) {
  try {
    return await waitInPage(page, `${what}: a ptz event saying ptz.stop stopped the camera`, (n) => {
      const r = window.rtcam, stops = r.ptzStops.slice(n);
      return r.ptz && !r.ptz.moving && stops[stops.length - 1] === 'command' ? stops : null;
    }, stopsBefore, 20_000);
  } catch (e) {
    const seen = await page.evaluate((n) => ({ stops: window.rtcam.ptzStops.slice(n), ptz: window.rtcam.ptz }), stopsBefore);
    throw new Error(`${e.message}; stops reported: ${JSON.stringify(seen.stops)}, ptz: ${JSON.stringify(seen.ptz)}`);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(ARTIFACTS, name) });
}

try {
  browser = await launch();
  const control = pages.control = await openPage(browser.context, `${url}#token=${token}`);
  const page = control.page;

  // 1. It plays, and claims control by itself.
  await waitInPage(page, 'the control page to play and claim control', () => {
    const r = window.rtcam;
    return r && r.state === 'live' && r.framesDecoded >= 30 && r.role === 'control' &&
      r.controller && r.controller.by_you && r.canSteer && r.ptz && r.ptz.limits && r.ptz.limits.pan;
  }, null, WAIT);
  const ui = await page.evaluate(() => ({
    who: document.getElementById('who-text').textContent,
    padDisabled: document.getElementById('pad').getAttribute('aria-disabled'),
    releaseShown: !document.getElementById('release-btn').hidden,
    label: window.rtcam.label,
  }));
  check(ui.who === 'You have control' && ui.padDisabled === 'false' && ui.releaseShown,
    `the control page does not show control: ${JSON.stringify(ui)}`);
  result.label = ui.label;
  const limits = (await page.evaluate(() => window.rtcam.ptz.limits));

  // 2. Hold pan-right: the camera pans and the picture shifts.
  const before = await stillPicture(page, 'before panning');
  const pan0 = await panControl(page);
  const ptz0 = await rpc(page, 'ptz.get');
  const stops0 = await page.evaluate(() => window.rtcam.ptzStops.length);
  const moves0 = await page.evaluate(() => window.rtcam.movesSent);
  const during = await hold(page, '#pad .arrow[data-dir="right"]', 1500);
  const stops = await waitStopped(page, stops0, 'pan right');
  const ptz1 = await rpc(page, 'ptz.get');
  const pan1 = await panControl(page);
  const moves = (await page.evaluate(() => window.rtcam.movesSent)) - moves0;
  check(ptz1.position.pan > ptz0.position.pan + 5 * 3600,
    `holding pan-right moved pan only from ${ptz0.position.pan} to ${ptz1.position.pan}`);
  check(pan1 > pan0, `the camera's pan_absolute went ${pan0} → ${pan1}`);
  check(moves >= 2, `the page sent ${moves} ptz.move while the pad was held (expected repeats)`);
  // It stays stopped.
  await page.waitForTimeout(1000);
  const ptz2 = await rpc(page, 'ptz.get');
  check(!ptz2.moving && ptz2.position.pan === ptz1.position.pan,
    `pan kept changing after the release: ${ptz1.position.pan} → ${ptz2.position.pan}`);
  // The picture moved by what the pan control says.
  const after = await stillPicture(page, 'after panning');
  check(after.w === before.w, 'the picture size changed');
  const expected = (windowX(pan1, after.w) - windowX(pan0, after.w) + after.w) % after.w;
  const found = bestShift(before, after);
  const unshifted = Math.round(sad(before, after, 0) * 100) / 100;
  const atExpected = Math.round(sad(before, after, expected) * 100) / 100;
  const off = Math.min(Math.abs(found.shift - expected), after.w - Math.abs(found.shift - expected));
  result.pan = {
    before: ptz0.position.pan, after: ptz1.position.pan, settled: ptz2.position.pan,
    control_before: pan0, control_after: pan1, degrees: Math.round((pan1 - pan0) / 360) / 10,
    moving_while_held: during.ptz && during.ptz.moving, moves_sent: moves, stops,
    deadman_stops_while_held: stops.filter((r) => r === 'deadman').length,
  };
  result.picture = {
    width: after.w, expected_shift_px: expected, found_shift_px: found.shift,
    diff_unshifted: unshifted, diff_at_expected: atExpected, diff_at_best: found.sad,
  };
  check(expected > 0, `pan ${pan0} → ${pan1} should shift the picture (expected shift 0)`);
  check(unshifted > 10, `the picture did not change after panning (mean difference ${unshifted})`);
  check(off <= 3 && found.sad < unshifted / 3,
    `the picture shifted by ${found.shift} px, expected ${expected} px: ${JSON.stringify(result.picture)}`);

  // 3. Keyboard: hold the left arrow.
  const stopsK = await page.evaluate(() => window.rtcam.ptzStops.length);
  await page.keyboard.down('ArrowLeft');
  await page.waitForTimeout(700);
  await page.keyboard.up('ArrowLeft');
  const stopsKey = await waitStopped(page, stopsK, 'arrow key');
  const ptz3 = await rpc(page, 'ptz.get');
  check(ptz3.position.pan < ptz2.position.pan,
    `the left arrow key: pan ${ptz2.position.pan} → ${ptz3.position.pan}, stops ${JSON.stringify(stopsKey)}`);
  result.keyboard = { pan_before: ptz2.position.pan, pan_after: ptz3.position.pan };

  // 4. Zoom in with the button, then home.
  if (limits.zoom) {
    const stopsZ = await page.evaluate(() => window.rtcam.ptzStops.length);
    await hold(page, '#zoom-in', 800);
    await waitStopped(page, stopsZ, 'zoom in');
    const ptz4 = await rpc(page, 'ptz.get');
    check(ptz4.position.zoom > ptz3.position.zoom, `zoom-in: ${ptz3.position.zoom} → ${ptz4.position.zoom}`);
    result.zoom = { before: ptz3.position.zoom, after: ptz4.position.zoom };
  }
  await page.click('#home-btn');
  const home = await waitInPage(page, 'the camera back home', (l) => {
    const p = window.rtcam.ptz && window.rtcam.ptz.position;
    return p && Object.keys(l).every((a) => p[a] === l[a].home) ? p : null;
  }, limits, 20_000);
  result.home = home;

  // Brightness through its slider; the change comes back as a camera event.
  await page.click('#settings-btn');
  await page.locator('#c-brightness').fill('170');
  const bright = await waitInPage(page, 'brightness 170 applied', () => {
    const c = window.rtcam.cameraControls.find((x) => x.name === 'brightness');
    return c && c.value === 170 ? c.value : null;
  }, null, 20_000);
  check((await rpc(page, 'controls.get', { name: 'brightness' })).value === 170, 'brightness did not reach the camera');
  result.brightness = bright;
  await page.waitForTimeout(600);
  await shot(page, 'control-settings.png');
  await page.locator('#c-brightness').fill('128');
  await page.click('#drawer-close');

  // The snapshot button saves a JPEG.
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 20_000 }),
    page.click('#snap-btn'),
  ]);
  const jpeg = join(ARTIFACTS, 'snapshot.jpg');
  await download.saveAs(jpeg);
  const bytes = readFileSync(jpeg);
  check(bytes.length > 1000 && bytes[0] === 0xff && bytes[1] === 0xd8,
    `the snapshot is not a JPEG (${bytes.length} bytes)`);
  result.snapshot = { name: download.suggestedFilename(), bytes: bytes.length };

  // 5. A second page, without the token.
  const ctx2 = await browser.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const viewer = pages.viewer = await openPage(ctx2, url);
  const vpage = viewer.page;
  await waitInPage(vpage, 'the page without a token to play', () => {
    const r = window.rtcam;
    return r && r.state === 'live' && r.framesDecoded >= 10 && r.role && r.controller;
  }, null, WAIT);
  const v = await vpage.evaluate(() => ({
    role: window.rtcam.role,
    controller: window.rtcam.controller,
    canSteer: window.rtcam.canSteer,
    who: document.getElementById('who-text').textContent,
    hint: document.getElementById('hint').textContent,
    padDisabled: document.getElementById('pad').getAttribute('aria-disabled'),
    claimShown: !document.getElementById('claim-btn').hidden || !document.getElementById('take-btn').hidden,
    inputsDisabled: [...document.querySelectorAll('#drawer input, #drawer select')].every((e) => e.disabled),
    inputs: document.querySelectorAll('#drawer input, #drawer select').length,
  }));
  result.viewer = v;
  check(v.role === 'view' && !v.canSteer, `the page without a token has role ${v.role}, canSteer ${v.canSteer}`);
  check(v.controller.held && !v.controller.by_you && v.controller.by === result.label,
    `the view-only page sees controller ${JSON.stringify(v.controller)}, expected ${result.label}`);
  check(v.padDisabled === 'true' && !v.claimShown && /view only/i.test(v.hint),
    `the view-only page's controls are not disabled with a hint: ${JSON.stringify(v)}`);
  check(v.inputs >= 4 && v.inputsDisabled, `the view-only page's settings are not disabled: ${JSON.stringify(v)}`);
  result.viewer.claim = await rpcError(vpage, 'control.claim');
  result.viewer.claimForce = await rpcError(vpage, 'control.claim', { force: true });
  result.viewer.move = await rpcError(vpage, 'ptz.move', { pan: 1 });
  check(result.viewer.claim === 'forbidden' && result.viewer.claimForce === 'forbidden',
    `control.claim without the token gave ${result.viewer.claim} / ${result.viewer.claimForce}, expected forbidden`);
  check(result.viewer.move === 'forbidden', `ptz.move without the token gave ${result.viewer.move}`);
  // Its pad does nothing (and says why).
  const panV0 = (await rpc(page, 'ptz.get')).position.pan;
  await hold(vpage, '#pad .arrow[data-dir="right"]', 800);
  await vpage.waitForTimeout(500);
  const panV1 = (await rpc(page, 'ptz.get')).position.pan;
  const vState = await vpage.evaluate(() => ({ movesSent: window.rtcam.movesSent, toasts: window.rtcam.toasts.map((t) => t.text) }));
  check(panV1 === panV0 && vState.movesSent === 0, `the view-only pad moved the camera: ${panV0} → ${panV1}, ${vState.movesSent} moves`);
  check(vState.toasts.some((t) => /view only/i.test(t)), `no hint on pressing the view-only pad: ${JSON.stringify(vState.toasts)}`);
  result.viewer.padMoves = vState.movesSent;
  await vpage.waitForTimeout(400);
  await shot(vpage, 'view-only.png');

  // It follows control changes: release on the first page, then claim again.
  await page.click('#release-btn');
  await waitInPage(vpage, 'the view-only page to see nobody in control', () =>
    window.rtcam.controller && !window.rtcam.controller.held &&
    document.getElementById('who-text').textContent === 'Nobody has control', null, 20_000);
  await page.click('#claim-btn');
  await waitInPage(vpage, 'the view-only page to see the controller back', (label) =>
    window.rtcam.controller && window.rtcam.controller.by === label, result.label, 20_000);
  await waitInPage(page, 'the control page to hold control again', () => window.rtcam.canSteer, null, 20_000);
  await vpage.close();
  await ctx2.close();

  // Screenshots of the control page: desktop, then a phone held upright.
  await page.waitForTimeout(1500); // status events for the stats
  await shot(page, 'control.png');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(1200);
  await shot(page, 'control-phone.png');

  result.ok = true;
  console.log(JSON.stringify(result));
} catch (e) {
  result.ok = false;
  result.error = String(e && e.message ? e.message : e);
  for (const [name, p] of Object.entries(pages)) {
    await p.page.screenshot({ path: join(ARTIFACTS, `failure-${name}.png`) }).catch(() => {});
    result[`${name}Page`] = await snapshot(p.page).catch(() => null);
  }
  console.log(JSON.stringify(result));
  console.error(`control test FAILED: ${result.error}`);
  for (const [name, p] of Object.entries(pages)) {
    console.error(`--- browser console (${name} page) ---`);
    for (const line of p.log) console.error(line);
  }
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
}
