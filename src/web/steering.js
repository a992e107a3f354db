// Who steers. The device tells each viewer its role and who holds control in
// `{"event": "control"}` messages; this page claims, takes over and releases control, and
// enables the pad and the settings only while it holds it.

import { $, rtcam, conn } from './state.js';
import { command } from './control.js';
import { toast } from './ui.js';
import { fmt } from './stats.js';
import { stopMotion, padAccess, ptzEvent } from './ptz-pad.js';
import { settingsAccess, loadSettings, showStream, cameraEvent } from './controls-panel.js';

const ui = {
  body: document.body, whoText: $('who-text'), whoTag: $('who-tag'),
  claim: $('claim-btn'), take: $('take-btn'), release: $('release-btn'),
};

let autoClaim = true; // claim on connect when nobody holds control (off after Release)

// A `{"event": "control"}` from the device: role, controller, pan/tilt/zoom, a camera control
// or the stream changed.
export function controlEvent(m) {
  let fresh = false;
  if (m.you) {
    rtcam.role = m.you.role;
    rtcam.label = m.you.label;
    fresh = true;
  }
  if (m.controller) setController(m.controller);
  if ('ptz' in m) ptzEvent(m.ptz);
  if (m.camera) cameraEvent(m.camera);
  if (m.stream) {
    showStream(m.stream);
    const st = m.stream;
    toast(`Stream: ${st.width}×${st.height}, ${st.fps} fps, ${fmt.rate(st.bitrate_kbps)}`, 'info');
  }
  if (fresh) channelReady();
}

// The first control event of a connection: where things stand.
function channelReady() {
  ui.body.dataset.ctl = 'none';
  renderControl();
  const c = rtcam.controller;
  if (rtcam.role === 'control' && autoClaim && c && !c.held) claim(false, { quiet: true }).catch(() => {});
  loadSettings();
}

function setController(c) {
  const had = rtcam.canSteer;
  rtcam.controller = { held: !!c.held, by: c.by || null, by_you: !!c.by_you };
  renderControl();
  if (had && !rtcam.canSteer) {
    stopMotion(false); // the device has stopped it already
    if (rtcam.controller.held) toast(`${rtcam.controller.by} took control`, 'info');
  }
}

export function claim(force = false, opts = {}) {
  autoClaim = true;
  return command('control.claim', force ? { force: true } : {}, opts).then((r) => {
    if (r && r.controller) setController(r.controller);
    return r;
  });
}

export function release() {
  autoClaim = false;
  stopMotion(false);
  return command('control.release');
}

export function renderControl() {
  const r = rtcam, c = r.controller, cur = conn.cur;
  const open = !!(cur && cur.dc && cur.dc.readyState === 'open' && r.role);
  r.canSteer = open && r.role === 'control' && !!(c && c.by_you);
  if (ui.body.dataset.ctl) ui.body.dataset.ctl = !open ? 'none' : c && c.by_you ? 'mine' : c && c.held ? 'other' : 'none';
  let who, hint = '', drawerHint = '';
  if (!open) { who = r.role ? 'Reconnecting…' : 'Connecting…'; hint = drawerHint = 'Waiting for the camera…'; }
  else if (c && c.by_you) who = 'You have control';
  else if (c && c.held) who = `${c.by} has control`;
  else who = 'Nobody has control';
  if (open && !r.canSteer) {
    if (r.role !== 'control') {
      hint = 'View only: open the control link to steer.';
      drawerHint = 'View only: changing settings needs the control link.';
    } else if (c && c.held) {
      hint = `${c.by} is steering. Take over to steer.`;
      drawerHint = `${c.by} has control. Take over to change settings.`;
    } else {
      hint = 'Claim control to steer.';
      drawerHint = 'Claim control to change settings.';
    }
  }
  ui.whoText.textContent = who;
  ui.whoTag.hidden = !open || r.role !== 'view';
  ui.claim.hidden = !open || r.role !== 'control' || !!(c && c.held);
  ui.take.hidden = !open || r.role !== 'control' || !c || !c.held || c.by_you;
  ui.release.hidden = !open || !(c && c.by_you);
  padAccess(r.canSteer, hint);
  settingsAccess(r.canSteer, drawerHint);
}

// The connection is gone: nothing can be steered until the next one says otherwise.
export function controlReset() {
  stopMotion(false);
  rtcam.canSteer = false;
  rtcam.controller = null;
  renderControl();
}
