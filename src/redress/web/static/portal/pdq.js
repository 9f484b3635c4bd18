// PDQ perceptual hashing in the browser, written for Redress from the published
// algorithm (Meta's "PDQ hashing" paper and README). No third-party code, no
// network access, no DOM: this module runs in a page or in a Web Worker.
//
// Pipeline (each step is a function below):
//   RGBA pixels -> luma (0.299 R + 0.587 G + 0.114 B)
//   -> Jarosz tent filter: box filter along rows, then along columns, twice,
//      with per-axis windows of ceil(dimension / 128)
//   -> 64x64 samples at the centres of a 64x64 grid
//   -> quality (0-100) from the sum of quantised neighbour gradients
//   -> 2D DCT-II coefficients 1..16 x 1..16 (the DC row and column skipped)
//   -> one bit per coefficient: greater than the median of the 256 or not
//   -> 64 hex digits in Meta's order (bit i*16+j of a 256-bit big-endian number)
//
// The eight dihedral hashes (rotations and flips) are computed from the same
// 16x16 coefficients by transposing and flipping signs, as Meta does, so they
// cost almost nothing beyond the first hash.

/** Images smaller than this on either side are not hashable (Meta's minimum). */
export const MIN_HASHABLE_DIM = 5;

/** PDQ hashes below this quality are not reliable for matching (Meta's advice). */
export const MIN_RELIABLE_QUALITY = 50;

/** Names of the eight dihedral variants, in Meta's order. */
export const DIHEDRAL_NAMES = Object.freeze([
  "original",
  "rotate90",
  "rotate180",
  "rotate270",
  "flipx",
  "flipy",
  "flipplus1",
  "flipminus1",
]);

const GRID = 64; // side of the downsampled luma grid
const COEFFS = 16; // side of the kept block of DCT coefficients

// DCT-II basis for frequencies 1..16 over 64 samples, row-major 16 x 64.
// Frequency 0 (the mean brightness) carries no structure and is left out.
const DCT_BASIS = (() => {
  const basis = new Float64Array(COEFFS * GRID);
  const scale = Math.sqrt(2 / GRID);
  for (let f = 0; f < COEFFS; f++) {
    for (let x = 0; x < GRID; x++) {
      basis[f * GRID + x] = scale * Math.cos((Math.PI / (2 * GRID)) * (f + 1) * (2 * x + 1));
    }
  }
  return basis;
})();

/**
 * Luminance of every pixel of RGBA data (as in ImageData.data), row-major.
 * Alpha is ignored, as when an image is converted to RGB before hashing.
 * @param {Uint8ClampedArray|Uint8Array} rgba
 * @param {number} width
 * @param {number} height
 * @returns {Float32Array}
 */
export function lumaFromRGBA(rgba, width, height) {
  const count = width * height;
  if (rgba.length < count * 4) {
    throw new RangeError(`RGBA data holds ${rgba.length} bytes; ${width}x${height} needs ${count * 4}`);
  }
  const luma = new Float32Array(count);
  for (let p = 0, q = 0; p < count; p++, q += 4) {
    luma[p] = 0.299 * rgba[q] + 0.587 * rgba[q + 1] + 0.114 * rgba[q + 2];
  }
  return luma;
}

/**
 * Jarosz box window along one axis: ceil(length / 128), so that two passes
 * of the box cover about one 64th of the axis, the area one grid cell stands for.
 * @param {number} length
 */
export function boxWindow(length) {
  return Math.floor((length + 2 * GRID - 1) / (2 * GRID));
}

// Where a box window of `size` samples sits around its output sample: Meta's
// filter centres odd windows and puts the extra sample of even windows ahead.
// Near the edges the window is clipped and the mean taken over what is left.
function windowReach(size) {
  const ahead = Math.floor((size + 2) / 2) - 1;
  return { behind: size - 1 - ahead, ahead };
}

// Box-filter one row (`row[0..width)`) into `dst` from `offset`, as running sums.
function boxRow(row, dst, offset, width, behind, ahead) {
  let hi = Math.min(width - 1, ahead); // last index inside the window
  let lo = 0; // first index inside the window
  let sum = 0;
  for (let x = 0; x <= hi; x++) sum += row[x];
  for (let x = 0; x < width; x++) {
    dst[offset + x] = sum / (hi - lo + 1);
    if (x + 1 + ahead < width) sum += row[++hi];
    if (x + 1 - behind > lo) sum -= row[lo++];
  }
}

