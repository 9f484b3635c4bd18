// The robust reference set of a picture (docs/robustness.md, issue #11),
// computed on the victim's device: the same windows as the server's
// redress.signals.robust.reference_hash_set, so that cropped, captioned,
// screenshotted, stickered and mirrored copies of her pictures are found
// too. Everything is derived from the luma plane of the decoded picture;
// no pixels leave this module.
//
// What differs from the server: the four small-rotation hashes are not
// computed here (they need Pillow's bicubic rotation, to the bit), so a
// portal set holds at most 59 hashes; the set stays a valid reference set
// (hashes below quality 50 are left out on both sides anyway).

import { pdqFromLuma } from "./pdq.js";

export const WORK_SIDE = 384;
export const MIN_WINDOW_SIDE = 64;
export const MAX_ASPECT = 3;
export const QUALITY_MIN = 50;

const DIHEDRAL_ORDER = ["original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flipplus1", "flipminus1"];
const CENTRAL_SIDES = [0.97, 0.94, 0.91, 0.88, 0.85, 0.82, 0.79];
const EDGE_CUTS = [0.07, 0.105, 0.14, 0.175, 0.21, 0.245];
const CORNER_CUTS = [0.04, 0.08, 0.12, 0.16];

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x) {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The reference set's crop and half windows, named: [name, left, top, width, height] (fractions). */
export function referenceWindows() {
  const windows = [];
  for (const side of CENTRAL_SIDES) {
    const margin = (1 - side) / 2;
    windows.push([`central${roundHalfEven(side * 100)}`, margin, margin, side, side]);
  }
  for (const cut of EDGE_CUTS) {
    const keep = 1 - cut;
    const label = roundHalfEven(cut * 1000);
    windows.push([`cut-top${label}`, 0, cut, 1, keep]);
    windows.push([`cut-bottom${label}`, 0, 0, 1, keep]);
    windows.push([`cut-left${label}`, cut, 0, keep, 1]);
    windows.push([`cut-right${label}`, 0, 0, keep, 1]);
  }
  for (const cut of CORNER_CUTS) {
    const keep = 1 - cut;
    const label = roundHalfEven(cut * 1000);
    windows.push([`keep-topleft${label}`, 0, 0, keep, keep]);
    windows.push([`keep-topright${label}`, cut, 0, keep, keep]);
    windows.push([`keep-bottomleft${label}`, 0, cut, keep, keep]);
    windows.push([`keep-bottomright${label}`, cut, cut, keep, keep]);
  }
  windows.push(["half-top", 0, 0, 1, 0.5]);
  windows.push(["half-bottom", 0, 0.5, 1, 0.5]);
  windows.push(["half-left", 0, 0, 0.5, 1]);
  windows.push(["half-right", 0.5, 0, 0.5, 1]);
  return windows;
}

function hashableWindow(width, height) {
  if (Math.min(width, height) < MIN_WINDOW_SIDE) return false;
  return Math.max(width, height) / Math.min(width, height) <= MAX_ASPECT;
}

/** Luma of 4-byte pixels (RGBA or BGRA), as PDQ computes it. */
function lumaOf(data, width, height, order) {
  const [red, blue] = order === "bgra" ? [2, 0] : [0, 2];
  const luma = new Float32Array(width * height);
  for (let p = 0, q = 0; p < luma.length; p++, q += 4) {
    luma[p] = 0.299 * data[q + red] + 0.587 * data[q + 1] + 0.114 * data[q + blue];
  }
  return luma;
}

/** Pillow's BOX resampling weights along one axis (the pixels whose centres fall in each box). */
function boxTaps(inSize, outSize) {
  const scale = inSize / outSize;
  const support = 0.5 * Math.max(scale, 1);
  const taps = [];
  for (let out = 0; out < outSize; out++) {
    const centre = (out + 0.5) * scale;
    const first = Math.max(Math.trunc(centre - support + 0.5), 0);
    const last = Math.min(Math.trunc(centre + support + 0.5), inSize);
    const members = [];
    for (let x = first; x < last; x++) {
      const t = (x - centre + 0.5) / Math.max(scale, 1);
      if (t > -0.5 && t <= 0.5) members.push(x);
    }
    taps.push(members);
  }
  return taps;
}

/** The luma plane scaled (box filter) so its longer side is at most WORK_SIDE. */
function workPlane(luma, width, height) {
  const longest = Math.max(width, height);
  if (longest <= WORK_SIDE) return { plane: luma, width, height };
  const scale = WORK_SIDE / longest;
  const outW = Math.max(1, roundHalfEven(width * scale));
  const outH = Math.max(1, roundHalfEven(height * scale));
  const cols = boxTaps(width, outW);
  const rows = boxTaps(height, outH);
  // Horizontal pass, then vertical, as Pillow does.
  const across = new Float32Array(outW * height);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < outW; x++) {
      const members = cols[x];
      let sum = 0;
      for (const m of members) sum += luma[row + m];
      across[y * outW + x] = sum / members.length;
    }
  }
  const plane = new Float32Array(outW * outH);
  for (let y = 0; y < outH; y++) {
    const members = rows[y];
    for (let x = 0; x < outW; x++) {
      let sum = 0;
      for (const m of members) sum += across[m * outW + x];
      plane[y * outW + x] = sum / members.length;
    }
  }
  return { plane, width: outW, height: outH };
}

