// The settings drawer: the camera's controls from controls.list (sliders, switches, menus,
// buttons), and the stream's size, frame rate and bitrate.

import { $, rtcam, conn } from './state.js';
import { send, command } from './control.js';
import { fmt } from './stats.js';

const ui = {
  drawer: $('drawer'), drawerHint: $('drawer-hint'), camera: $('camera-controls'),
  size: $('st-size'), fps: $('st-fps'), bitrate: $('st-bitrate'),
};

const PTZ_CONTROL = /^(pan|tilt|zoom)_(absolute|relative|speed|continuous)$/;
const RESET_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 12a8 8 0 1 0 2.4-5.7M4 4v4h4"/></svg>';
const controlRows = new Map(); // name → {info, input, output, pending, timer, last}

// Enables the drawer's inputs while this page steers; `hint` says why they are off.
export function settingsAccess(canSteer, hint) {
  ui.drawerHint.textContent = hint;
  enableInputs(canSteer);
}

function enableInputs(canSteer) {
  for (const el of ui.drawer.querySelectorAll('input, select, button.reset, .ctl > button')) {
    el.disabled = !canSteer || el.dataset.readonly === '1';
  }
}

// Fills the drawer for a new connection: its camera controls and the stream as it is.
export async function loadSettings() {
  const s = conn.cur;
  const [list, status] = await Promise.all([
    send('controls.list').catch((e) => e),
    send('status').catch(() => null),
  ]);
  if (s !== conn.cur) return;
  if (status) showStream(status);
  buildCameraControls(list instanceof Error ? list : list.controls || []);
}

function buildCameraControls(list) {
  controlRows.clear();
  ui.camera.textContent = '';
  if (list instanceof Error) {
    rtcam.cameraControls = [];
    const d = document.createElement('div');
    d.className = 'empty';
    d.textContent = list.code === 'unsupported' ? 'This camera has no adjustable controls.' : list.message;
    ui.camera.append(d);
    return;
  }
  rtcam.cameraControls = list;
  // The pad covers pan/tilt/zoom.
  const shown = list.filter((c) => c.kind !== 'other' && !(rtcam.ptz && PTZ_CONTROL.test(c.name)));
  for (const c of shown) ui.camera.append(controlRow(c));
  if (rtcam.ptz && list.some((c) => PTZ_CONTROL.test(c.name))) {
    const d = document.createElement('div');
    d.className = 'empty';
    d.textContent = shown.length ? 'Pan, tilt and zoom: use the pad.' : 'Nothing else to adjust: pan, tilt and zoom are on the pad.';
    ui.camera.append(d);
  }
  enableInputs(rtcam.canSteer);
}

function controlRow(c) {
  const row = document.createElement('div');
  row.className = 'ctl';
  row.dataset.name = c.name;
  const id = 'c-' + c.name;
  const label = document.createElement('label');
  label.htmlFor = id;
  label.textContent = c.label || c.name;
  label.title = c.name;
  row.append(label);
  let input, output = null;
  const value = c.value == null ? c.default : c.value;
  if (c.kind === 'button') {
    input = document.createElement('button');
    input.type = 'button';
    input.className = 'small';
    input.textContent = 'Run';
    input.addEventListener('click', () => setControl(c.name, 1));
    row.append(input);
  } else if (c.kind === 'boolean') {
    input = document.createElement('input');
    input.type = 'checkbox';
    input.className = 'switch';
    input.checked = !!value;
    input.addEventListener('change', () => setControl(c.name, input.checked ? 1 : 0));
    row.append(input);
  } else if (c.kind === 'menu' || c.kind === 'integer_menu') {
    input = document.createElement('select');
    for (const [index, text] of c.menu || []) input.add(new Option(text, String(index)));
    input.value = String(value);
    input.addEventListener('change', () => setControl(c.name, Number(input.value)));
    row.classList.toggle('wide', (c.label || '').length > 18);
    row.append(input);
  } else {
    input = document.createElement('input');
    input.type = 'range';
    input.min = String(c.min);
    input.max = String(c.max);
    input.step = String(Math.max(1, c.step || 1));
    input.value = String(value);
    output = document.createElement('output');
    output.htmlFor = id;
    output.textContent = String(value);
    const reset = document.createElement('button');
    reset.type = 'button';
    reset.className = 'reset';
    reset.title = `Default (${c.default})`;
    reset.setAttribute('aria-label', `${c.label || c.name}: back to the default`);
    reset.innerHTML = RESET_ICON;
    reset.addEventListener('click', () => { input.value = String(c.default); output.textContent = input.value; setControl(c.name, c.default); });
    input.addEventListener('input', () => { output.textContent = input.value; setControl(c.name, Number(input.value)); });
    row.append(output, reset, input);
  }
  input.id = id;
  if (!c.writable) {
    for (const el of row.querySelectorAll('input, select, button')) el.dataset.readonly = '1';
    label.title = `${c.name} (read-only or inactive now)`;
  }
  controlRows.set(c.name, { info: c, input, output, last: value, pending: null, timer: 0, busy: false });
  return row;
}