// Index of the input sample at the centre of each of the 64 grid cells.
function gridCentres(length) {
  const centres = new Int32Array(GRID);
  for (let i = 0; i < GRID; i++) centres[i] = Math.floor(((i + 0.5) * length) / GRID);
  return centres;
}

// First pass along rows, over the whole image. `fillRow(y, row)` writes row
// y's luma into `row`; the result keeps single precision, as the reference does.
function boxAllRows(fillRow, width, height, size) {
  const { behind, ahead } = windowReach(size);
  const row = new Float32Array(width);
  const boxed = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    fillRow(y, row);
    boxRow(row, boxed, y * width, width, behind, ahead);
  }
  return boxed;
}

// The rest of the tent filter, evaluated only where the 64x64 samples need it.
// Column pass 1 keeps one running sum per column (walking rows in memory
// order) but only for the columns that row pass 2 reads near the 64 sampled
// columns; row pass 2 is evaluated at those 64 columns for every row, and
// column pass 2 at the 64 sampled rows. Same filter, a fraction of the work.
function finishTentAtGrid(boxed, width, height, rowWindow, colWindow) {
  const across = windowReach(rowWindow);
  const down = windowReach(colWindow);
  const xs = gridCentres(width);
  const ys = gridCentres(height);
  const first = new Int32Array(GRID);
  const last = new Int32Array(GRID);
  for (let j = 0; j < GRID; j++) {
    first[j] = Math.max(0, xs[j] - across.behind);
    last[j] = Math.min(width - 1, xs[j] + across.ahead);
  }
  // Runs of columns [start, end] that some sampled column's window covers.
  const runs = [];
  for (let j = 0; j < GRID; j++) {
    const open = runs[runs.length - 1];
    if (open !== undefined && first[j] <= open[1] + 1) open[1] = Math.max(open[1], last[j]);
    else runs.push([first[j], last[j]]);
  }
  const sums = new Float64Array(width);
  const atColumns = new Float64Array(height * GRID); // row pass 2 at the sampled columns
  let lo = 0;
  let hi = -1;
  for (let y = 0; y < height; y++) {
    const wantHi = Math.min(height - 1, y + down.ahead);
    while (hi < wantHi) {
      const base = ++hi * width;
      for (const [start, end] of runs) for (let x = start; x <= end; x++) sums[x] += boxed[base + x];
    }
    const wantLo = Math.max(0, y - down.behind);
    while (lo < wantLo) {
      const base = lo++ * width;
      for (const [start, end] of runs) for (let x = start; x <= end; x++) sums[x] -= boxed[base + x];
    }
    const perRow = 1 / (hi - lo + 1);
    for (let j = 0; j < GRID; j++) {
      let sum = 0;
      for (let x = first[j]; x <= last[j]; x++) sum += sums[x];
      atColumns[y * GRID + j] = (sum * perRow) / (last[j] - first[j] + 1);
    }
  }
  const grid = new Float64Array(GRID * GRID);
  for (let i = 0; i < GRID; i++) {
    const top = Math.max(0, ys[i] - down.behind);
    const bottom = Math.min(height - 1, ys[i] + down.ahead);
    for (let j = 0; j < GRID; j++) {
      let sum = 0;
      for (let y = top; y <= bottom; y++) sum += atColumns[y * GRID + j];
      grid[i * GRID + j] = sum / (bottom - top + 1);
    }
  }
  return grid;
}

/**
 * Blur (two Jarosz X,Y box passes) and sample a luma plane down to 64x64.
 * @param {Float32Array} luma width x height, row-major
 * @returns {Float64Array} 64 x 64, row-major
 */
export function downsampleTo64(luma, width, height) {
  if (width === GRID && height === GRID) return Float64Array.from(luma);
  const rowWindow = boxWindow(width);
  const fillRow = (y, row) => row.set(luma.subarray(y * width, (y + 1) * width));
  const boxed = boxAllRows(fillRow, width, height, rowWindow);
  return finishTentAtGrid(boxed, width, height, rowWindow, boxWindow(height));
}

