// The page around the picture: the connection's status and message, toasts, and what the
// top bar's buttons do (stats, settings drawer, full screen, snapshot).

import { $, rtcam, conn } from './state.js';
import { withAuth } from './auth.js';
import { renderStats } from './stats.js';

const ui = {
  body: document.body, statusText: $('status-text'), msg: $('msg'), msgTitle: $('msg-title'),
  msgDetail: $('msg-detail'), retry: $('retry-btn'), stats: $('stats'), statsBtn: $('stats-btn'),
  settingsBtn: $('settings-btn'), drawer: $('drawer'), toast: $('toast'), flash: $('flash'),
};

// Shows the connection state (rtcam.state and .reason) and, when it is open, the stats panel.
export function render() {
  const st = rtcam.state;
  const retryAt = conn.retryAt;
  ui.body.dataset.state = st;
  let title, detail = '';
  const wait = retryAt ? Math.max(0, Math.ceil((retryAt - performance.now()) / 1000)) : 0;
  if (st === 'live') {
    title = 'Live';
  } else if (st === 'connecting') {
    title = 'Connecting…';
  } else if (st === 'reconnecting') {
    title = retryAt ? `Reconnecting in ${wait} s` : 'Reconnecting…';
    detail = rtcam.reason || '';
  } else {
    title = 'Error';
    detail = (rtcam.reason || '') + (retryAt ? ` — retrying in ${wait} s` : '');
  }
  ui.statusText.textContent = st === 'live' ? 'Live' : st === 'error' ? 'Error' : title;
  ui.msg.hidden = st === 'live';
  ui.msgTitle.textContent = title;
  ui.msgDetail.textContent = detail;
  ui.retry.hidden = !retryAt;
  if (!ui.stats.hidden) renderStats();
}

export function toggleStats(show = ui.stats.hidden) {
  ui.stats.hidden = !show;
  ui.statsBtn.setAttribute('aria-pressed', String(show));
  try { localStorage.setItem('rtcam.stats', show ? '1' : '0'); } catch (e) { /* private mode */ }
  render();
}

export function toggleDrawer(show = ui.drawer.hidden) {
  ui.drawer.hidden = !show;
  ui.settingsBtn.setAttribute('aria-pressed', String(show));
  if (show) ui.body.dataset.drawer = '1'; else delete ui.body.dataset.drawer;
}

export function toggleFullscreen() {
  const el = $('stage'), video = $('video');
  if (document.fullscreenElement || document.webkitFullscreenElement) {
    (document.exitFullscreen || document.webkitExitFullscreen).call(document);
  } else if (el.requestFullscreen) {
    el.requestFullscreen().catch(() => {});
  } else if (el.webkitRequestFullscreen) {
    el.webkitRequestFullscreen();
  } else if (video.webkitEnterFullscreen) {
    video.webkitEnterFullscreen(); // iPhone: only the video element can go full screen
  }
}

// A short message over the picture; errors stay a little longer.
let toastTimer = 0;
export function toast(text, kind = 'error') {
  rtcam.toasts.push({ text, kind, at: Date.now() });
  if (rtcam.toasts.length > 20) rtcam.toasts.shift();
  ui.toast.textContent = text;
  ui.toast.className = `show ${kind}`;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { ui.toast.className = kind; }, kind === 'error' ? 4000 : 2500);
}

// ---------------------------------------------------------------------------------------
// Snapshot: the device's JPEG of the current picture (same token as the stream).
// ---------------------------------------------------------------------------------------
export async function snapshot({ download = true } = {}) {
  let res;
  try {
    res = await fetch(new URL('snapshot.jpg', location.href).href, { headers: withAuth(), cache: 'no-store' });
  } catch (e) {
    toast('Snapshot failed: the device did not answer');
    throw e;
  }
  if (!res.ok) {
    const why = ((await res.text().catch(() => '')).trim().split('\n')[0] || res.statusText).slice(0, 200);
    toast(`Snapshot failed: ${why} (HTTP ${res.status})`);
    throw new Error(why);
  }
  const blob = await res.blob();
  const d = new Date(), p = (n) => String(n).padStart(2, '0');
  const name = `rtcam-${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}.jpg`;
  if (download) {
    const url = URL.createObjectURL(blob);
    const a = document.createElement('a');
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    ui.flash.classList.add('on');
    requestAnimationFrame(() => requestAnimationFrame(() => ui.flash.classList.remove('on')));
    toast(`Saved ${name}`, 'info');
  }
  return { name, type: blob.type, bytes: blob.size };
}