function crop(plane, width, left, top, right, bottom) {
  const w = right - left;
  const out = new Float32Array(w * (bottom - top));
  for (let y = top; y < bottom; y++) out.set(plane.subarray(y * width + left, y * width + right), (y - top) * w);
  return out;
}

/** The picture turned or mirrored in pixels (not PDQ's DCT shortcut), as the server does. */
function dihedralPlane(luma, width, height, name) {
  const transposed = ["rotate90", "rotate270", "flipplus1", "flipminus1"].includes(name);
  const outW = transposed ? height : width;
  const outH = transposed ? width : height;
  const out = new Float32Array(width * height);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let sx;
      let sy;
      switch (name) {
        case "original": [sx, sy] = [x, y]; break;
        case "rotate90": [sx, sy] = [width - 1 - y, x]; break; // counter-clockwise
        case "rotate180": [sx, sy] = [width - 1 - x, height - 1 - y]; break;
        case "rotate270": [sx, sy] = [y, height - 1 - x]; break;
        case "flipx": [sx, sy] = [x, height - 1 - y]; break; // top to bottom
        case "flipy": [sx, sy] = [width - 1 - x, y]; break; // left to right
        case "flipplus1": [sx, sy] = [y, x]; break; // transposed
        default: [sx, sy] = [width - 1 - y, height - 1 - x]; // transposed, then turned 180
      }
      out[y * outW + x] = luma[sy * width + sx];
    }
  }
  return { plane: out, width: outW, height: outH };
}

/**
 * The robust reference set of a decoded picture.
 * @param {{data: Uint8Array|Uint8ClampedArray, width: number, height: number}} image 4-byte pixels
 * @param {"rgba"|"bgra"} [order]
 * @returns {{kind: string, pdq: string, quality: number}[]} in the server's order
 */
export function referenceSet({ data, width, height }, order = "rgba") {
  const luma = lumaOf(data, width, height, order);
  const out = [];
  if (hashableWindow(width, height)) {
    for (const name of DIHEDRAL_ORDER) {
      const turned = dihedralPlane(luma, width, height, name);
      const { pdq, quality } = pdqFromLuma(turned.plane, turned.width, turned.height, { dihedral: false });
      if (quality >= QUALITY_MIN) out.push({ kind: `dihedral/${name}`, pdq, quality });
    }
  }
  const work = workPlane(luma, width, height);
  for (const [name, left, top, w, h] of referenceWindows()) {
    if (!hashableWindow(w * width, h * height)) continue;
    const x0 = roundHalfEven(left * work.width);
    const y0 = roundHalfEven(top * work.height);
    const x1 = Math.max(x0 + 1, Math.min(work.width, roundHalfEven((left + w) * work.width)));
    const y1 = Math.max(y0 + 1, Math.min(work.height, roundHalfEven((top + h) * work.height)));
    if (x1 - x0 < 16 || y1 - y0 < 16) continue;
    const window = crop(work.plane, work.width, x0, y0, x1, y1);
    const { pdq, quality } = pdqFromLuma(window, x1 - x0, y1 - y0, { dihedral: false });
    if (quality >= QUALITY_MIN) out.push({ kind: name, pdq, quality });
  }
  return out;
}