// The same from 4-byte pixels, computing luma a row at a time (no full luma
// plane). `red` and `blue` are the byte offsets of R and B in a pixel
// (0 and 2 for RGBA, 2 and 0 for BGRA); green is always byte 1.
function downsamplePixelsTo64(pixels, width, height, red, blue) {
  const rowWindow = boxWindow(width);
  const fillRow = (y, row) => {
    for (let x = 0, q = y * width * 4; x < width; x++, q += 4) {
      row[x] = 0.299 * pixels[q + red] + 0.587 * pixels[q + 1] + 0.114 * pixels[q + blue];
    }
  };
  const boxed = boxAllRows(fillRow, width, height, rowWindow);
  return finishTentAtGrid(boxed, width, height, rowWindow, boxWindow(height));
}

/**
 * Meta's quality score (0-100): how much significant gradient the 64x64
 * grid has. Flat or nearly blank images score low and hash unreliably.
 * Arithmetic follows the reference's single-precision steps and truncation.
 * @param {Float64Array} grid 64 x 64
 */
export function qualityOf(grid) {
  const f = Math.fround;
  let gradientSum = 0;
  const step = (u, v) => Math.abs(Math.trunc(f(f(f(f(u) - f(v)) * 100) / 255)));
  for (let i = 0; i < GRID - 1; i++) {
    for (let j = 0; j < GRID; j++) gradientSum += step(grid[i * GRID + j], grid[(i + 1) * GRID + j]);
  }
  for (let i = 0; i < GRID; i++) {
    for (let j = 0; j < GRID - 1; j++) gradientSum += step(grid[i * GRID + j], grid[i * GRID + j + 1]);
  }
  return Math.min(100, Math.floor(gradientSum / 90));
}

/**
 * DCT-II coefficients 1..16 x 1..16 of the 64x64 grid: D * grid * D^T.
 * @param {Float64Array} grid
 * @returns {Float64Array} 16 x 16, row-major (row = vertical frequency)
 */
export function dct16(grid) {
  const partial = new Float64Array(COEFFS * GRID); // D * grid
  for (let f = 0; f < COEFFS; f++) {
    for (let x = 0; x < GRID; x++) {
      let sum = 0;
      for (let k = 0; k < GRID; k++) sum += DCT_BASIS[f * GRID + k] * grid[k * GRID + x];
      partial[f * GRID + x] = sum;
    }
  }
  const coeffs = new Float64Array(COEFFS * COEFFS);
  for (let f = 0; f < COEFFS; f++) {
    for (let g = 0; g < COEFFS; g++) {
      let sum = 0;
      for (let k = 0; k < GRID; k++) sum += partial[f * GRID + k] * DCT_BASIS[g * GRID + k];
      coeffs[f * COEFFS + g] = sum;
    }
  }
  return coeffs;
}

/**
 * The 256-bit hash of a 16x16 coefficient block as Meta's 64 hex digits:
 * bit i*16+j (set when coefficient (i, j) exceeds the median) is bit
 * number i*16+j of a big-endian 256-bit number, so row 15 comes first.
 * @param {Float64Array} coeffs
 */
export function bitsToHex(coeffs) {
  // The median is the 128th smallest value (the lower median, as Torben's
  // selection returns for an even count), so about half the bits are set.
  const median = Float64Array.from(coeffs).sort()[(COEFFS * COEFFS) / 2 - 1];
  const nibbles = new Uint8Array(64);
  for (let k = 0; k < COEFFS * COEFFS; k++) {
    if (coeffs[k] > median) nibbles[63 - (k >> 2)] |= 1 << (k & 3);
  }
  let hex = "";
  for (const nibble of nibbles) hex += nibble.toString(16);
  return hex;
}

// How each dihedral variant's coefficients follow from the original's.
// Mirroring an axis of 64 samples multiplies DCT frequency f by (-1)^f; our
// index i holds frequency i+1, so even indices change sign. A 90-degree turn
// is a transpose followed by a mirror. Fields: swap rows and columns first,
// then negate coefficients whose row (or column) index is even.
const DIHEDRAL_RULES = Object.freeze({
  original: { transpose: false, negateEvenRow: false, negateEvenCol: false },
  rotate90: { transpose: true, negateEvenRow: true, negateEvenCol: false },
  rotate180: { transpose: false, negateEvenRow: true, negateEvenCol: true },
  rotate270: { transpose: true, negateEvenRow: false, negateEvenCol: true },
  flipx: { transpose: false, negateEvenRow: true, negateEvenCol: false },
  flipy: { transpose: false, negateEvenRow: false, negateEvenCol: true },
  flipplus1: { transpose: true, negateEvenRow: false, negateEvenCol: false },
  flipminus1: { transpose: true, negateEvenRow: true, negateEvenCol: true },
});