// One controls.set in flight per control, at most one every 120 ms while a slider is dragged;
// the last value always goes out.
function setControl(name, value) {
  const row = controlRows.get(name);
  if (!row) return;
  row.pending = value;
  if (!row.busy && !row.timer) flushControl(name, row);
}

function flushControl(name, row) {
  if (row.pending == null) return;
  const v = row.pending;
  const started = performance.now();
  row.pending = null;
  row.busy = true;
  command('controls.set', { name, value: v }).then((r) => {
    row.last = r.value;
    if (row.pending == null) showControl(name, r.value);
  }, () => {
    if (row.pending == null) showControl(name, row.last);
  }).finally(() => {
    row.busy = false;
    row.timer = setTimeout(() => { row.timer = 0; flushControl(name, row); },
      Math.max(0, 120 - (performance.now() - started)));
  });
}

function showControl(name, value) {
  const row = controlRows.get(name);
  if (!row) return;
  row.last = value;
  const { input, output } = row;
  if (input.type === 'checkbox') input.checked = !!value;
  else if (input.tagName === 'SELECT' || input.type === 'range') input.value = String(value);
  if (output) output.textContent = String(value);
  const c = rtcam.cameraControls.find((x) => x.name === name);
  if (c) c.value = value;
}

// A camera control changed on the device (the `camera` part of a control event).
export function cameraEvent(cam) {
  const row = controlRows.get(cam.name);
  if (row && (row.busy || row.pending != null)) return; // our own change on its way
  showControl(cam.name, cam.value);
}

// ---------------------------------------------------------------------------------------
// The stream: size, frame rate and bitrate, from the presets plus whatever the device runs.
// ---------------------------------------------------------------------------------------
const PRESETS = {
  size: ['320x240', '640x360', '640x480', '800x600', '1024x576', '1280x720', '1600x900', '1920x1080'],
  fps: [5, 10, 15, 20, 25, 30, 50, 60],
  bitrate_kbps: [250, 500, 800, 1000, 1500, 2000, 3000, 4000, 6000, 8000],
};

function fillSelect(sel, values, current, text) {
  const all = [...values];
  if (current != null && !all.some((v) => String(v) === String(current))) all.push(current);
  if (typeof all[0] === 'number') all.sort((a, b) => a - b);
  else all.sort((a, b) => parseInt(a, 10) - parseInt(b, 10) || parseInt(a.split('x')[1], 10) - parseInt(b.split('x')[1], 10));
  sel.textContent = '';
  for (const v of all) sel.add(new Option(text(v), String(v)));
  if (current != null) sel.value = String(current);
  sel.dataset.current = current == null ? '' : String(current);
}

export function showStream(st) {
  rtcam.stream = { width: st.width, height: st.height, fps: st.fps, bitrate_kbps: st.bitrate_kbps };
  fillSelect(ui.size, PRESETS.size, `${st.width}x${st.height}`, (v) => v.replace('x', ' × '));
  fillSelect(ui.fps, PRESETS.fps, st.fps, (v) => `${v} fps`);
  fillSelect(ui.bitrate, PRESETS.bitrate_kbps, st.bitrate_kbps, fmt.rate);
}

// A new size or frame rate reopens the camera, and the answer comes once it is back: give it
// longer than a plain command.
const STREAM_SET_TIMEOUT_MS = 20000;

export function setStream(change) {
  return command('stream.set', change, { timeoutMs: STREAM_SET_TIMEOUT_MS }).then((r) => { showStream(r); return r; },
    (e) => { if (rtcam.stream) showStream(rtcam.stream); throw e; });
}

for (const sel of [ui.size, ui.fps, ui.bitrate]) {
  sel.addEventListener('change', () => {
    const key = sel.dataset.key;
    setStream({ [key]: key === 'size' ? sel.value : Number(sel.value) }).catch(() => {});
  });
}
