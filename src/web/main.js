// The viewer page's entry point: wires the modules to the page's buttons, keys and device
// events, publishes `window.rtcam` (state and functions, for the UI, tests and benchmarks),
// and connects.
//
//   state.js           public state, event bus, the current connection
//   whep.js            WHEP sessions, signaling, ICE restarts, reconnecting
//   trickle.js         WHEP PATCH: trickled candidates, the ICE restart exchange
//   ice-servers.js     STUN/TURN servers from the endpoint's Link headers
//   control.js         the control channel's requests, responses and pings
//   steering.js        who holds control; claim, take over, release
//   ptz-pad.js         pan/tilt pad, zoom, arrow keys, speed, home
//   controls-panel.js  camera controls and stream settings (the drawer)
//   stats.js           getStats numbers, device status, the stats panel
//   stamp.js           the frame-stamp reader
//   ui.js              status and message, toasts, stats/drawer/full screen/snapshot
//   auth.js            the token from the URL fragment

import { $, rtcam, conn, on } from './state.js';
import { run, reconnect, restartIceNow } from './whep.js';
import { send } from './control.js';
import { controlEvent, claim, release, renderControl } from './steering.js';
import { DIRS, padTo, home, setSpeed, stopMotion, keyDown, keyUp } from './ptz-pad.js';
import { setStream } from './controls-panel.js';
import { deviceStatus } from './stats.js';
import { crc16, decodeStamp, readStamp, stampLatencies } from './stamp.js';
import { render, toast, toggleStats, toggleDrawer, toggleFullscreen, snapshot } from './ui.js';

const video = $('video');
window.rtcam = rtcam;

on('control', controlEvent);
on('status', deviceStatus);

$('stats-btn').addEventListener('click', () => toggleStats());
$('settings-btn').addEventListener('click', () => toggleDrawer());
$('drawer-close').addEventListener('click', () => toggleDrawer(false));
$('fs-btn').addEventListener('click', toggleFullscreen);
$('snap-btn').addEventListener('click', () => { snapshot().catch(() => {}); });
$('retry-btn').addEventListener('click', () => reconnect());
$('claim-btn').addEventListener('click', () => { claim(false).catch(() => {}); });
$('take-btn').addEventListener('click', () => { claim(true).catch(() => {}); });
$('release-btn').addEventListener('click', () => { release().catch(() => {}); });
video.addEventListener('dblclick', toggleFullscreen);
video.addEventListener('resize', () => {
  if (video.videoWidth) document.documentElement.style.setProperty('--ar', `${video.videoWidth} / ${video.videoHeight}`);
});

document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || (e.target.closest && e.target.closest('input, textarea, select'))) return;
  if (keyDown(e)) return; // arrows, + and -: steering
  if (e.repeat) return;
  if (e.key === 's') toggleStats();
  else if (e.key === 'f') toggleFullscreen();
  else if (e.key === 'r') reconnect();
  else if (e.key === 'c') toggleDrawer();
  else if (e.key === 'p') snapshot().catch(() => {});
  else if (e.key === 'h' || e.key === 'Home') home().catch(() => {});
  else if (e.key === 'Escape') toggleDrawer(false);
});
document.addEventListener('keyup', keyUp);
// Whatever was held is let go when the page loses focus (the keyup would never come).
addEventListener('blur', () => stopMotion(true));
document.addEventListener('visibilitychange', () => { if (document.hidden) stopMotion(true); });
try { if (localStorage.getItem('rtcam.stats') === '0') toggleStats(false); } catch (e) { /* private mode */ }
try { const v = Number(localStorage.getItem('rtcam.speed')); if ([0.2, 0.5, 1].includes(v)) setSpeed(v); } catch (e) { /* private mode */ }
setInterval(() => { if (conn.retryAt) render(); }, 250); // the retry countdown
renderControl();

Object.assign(rtcam, {
  send, reconnect, restartIce: restartIceNow,
  readStamp: () => readStamp(video),
  decodeStamp,
  stampLatencies: (durationMs) => stampLatencies(video, durationMs),
  on, crc16, claim, release, home, snapshot, setStream, setSpeed, toast,
  // Programmatic pad, as a press and hold would do (the test uses real pointer events).
  pressPad: (dir) => { if (!DIRS.includes(dir)) throw new Error('direction: ' + DIRS.join(', ')); padTo(dir); },
  releasePad: () => padTo(null),
});
run();
