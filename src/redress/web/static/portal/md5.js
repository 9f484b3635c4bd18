// MD5 (RFC 1321), written for Redress: Web Crypto offers SHA-256 but not MD5,
// and StopNCII exchanges video MD5s, so the portal computes it on the device.
// MD5 is used here only to identify exact copies of a file, never for security.
// Incremental, so a large video can be hashed chunk by chunk in bounded memory.

// Per-step left-rotation amounts: four per round, repeated four times.
const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];

// K[i] = floor(|sin(i + 1)| * 2^32), as the RFC defines the additive constants.
const K = (() => {
  const k = new Int32Array(64);
  for (let i = 0; i < 64; i++) k[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;
  return k;
})();

// Which message word each step reads, per round.
const WORD = (() => {
  const w = new Uint8Array(64);
  for (let i = 0; i < 64; i++) {
    if (i < 16) w[i] = i;
    else if (i < 32) w[i] = (5 * i + 1) % 16;
    else if (i < 48) w[i] = (3 * i + 5) % 16;
    else w[i] = (7 * i) % 16;
  }
  return w;
})();

/** Incremental MD5: `update` with byte chunks, then `hex()` once. */
export class Md5 {
  constructor() {
    this.state = new Int32Array([0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476]);
    this.block = new Uint8Array(64);
    this.blockLength = 0;
    this.byteCount = 0;
    this.words = new Int32Array(16);
    this.finished = false;
  }

  /**
   * Feed more bytes.
   * @param {Uint8Array} bytes
   * @returns {Md5} this, for chaining
   */
  update(bytes) {
    if (this.finished) throw new Error("MD5 already finished");
    this.byteCount += bytes.length;
    let offset = 0;
    if (this.blockLength > 0) {
      const take = Math.min(64 - this.blockLength, bytes.length);
      this.block.set(bytes.subarray(0, take), this.blockLength);
      this.blockLength += take;
      offset = take;
      if (this.blockLength < 64) return this;
      this.#compress(this.block, 0);
      this.blockLength = 0;
    }
    for (; offset + 64 <= bytes.length; offset += 64) this.#compress(bytes, offset);
    this.block.set(bytes.subarray(offset), 0);
    this.blockLength = bytes.length - offset;
    return this;
  }

  /** The digest as 32 lowercase hex digits; the hasher cannot be fed afterwards. */
  hex() {
    if (!this.finished) {
      const bitCount = this.byteCount * 8;
      const tail = new Uint8Array(this.blockLength < 56 ? 64 : 128);
      tail.set(this.block.subarray(0, this.blockLength));
      tail[this.blockLength] = 0x80;
      const view = new DataView(tail.buffer);
      view.setUint32(tail.length - 8, bitCount % 2 ** 32, true);
      view.setUint32(tail.length - 4, Math.floor(bitCount / 2 ** 32), true);
      for (let offset = 0; offset < tail.length; offset += 64) this.#compress(tail, offset);
      this.finished = true;
    }
    let out = "";
    for (const word of this.state) {
      for (let b = 0; b < 4; b++) out += ((word >>> (8 * b)) & 0xff).toString(16).padStart(2, "0");
    }
    return out;
  }

  #compress(bytes, offset) {
    const m = this.words;
    for (let i = 0; i < 16; i++) {
      const p = offset + 4 * i;
      m[i] = bytes[p] | (bytes[p + 1] << 8) | (bytes[p + 2] << 16) | (bytes[p + 3] << 24);
    }
    const s = this.state;
    let a = s[0];
    let b = s[1];
    let c = s[2];
    let d = s[3];
    for (let i = 0; i < 64; i++) {
      let f;
      if (i < 16) f = (b & c) | (~b & d);
      else if (i < 32) f = (d & b) | (~d & c);
      else if (i < 48) f = b ^ c ^ d;
      else f = c ^ (b | ~d);
      f = (f + a + K[i] + m[WORD[i]]) | 0;
      const shift = SHIFTS[((i >> 4) << 2) | (i & 3)];
      a = d;
      d = c;
      c = b;
      b = (b + ((f << shift) | (f >>> (32 - shift)))) | 0;
    }
    s[0] = (s[0] + a) | 0;
    s[1] = (s[1] + b) | 0;
    s[2] = (s[2] + c) | 0;
    s[3] = (s[3] + d) | 0;
  }
}

/**
 * MD5 of a whole byte array, as 32 hex digits.
 * @param {Uint8Array} bytes
 */
export function md5Hex(bytes) {
  return new Md5().update(bytes).hex();
}
