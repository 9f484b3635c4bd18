// Just enough EXIF reading for hashing: where a JPEG's Orientation tag is.
//
// Chromium always applies a JPEG's EXIF orientation when decoding for a
// canvas (createImageBitmap's imageOrientation "none" no longer turns it
// off), so to hash a photo as stored - the way Hasher-Matcher-Actioner does -
// the portal decodes a copy whose Orientation tag is set to 1 (upright).
// Written from the EXIF 2.3 / TIFF 6.0 layout: a JPEG APP1 segment holding
// "Exif\0\0", then a TIFF header (byte order, 42, offset of IFD0), then IFD0's
// 12-byte entries (tag, type, count, value).

const ORIENTATION_TAG = 0x0112;
const TYPE_SHORT = 3;

/**
 * The EXIF orientation (1-8) of a JPEG and the byte offset of its value,
 * or null when the file is not a JPEG or carries no orientation.
 * @param {Uint8Array} bytes
 * @returns {{orientation: number, valueOffset: number, littleEndian: boolean}|null}
 */
export function jpegOrientation(bytes) {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 2;
  while (offset + 4 <= bytes.length) {
    if (bytes[offset] !== 0xff) return null; // not a marker: malformed, give up
    const marker = bytes[offset + 1];
    if (marker === 0xff) {
      offset += 1; // fill byte
      continue;
    }
    if (marker === 0xda || marker === 0xd9) return null; // image data / end: no EXIF before it
    const length = view.getUint16(offset + 2);
    const start = offset + 4;
    if (marker === 0xe1 && length >= 16 && start + 6 <= bytes.length) {
      const found = readExifOrientation(view, start, Math.min(bytes.length, offset + 2 + length));
      if (found !== null) return found;
    }
    offset += 2 + length;
  }
  return null;
}

function readExifOrientation(view, start, end) {
  // "Exif\0\0"
  const header = [0x45, 0x78, 0x69, 0x66, 0x00, 0x00];
  for (let k = 0; k < header.length; k++) if (view.getUint8(start + k) !== header[k]) return null;
  const tiff = start + 6;
  if (tiff + 8 > end) return null;
  const order = view.getUint16(tiff);
  const littleEndian = order === 0x4949; // "II"
  if (!littleEndian && order !== 0x4d4d) return null; // not "MM" either
  if (view.getUint16(tiff + 2, littleEndian) !== 42) return null;
  const ifd = tiff + view.getUint32(tiff + 4, littleEndian);
  if (ifd + 2 > end) return null;
  const count = view.getUint16(ifd, littleEndian);
  for (let k = 0; k < count; k++) {
    const entry = ifd + 2 + 12 * k;
    if (entry + 12 > end) return null;
    if (view.getUint16(entry, littleEndian) !== ORIENTATION_TAG) continue;
    if (view.getUint16(entry + 2, littleEndian) !== TYPE_SHORT) return null;
    const valueOffset = entry + 8;
    return { orientation: view.getUint16(valueOffset, littleEndian), valueOffset, littleEndian };
  }
  return null;
}

/**
 * A copy of a JPEG whose EXIF orientation says "upright" (1), so a decoder
 * shows the pixels as stored; the input itself when there is nothing to change.
 * @param {Uint8Array} bytes
 * @returns {Uint8Array}
 */
export function withUprightOrientation(bytes) {
  const found = jpegOrientation(bytes);
  if (found === null || found.orientation < 2 || found.orientation > 8) return bytes;
  const copy = bytes.slice();
  new DataView(copy.buffer).setUint16(found.valueOffset, 1, found.littleEndian);
  return copy;
}
