// The frame stamp, read back from the picture: 112 bits (seq u32, capture_us u64,
// CRC-16/CCITT-FALSE u16, big-endian, MSB of byte 0 first) as c×c grey cells, row-major from
// the top-left corner. The writer is src/source/stamp.rs; this is the page's one reader (the
// browser tests use it through `window.rtcam` or by importing this module).

import { round1 } from './state.js';

export const STAMP_BITS = 112;
let stampCanvas = null, stampCtx = null;

export function crc16(bytes, n) {
  let crc = 0xffff;
  for (let i = 0; i < n; i++) {
    crc ^= bytes[i] << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

// Cell size, cells per row and rows of the stamp in a picture `width` pixels wide.
export function stampGeometry(width) {
  const c = width >= 480 ? 16 : 8;
  const perRow = Math.floor(width / c);
  return { c, perRow, rows: perRow > 0 ? Math.ceil(STAMP_BITS / perRow) : 0 };
}

// The geometries a picture `width` wide may carry its stamp in: its own, and that of a picture
// twice as wide after a 2:1 downscale (rtcam's half-size encoding for slow links).
function candidateGeometries(width) {
  const full = stampGeometry(width * 2);
  return [stampGeometry(width), { c: full.c / 2, perRow: full.perRow, rows: full.rows }]
    .filter((g) => g.perRow > 0 && g.perRow * g.c <= width);
}

// Decodes a stamp from RGBA pixels (an ImageData-like {data, width}) of a picture
// `videoWidth` wide. Returns {seq, captureUs} or null when the CRC does not match.
export function decodeStamp(img, videoWidth) {
  for (const g of candidateGeometries(videoWidth)) {
    const stamp = decodeStampIn(img, g);
    if (stamp) return stamp;
  }
  return null;
}

function decodeStampIn(img, { c, perRow, rows }) {
  if (!perRow || img.height < rows * c) return null;
  const bytes = new Uint8Array(14);
  const half = c / 2, q = c / 4, px = img.data, stride = img.width * 4;
  for (let i = 0; i < STAMP_BITS; i++) {
    const x0 = (i % perRow) * c + q, y0 = Math.floor(i / perRow) * c + q;
    let sum = 0;
    for (let y = y0; y < y0 + half; y++) {
      for (let x = x0, o = y * stride + x0 * 4; x < x0 + half; x++, o += 4) sum += px[o] + px[o + 1] + px[o + 2];
    }
    if (sum / 3 / (half * half) >= 128) bytes[i >> 3] |= 0x80 >> (i & 7);
  }
  if (crc16(bytes, 12) !== ((bytes[12] << 8) | bytes[13])) return null;
  const dv = new DataView(bytes.buffer);
  return { seq: dv.getUint32(0), captureUs: dv.getUint32(4) * 4294967296 + dv.getUint32(8) };
}

// Reads the stamp of the frame the <video> element shows now (or, inside a
// requestVideoFrameCallback, the frame being presented).
export function readStamp(video) {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h || video.readyState < 2) return null;
  const geometries = candidateGeometries(w);
  const cw = Math.min(w, Math.max(0, ...geometries.map((g) => g.perRow * g.c)));
  const ch = Math.min(h, Math.max(0, ...geometries.map((g) => g.rows * g.c)));
  if (!cw || !ch) return null;
  if (!stampCtx) {
    stampCanvas = document.createElement('canvas');
    stampCtx = stampCanvas.getContext('2d', { willReadFrequently: true });
  }
  if (stampCanvas.width !== cw || stampCanvas.height !== ch) { stampCanvas.width = cw; stampCanvas.height = ch; }
  try {
    stampCtx.drawImage(video, 0, 0, cw, ch, 0, 0, cw, ch); // intrinsic pixels, 1:1
    return decodeStamp(stampCtx.getImageData(0, 0, cw, ch), w);
  } catch (e) {
    return null;
  }
}

// Glass-to-glass samples (ms) over `durationMs`: for each frame the <video> element presents,
// display time − capture time from its stamp. Both clocks are wall clocks of the same host.
export function stampLatencies(video, durationMs = 10000) {
  return new Promise((resolve) => {
    const out = [];
    const end = performance.now() + durationMs;
    let lastSeq = -1, done = false, handle = 0;
    const finish = () => {
      if (done) return;
      done = true;
      if (handle && video.cancelVideoFrameCallback) video.cancelVideoFrameCallback(handle);
      resolve(out);
    };
    const sample = (displayTime) => {
      const st = readStamp(video);
      if (!st || st.seq === lastSeq) return;
      lastSeq = st.seq;
      out.push(round1(performance.timeOrigin + displayTime - st.captureUs / 1000));
    };
    if (video.requestVideoFrameCallback) {
      const cb = (now, meta) => {
        if (done) return;
        sample(meta && meta.expectedDisplayTime ? meta.expectedDisplayTime : now);
        if (performance.now() < end) handle = video.requestVideoFrameCallback(cb); else finish();
      };
      handle = video.requestVideoFrameCallback(cb);
      setTimeout(finish, durationMs + 1000); // rVFC stops in hidden pages
    } else {
      const tick = (now) => {
        if (done) return;
        sample(now);
        if (performance.now() < end) requestAnimationFrame(tick); else finish();
      };
      requestAnimationFrame(tick);
      setTimeout(finish, durationMs + 1000);
    }
  });
}
