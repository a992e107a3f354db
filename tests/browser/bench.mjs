// Browser-side latency benchmark against a running rtcam:
//   node bench.mjs http://127.0.0.1:PORT/ [--joins 20] [--seconds 20] [--commands 200]
// Prints one JSON object:
//   ttff_ms            time to first frame: offer made → first frame presented, over `joins`
//                      fresh connections (new RTCPeerConnection + POST each; the previous one is
//                      DELETEd first), the page trickling its candidates by PATCH. The page
//                      load's own connection is a warm-up, reported apart as first_load_ttff_ms.
//   ttff_no_trickle_ms the same with the page at ?trickle=off: the offer waits for ICE
//                      gathering and carries every candidate (as non-trickling players send it).
//   glass_to_glass_ms  display time − capture time from the frame stamps, for every frame
//                      presented during `seconds` on one connection (same host clock).
//   decoded_fps        frames decoded per second over that window (getStats).
//   command_rtt_ms     control command round trip: the page sends a command on the `control`
//                      data channel and its answer arrives (page → device → ack), over
//                      `commands` commands one after another, paced under the device's rate
//                      limit. The command is `ptz.get` (`ping` on a device without pan/tilt/zoom).
import { launch, openPage, waitInPage, snapshot, summary } from './lib.mjs';

function parseArgs(argv) {
  const opts = { url: null, joins: 20, seconds: 20, commands: 200 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--joins') opts.joins = Number(argv[++i]);
    else if (a === '--seconds') opts.seconds = Number(argv[++i]);
    else if (a === '--commands') opts.commands = Number(argv[++i]);
    else if (!a.startsWith('--') && !opts.url) opts.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url || !(opts.joins >= 0) || !(opts.seconds > 0) || !(opts.commands >= 0)) {
    throw new Error('usage: node bench.mjs <url> [--joins 20] [--seconds 20] [--commands 200]');
  }
  return opts;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  console.error(e.message);
  process.exit(2);
}

const JOIN_TIMEOUT = 30_000;
const SETTLE_MS = 500; // let each connection play a moment before the next join
// Commands are paced: the device allows 20 per second per viewer (and the page pings once a
// second), so one every 60 ms stays clear of `rate_limited`.
const COMMAND_GAP_MS = 60;

let browser = null, page = null, log = [];
try {
  browser = await launch();
  ({ page, log } = await openPage(browser.context, opts.url));
  await waitInPage(page, 'the first connection to play', () => {
    const r = window.rtcam;
    return r && r.state === 'live' && r.connected && r.firstFrameMs != null && r.framesDecoded > 0;
  }, null, 60_000);
  const firstLoad = await page.evaluate(() => window.rtcam.firstFrameMs);

  const joins = async (what) => {
    const ttff = [];
    for (let i = 0; i < opts.joins; i++) {
      await page.waitForTimeout(SETTLE_MS);
      const seq = await page.evaluate(() => window.rtcam.reconnect());
      const ms = await waitInPage(page, `join ${i + 1} to show a frame`, (seq) => {
        const r = window.rtcam;
        return r.connectionSeq === seq && r.firstFrameMs != null ? r.firstFrameMs : null;
      }, seq, JOIN_TIMEOUT);
      ttff.push(ms);
      process.stderr.write(`join ${i + 1}/${opts.joins} (${what}): ${ms} ms\n`);
    }
    return ttff;
  };
  const trickleMode = await page.evaluate(() => window.rtcam.trickle);
  if (trickleMode !== 'on') throw new Error(`the page does not trickle (trickle=${trickleMode})`);
  const ttff = await joins('trickle');

  // The same joins with the offer waiting for gathering, on a page loaded with ?trickle=off.
  const plain = new URL(opts.url);
  plain.searchParams.set('trickle', 'off');
  await page.goto(plain.href, { waitUntil: 'load', timeout: 60_000 });
  await waitInPage(page, 'the first connection without trickle to play', () => {
    const r = window.rtcam;
    return r && r.state === 'live' && r.connected && r.framesDecoded > 0 && r.trickle === 'in-offer';
  }, null, 60_000);
  const ttffNoTrickle = await joins('candidates in the offer');
  await page.goto(opts.url, { waitUntil: 'load', timeout: 60_000 });

  // Glass to glass on one connection that has been playing for a moment.
  await waitInPage(page, 'a live connection', () => window.rtcam.state === 'live' && window.rtcam.connected,
    null, 60_000);
  await page.waitForTimeout(2000);
  // decoded_fps from the page's getStats polls (once a second) around the window.
  const g2g = await page.evaluate(async (ms) => {
    const r = window.rtcam;
    const mark = () => ({ t: r.statsAt, frames: r.framesDecoded, seq: r.connectionSeq });
    const before = mark();
    const samples = await r.stampLatencies(ms);
    return { samples, before, after: mark() };
  }, opts.seconds * 1000);
  const snap = await snapshot(page);
  const { before, after } = g2g;
  const decodedFps = before.seq === after.seq && after.t > before.t
    ? (after.frames - before.frames) / ((after.t - before.t) / 1000)
    : null;

  // Command round trips, one after another on the live connection.
  const commands = await page.evaluate(async ([n, gap]) => {
    const r = window.rtcam;
    const cmd = r.ptz ? 'ptz.get' : 'ping';
    const samples = [], errors = {};
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      try {
        await r.send(cmd, cmd === 'ping' ? { t } : {});
        samples.push(performance.now() - t);
      } catch (e) {
        errors[e.code] = (errors[e.code] || 0) + 1;
      }
      await new Promise((res) => setTimeout(res, gap));
    }
    return { cmd, samples, errors };
  }, [opts.commands, COMMAND_GAP_MS]);
  process.stderr.write(`command round trips: ${commands.samples.length} ${commands.cmd}` +
    (Object.keys(commands.errors).length ? `, errors ${JSON.stringify(commands.errors)}` : '') + '\n');

  const server = await page.evaluate(async () => {
    try { return await (await fetch('/api/status', { cache: 'no-store' })).json(); } catch (e) { return null; }
  });

  const out = {
    ttff_ms: summary(ttff),
    ttff_no_trickle_ms: summary(ttffNoTrickle),
    glass_to_glass_ms: summary(g2g.samples),
    decoded_fps: decodedFps == null ? null : Math.round(decodedFps * 10) / 10,
    command_rtt_ms: {
      ...summary(commands.samples),
      command: commands.cmd,
      errors: commands.errors,
    },
    codec: snap.codec,
    resolution: snap.width ? `${snap.width}x${snap.height}` : null,
    first_load_ttff_ms: firstLoad,
    frames_dropped: snap.framesDropped,
    packets_lost: snap.packetsLost,
    jitter_buffer_ms: snap.jitterBufferMs,
    ping_rtt_ms: snap.pingRtt,
    server: server && {
      fps: server.fps,
      fps_measured: server.fps_measured,
      frames_captured: server.frames_captured,
      frames_encoded: server.frames_encoded,
      frames_dropped: server.frames_dropped,
      frames_skipped: server.frames_skipped,
      encode_ms_p50: server.encode_ms_p50,
      capture_to_wire_ms_p50: server.capture_to_wire_ms_p50,
    },
  };
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(`bench FAILED: ${e && e.message ? e.message : e}`);
  console.error('--- browser console ---');
  for (const line of log) console.error(line);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
}
