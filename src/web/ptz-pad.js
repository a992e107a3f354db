// Pan/tilt/zoom: the pad, the zoom buttons, the arrow keys, the speed choice, home, and the
// position readout. Each input contributes a velocity; while any is non-zero `ptz.move` goes
// out every MOVE_EVERY_MS (the device stops by itself 500 ms after the last one), and
// `ptz.stop` when the last is let go.

import { $, rtcam } from './state.js';
import { command } from './control.js';
import { toast } from './ui.js';

const ui = {
  body: document.body, pad: $('pad'), home: $('home-btn'), zoomIn: $('zoom-in'), zoomOut: $('zoom-out'),
  zoomLevel: $('zoom-level'), speed: $('speed'), pos: $('pos'), hint: $('hint'), steer: $('steer'),
};

const MOVE_EVERY_MS = 200;
const motion = { parts: new Map(), active: false, timer: 0, sent: '' };
let speed = 0.5;

function setMotion(part, v) {
  if (v) motion.parts.set(part, v); else motion.parts.delete(part);
  applyMotion();
}

function velocity() {
  const v = { pan: 0, tilt: 0, zoom: 0 };
  for (const p of motion.parts.values()) for (const a in v) v[a] += p[a] || 0;
  for (const a in v) v[a] = Math.max(-1, Math.min(1, Math.round(v[a] * 1000) / 1000));
  return v;
}

function applyMotion() {
  const v = velocity();
  if (!v.pan && !v.tilt && !v.zoom) { halt(true); return; } // inputs may still be held
  if (!rtcam.canSteer) { stopMotion(false); return; }
  const key = JSON.stringify(v);
  if (!motion.active || key !== motion.sent) sendMove(v);
  if (!motion.active) {
    motion.active = true;
    motion.timer = setInterval(() => sendMove(velocity()), MOVE_EVERY_MS);
  }
}

function sendMove(v) {
  const limits = (rtcam.ptz && rtcam.ptz.limits) || {};
  const args = {};
  for (const a of ['pan', 'tilt', 'zoom']) if (limits[a]) args[a] = v[a];
  if (!Object.keys(args).length) return;
  motion.sent = JSON.stringify(v);
  rtcam.movesSent++;
  command('ptz.move', args).catch((e) => {
    if (e.code === 'not_controller' || e.code === 'forbidden' || e.code === 'unsupported') stopMotion(false);
  });
}

// Stops sending moves. `tell`: send ptz.stop (not when the device has stopped it already).
function halt(tell) {
  const was = motion.active;
  clearInterval(motion.timer);
  motion.timer = 0;
  motion.active = false;
  motion.sent = '';
  if (tell && was && rtcam.canSteer) command('ptz.stop').catch(() => {});
}

// Ends all motion and forgets whatever was held (control lost, page left, connection gone).
export function stopMotion(tell) {
  halt(tell);
  motion.parts.clear();
  padShow(null);
  ui.zoomIn.classList.remove('held');
  ui.zoomOut.classList.remove('held');
  heldKeys.clear();
  padPointer = zoomPointer = null;
}

// Enables or disables the pad, home and zoom, with `hint` saying why they are off.
export function padAccess(canSteer, hint) {
  ui.hint.textContent = hint;
  const off = String(!canSteer);
  for (const el of [ui.pad, ui.home, ui.zoomIn, ui.zoomOut]) el.setAttribute('aria-disabled', off);
  ui.steer.classList.toggle('off', !canSteer);
}

// Says why steering does nothing now.
function steerHint() {
  toast(ui.hint.textContent || 'You do not have control', 'info');
}

// ---------------------------------------------------------------------------------------
// The pad: eight directions around a home button. Press and hold; sliding the finger changes
// the direction, sliding off the pad stops.
// ---------------------------------------------------------------------------------------
export const DIRS = ['right', 'up-right', 'up', 'up-left', 'left', 'down-left', 'down', 'down-right'];
let padPointer = null, zoomPointer = null;
const heldKeys = new Set();

