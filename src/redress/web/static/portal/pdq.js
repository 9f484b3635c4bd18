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

// Box-filter every row of `src` (height x width) into `dst`.
function boxAlongRows(src, dst, width, height, size) {
  const { behind, ahead } = windowReach(size);
  for (let row = 0; row < height; row++) {
    const base = row * width;
    let sum = 0;
    let lo = 0; // first index inside the window
    let hi = -1; // last index inside the window
    for (let x = 0; x < width; x++) {
      const wantHi = Math.min(width - 1, x + ahead);
      while (hi < wantHi) sum += src[base + ++hi];
      const wantLo = Math.max(0, x - behind);
      while (lo < wantLo) sum -= src[base + lo++];
      dst[base + x] = sum / (hi - lo + 1);
    }
  }
}

// Box-filter every column of `src` into `dst`, walking rows in memory order
// (one running sum per column) so the pass stays cache-friendly on big photos.
function boxAlongColumns(src, dst, width, height, size) {
  const { behind, ahead } = windowReach(size);
  const sums = new Float64Array(width);
  let lo = 0;
  let hi = -1;
  for (let y = 0; y < height; y++) {
    const wantHi = Math.min(height - 1, y + ahead);
    while (hi < wantHi) {
      hi++;
      const base = hi * width;
      for (let x = 0; x < width; x++) sums[x] += src[base + x];
    }
    const wantLo = Math.max(0, y - behind);
    while (lo < wantLo) {
      const base = lo * width;
      for (let x = 0; x < width; x++) sums[x] -= src[base + x];
      lo++;
    }
    const inv = 1 / (hi - lo + 1);
    const out = y * width;
    for (let x = 0; x < width; x++) dst[out + x] = sums[x] * inv;
  }
}

// Index of the input sample at the centre of each of the 64 grid cells.
function gridCentres(length) {
  const centres = new Int32Array(GRID);
  for (let i = 0; i < GRID; i++) centres[i] = Math.floor(((i + 0.5) * length) / GRID);
  return centres;
}

// Mean of src[first..last] (clipped to 0..length-1) along one axis.
function clippedMean(src, start, stride, length, centre, behind, ahead) {
  const first = Math.max(0, centre - behind);
  const last = Math.min(length - 1, centre + ahead);
  let sum = 0;
  for (let k = first; k <= last; k++) sum += src[start + k * stride];
  return sum / (last - first + 1);
}

/**
 * Blur (two Jarosz X,Y box passes) and sample luma down to the 64x64 grid.
 *
 * The first X and Y passes run over the whole image. The second pair only
 * matters at the 64x64 sample points, so it is evaluated there alone: the
 * result is the same filter, at a little over half the work on big photos.
 * @param {Float32Array} luma  width x height, row-major; overwritten
 * @returns {Float64Array} 64 x 64, row-major
 */
export function downsampleTo64(luma, width, height) {
  if (width === GRID && height === GRID) return Float64Array.from(luma);
  const rowWindow = boxWindow(width);
  const colWindow = boxWindow(height);
  const scratch = new Float32Array(width * height);
  boxAlongRows(luma, scratch, width, height, rowWindow);
  boxAlongColumns(scratch, luma, width, height, colWindow);

  const xs = gridCentres(width);
  const ys = gridCentres(height);
  const rowReach = windowReach(rowWindow);
  const colReach = windowReach(colWindow);
  // Second row pass, only at the 64 sampled columns, for every row.
  const rowsAtColumns = new Float64Array(height * GRID);
  for (let y = 0; y < height; y++) {
    for (let j = 0; j < GRID; j++) {
      rowsAtColumns[y * GRID + j] = clippedMean(
        luma, y * width, 1, width, xs[j], rowReach.behind, rowReach.ahead,
      );
    }
  }
  // Second column pass, only at the 64 sampled rows.
  const grid = new Float64Array(GRID * GRID);
  for (let i = 0; i < GRID; i++) {
    for (let j = 0; j < GRID; j++) {
      grid[i * GRID + j] = clippedMean(
        rowsAtColumns, j, GRID, height, ys[i], colReach.behind, colReach.ahead,
      );
    }
  }
  return grid;
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

/**
 * PDQ hash, quality and (optionally) the eight dihedral hashes of a luma plane.
 * @param {Float32Array} luma width x height, row-major; used as scratch space
 * @param {number} width
 * @param {number} height
 * @param {{dihedral?: boolean}} [options]
 * @returns {PdqResult}
 */
export function pdqFromLuma(luma, width, height, { dihedral = true } = {}) {
  if (width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM) {
    // Meta's answer for images too small to hash: all-zero bits, quality 0.
    return { pdq: ZERO_HASH, quality: 0, dihedral: dihedral ? DIHEDRAL_NAMES.map(() => ZERO_HASH) : null };
  }
  const grid = downsampleTo64(luma, width, height);
  const quality = qualityOf(grid);
  const coeffs = dct16(grid);
  const pdq = bitsToHex(coeffs);
  const variants = dihedral
    ? DIHEDRAL_NAMES.map((name) => (name === "original" ? pdq : bitsToHex(dihedralCoefficients(coeffs, name))))
    : null;
  return { pdq, quality, dihedral: variants };
}

/**
 * PDQ of canvas pixels (an ImageData or anything with data/width/height).
 * @param {{data: Uint8ClampedArray, width: number, height: number}} image
 * @param {{dihedral?: boolean}} [options]
 * @returns {PdqResult}
 */
export function pdqFromImageData(image, options) {
  return pdqFromLuma(lumaFromRGBA(image.data, image.width, image.height), image.width, image.height, options);
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
