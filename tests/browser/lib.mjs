// Shared by page-test.mjs and bench.mjs: headless Chromium through playwright-core, with the
// system's Chromium (no browser download).
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Keep timers and rendering at full rate even if the page is considered hidden.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** Chromium with a fresh profile (playwright's launch() makes and removes it). */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    timeout: 60_000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  const close = () => browser.close().catch(() => {});
  return { browser, context, close };
}

/** Opens `url` in a new page and records its console for failure reports. */
export async function openPage(context, url) {
  const page = await context.newPage();
  const log = [];
  page.on('console', (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.stack || e}`));
  page.on('requestfailed', (r) => log.push(`[requestfailed] ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  await page.goto(url, { waitUntil: 'load', timeout: 60_000 });
  return { page, log };
}

/** Waits until `fn(arg)` is truthy in the page; on timeout the error names `what`. */
export async function waitInPage(page, what, fn, arg, timeout = 60_000) {
  try {
    return await (await page.waitForFunction(fn, arg, { timeout, polling: 200 })).jsonValue();
  } catch (e) {
    const snap = (await snapshot(page).catch(() => null)) || {};
    const brief = ['state', 'reason', 'connected', 'connectionSeq', 'framesDecoded', 'codec', 'pingRtt']
      .map((k) => `${k}=${JSON.stringify(snap[k])}`).join(' ');
    throw new Error(`timed out after ${timeout / 1000} s waiting for ${what} (${brief})`);
  }
}

/** The page's data fields (not its functions). */
export function snapshot(page) {
  return page.evaluate(() => {
    const out = {};
    for (const [k, v] of Object.entries(window.rtcam || {})) if (typeof v !== 'function') out[k] = v;
    return out;
  });
}

export function percentile(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const r = (x) => (x == null ? null : Math.round(x * 10) / 10);
  return {
    p50: r(percentile(s, 50)),
    p95: r(percentile(s, 95)),
    samples: s.length,
    min: r(s[0] ?? null),
    max: r(s[s.length - 1] ?? null),
  };
}