for (let i = 0; i < 8; i++) {
  const el = document.createElement('span');
  el.className = 'arrow' + (i % 2 ? ' diag' : '');
  el.dataset.dir = DIRS[i];
  el.style.setProperty('--a', String(i * 45));
  el.setAttribute('aria-hidden', 'true');
  el.innerHTML = '<svg viewBox="0 0 24 24"><path d="M9 5l7 7-7 7"/></svg>';
  ui.pad.insertBefore(el, ui.home);
}

function padDirAt(x, y) {
  const r = ui.pad.getBoundingClientRect();
  const dx = x - (r.left + r.width / 2), dy = (r.top + r.height / 2) - y;
  const d = Math.hypot(dx, dy), R = r.width / 2;
  if (d < R * 0.32 || d > R * 1.3) return null; // on the home button, or slid off the pad
  return DIRS[((Math.round(Math.atan2(dy, dx) / (Math.PI / 4)) % 8) + 8) % 8];
}

function padShow(dir) {
  ui.pad.dataset.dir = dir || '';
  if (dir) ui.pad.style.setProperty('--ang', DIRS.indexOf(dir) * 45 + 'deg');
  for (const el of ui.pad.querySelectorAll('.arrow')) el.classList.toggle('on', el.dataset.dir === dir);
}

// Holds the pad in direction `dir` (one of DIRS), or lets go (null), as a pointer would.
export function padTo(dir) {
  if ((ui.pad.dataset.dir || null) === dir) return;
  padShow(dir);
  if (!dir) { setMotion('pad', null); return; }
  const i = DIRS.indexOf(dir), a = i * Math.PI / 4;
  setMotion('pad', { pan: Math.round(Math.cos(a)) * speed, tilt: Math.round(Math.sin(a)) * speed });
}

ui.pad.addEventListener('pointerdown', (e) => {
  if (e.button !== 0 || e.target.closest('#home-btn')) return;
  e.preventDefault();
  if (!rtcam.canSteer) { steerHint(); return; }
  padPointer = e.pointerId;
  try { ui.pad.setPointerCapture(e.pointerId); } catch (err) { /* pointer gone */ }
  padTo(padDirAt(e.clientX, e.clientY));
});
ui.pad.addEventListener('pointermove', (e) => {
  if (e.pointerId === padPointer) padTo(padDirAt(e.clientX, e.clientY));
});
for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) {
  ui.pad.addEventListener(type, (e) => {
    if (e.pointerId !== padPointer) return;
    padPointer = null;
    padTo(null);
  });
}
ui.pad.addEventListener('contextmenu', (e) => e.preventDefault());

// Zoom buttons: hold to zoom.
for (const [btn, dir] of [[ui.zoomIn, 1], [ui.zoomOut, -1]]) {
  const end = (e) => {
    if (e.pointerId !== zoomPointer) return;
    zoomPointer = null;
    btn.classList.remove('held');
    setMotion('zoom', null);
  };
  btn.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.preventDefault();
    if (!rtcam.canSteer) { steerHint(); return; }
    zoomPointer = e.pointerId;
    try { btn.setPointerCapture(e.pointerId); } catch (err) { /* pointer gone */ }
    btn.classList.add('held');
    setMotion('zoom', { zoom: dir * speed });
  });
  btn.addEventListener('pointermove', (e) => {
    if (e.pointerId !== zoomPointer) return;
    const r = btn.getBoundingClientRect(), m = 24;
    if (e.clientX < r.left - m || e.clientX > r.right + m || e.clientY < r.top - m || e.clientY > r.bottom + m) end(e);
  });
  for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) btn.addEventListener(type, end);
  btn.addEventListener('contextmenu', (e) => e.preventDefault());
  // Keyboard activation (no pointer): a short nudge.
  btn.addEventListener('click', (e) => {
    if (e.detail !== 0 || !rtcam.canSteer) return;
    setMotion('nudge', { zoom: dir * speed });
    setTimeout(() => setMotion('nudge', null), 300);
  });
}

export function home() {
  if (!rtcam.canSteer) { steerHint(); return Promise.resolve(null); }
  stopMotion(false);
  return command('ptz.home');
}
ui.home.addEventListener('click', () => { home().catch(() => {}); });