/**
 * Coefficients of a dihedral variant of the image, from the original's.
 * @param {Float64Array} coeffs 16x16 of the upright image
 * @param {string} name one of DIHEDRAL_NAMES
 */
export function dihedralCoefficients(coeffs, name) {
  const rule = DIHEDRAL_RULES[name];
  if (rule === undefined) throw new RangeError(`unknown dihedral variant ${name}`);
  const out = new Float64Array(COEFFS * COEFFS);
  for (let i = 0; i < COEFFS; i++) {
    for (let j = 0; j < COEFFS; j++) {
      const [r, c] = rule.transpose ? [j, i] : [i, j];
      let value = coeffs[i * COEFFS + j];
      if (rule.negateEvenRow && r % 2 === 0) value = -value;
      if (rule.negateEvenCol && c % 2 === 0) value = -value;
      out[r * COEFFS + c] = value;
    }
  }
  return out;
}

/**
 * @typedef {object} PdqResult
 * @property {string} pdq 64 hex digits
 * @property {number} quality 0-100
 * @property {string[]|null} dihedral the eight variants in DIHEDRAL_NAMES order
 *   (the first equals `pdq`), or null when not asked for
 */

const ZERO_HASH = "0".repeat(64);

function tooSmall(dihedral) {
  // Meta's answer for images too small to hash: all-zero bits, quality 0.
  return { pdq: ZERO_HASH, quality: 0, dihedral: dihedral ? DIHEDRAL_NAMES.map(() => ZERO_HASH) : null };
}

function pdqFromGrid(grid, dihedral) {
  const quality = qualityOf(grid);
  const coeffs = dct16(grid);
  const pdq = bitsToHex(coeffs);
  const variants = dihedral
    ? DIHEDRAL_NAMES.map((name) => (name === "original" ? pdq : bitsToHex(dihedralCoefficients(coeffs, name))))
    : null;
  return { pdq, quality, dihedral: variants };
}

/**
 * PDQ hash, quality and (optionally) the eight dihedral hashes of a luma plane.
 * @param {Float32Array} luma width x height, row-major
 * @param {number} width
 * @param {number} height
 * @param {{dihedral?: boolean}} [options]
 * @returns {PdqResult}
 */
export function pdqFromLuma(luma, width, height, { dihedral = true } = {}) {
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) return tooSmall(dihedral);
  return pdqFromGrid(downsampleTo64(luma, width, height), dihedral);
}

/**
 * PDQ of 4-byte pixels: an ImageData (RGBA), or the BGRA/BGRX bytes a
 * WebCodecs VideoFrame holds, tightly packed, row-major. Luma is computed a
 * row at a time, so no full-size luma plane is held.
 * @param {{data: Uint8Array|Uint8ClampedArray, width: number, height: number}} image
 * @param {{dihedral?: boolean, order?: "rgba"|"bgra"}} [options]
 * @returns {PdqResult}
 */
export function pdqFromImageData({ data, width, height }, { dihedral = true, order = "rgba" } = {}) {
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) return tooSmall(dihedral);
  if (data.length < width * height * 4) {
    throw new RangeError(`pixel data holds ${data.length} bytes; ${width}x${height} needs ${width * height * 4}`);
  }
  if (order !== "rgba" && order !== "bgra") throw new RangeError(`unknown pixel order ${order}`);
  const [red, blue] = order === "rgba" ? [0, 2] : [2, 0];
  return pdqFromGrid(downsamplePixelsTo64(data, width, height, red, blue), dihedral);
}

const POPCOUNT4 = [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];

/**
 * Hamming distance in bits between two hashes written as hex of equal length.
 * @param {string} a
 * @param {string} b
 */
export function hammingDistance(a, b) {
  if (a.length !== b.length) throw new RangeError("hashes differ in length");
  let distance = 0;
  for (let k = 0; k < a.length; k++) {
    distance += POPCOUNT4[parseInt(a[k], 16) ^ parseInt(b[k], 16)];
  }
  return distance;
}