// ---------------------------------------------------------------------------------------
// Keys: arrows pan and tilt, + and - zoom, for as long as they are held.
// ---------------------------------------------------------------------------------------
const KEYS = {
  ArrowLeft: { pan: -1 }, ArrowRight: { pan: 1 }, ArrowUp: { tilt: 1 }, ArrowDown: { tilt: -1 },
  '+': { zoom: 1 }, '=': { zoom: 1 }, '-': { zoom: -1 }, _: { zoom: -1 },
};
function keysMotion() {
  const v = { pan: 0, tilt: 0, zoom: 0 };
  for (const k of heldKeys) for (const [a, d] of Object.entries(KEYS[k])) v[a] += d * speed;
  setMotion('keys', v.pan || v.tilt || v.zoom ? v : null);
}

// A keydown: true when it is a steering key (handled here), false for any other key.
export function keyDown(e) {
  if (!KEYS[e.key]) return false;
  e.preventDefault();
  if (e.repeat || heldKeys.has(e.key)) return true;
  if (!rtcam.canSteer || !rtcam.ptz) { if (rtcam.role) steerHint(); return true; }
  heldKeys.add(e.key);
  keysMotion();
  return true;
}

export function keyUp(e) {
  if (heldKeys.delete(e.key)) keysMotion();
}

// ---------------------------------------------------------------------------------------
// Speed: slow, normal, fast; remembered in localStorage.
// ---------------------------------------------------------------------------------------
export function setSpeed(v) {
  speed = v;
  for (const b of ui.speed.querySelectorAll('button')) b.setAttribute('aria-pressed', String(Number(b.dataset.speed) === v));
  try { localStorage.setItem('rtcam.speed', String(v)); } catch (e) { /* private mode */ }
  // A move in progress goes on at the new speed.
  const pad = ui.pad.dataset.dir || null;
  if (pad) { padShow(null); padTo(pad); }
  if (heldKeys.size) keysMotion();
  const z = motion.parts.get('zoom');
  if (z) setMotion('zoom', { zoom: Math.sign(z.zoom) * speed });
}
ui.speed.addEventListener('click', (e) => {
  const b = e.target.closest('button');
  if (b) setSpeed(Number(b.dataset.speed));
});

// ---------------------------------------------------------------------------------------
// Where the camera points, from the device's `ptz` part of control events.
// ---------------------------------------------------------------------------------------

// Positions are in the actuator's units: arc-seconds for a UVC camera, degrees for servos.
function degrees(v, l) {
  const arcsec = l && Math.max(Math.abs(l.min), Math.abs(l.max)) > 1000;
  const deg = arcsec ? v / 3600 : v;
  return (deg > 0.05 ? '+' : deg < -0.05 ? '−' : '') + Math.abs(deg).toFixed(Math.abs(deg) < 10 ? 1 : 0) + '°';
}

export function ptzEvent(p) {
  if (!p) {
    rtcam.ptz = null;
    delete ui.body.dataset.ptz;
    return;
  }
  rtcam.ptz = { position: p.position || {}, limits: p.limits || (rtcam.ptz && rtcam.ptz.limits) || {}, moving: !!p.moving };
  ui.body.dataset.ptz = '1';
  if (p.stopped) {
    rtcam.ptzStops.push(p.stopped);
    if (rtcam.ptzStops.length > 50) rtcam.ptzStops.shift();
    if (p.stopped === 'deadman' && motion.active) toast('The camera stopped: commands arrived too late', 'info');
  }
  const { position: pos, limits: lim } = rtcam.ptz;
  const parts = [];
  if (pos.pan != null) parts.push('pan ' + degrees(pos.pan, lim.pan));
  if (pos.tilt != null) parts.push('tilt ' + degrees(pos.tilt, lim.tilt));
  ui.pos.textContent = parts.join('  ') || '–';
  const z = lim.zoom;
  $('zoom').hidden = !z;
  if (z && pos.zoom != null) ui.zoomLevel.textContent = z.min > 0 ? (pos.zoom / z.min).toFixed(1) + '×' : Math.round(pos.zoom) + '';
}
