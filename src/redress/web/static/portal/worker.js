// The portal's hashing worker: decodes and hashes off the page's main thread
// so the page stays responsive while a victim's photos are fingerprinted.
// Everything happens in this browser; nothing here can reach the network.
//
// Protocol: the page posts {id, task} and gets back {id, ok: true, result}
// or {id, ok: false, error: {code, message}}. Tasks:
//   {type: "image", file, applyExif, maxPixels, readVia ("auto" or "canvas")}
//       -> {md5, sha256, pdq, quality, dihedral, robust, width, height, sourceWidth,
//           sourceHeight, orientation, readVia}
//   {type: "frame", width, height, pixels}  (RGBA ArrayBuffer, transferred)
//       -> {pdq, quality}
//   {type: "md5", file}                    -> {md5}  (read in chunks: videos can be large)

import { jpegOrientation, withUprightOrientation } from "./exif.js";
import { Md5, md5Hex } from "./md5.js";
import { pdqFromImageData } from "./pdq.js";
import { referenceSet } from "./robust.js";

const CHUNK_BYTES = 8 * 1024 * 1024;

class TaskError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Decode image bytes to RGBA pixels.
 * EXIF orientation is applied (the photo as its owner sees it) unless
 * applyExif is false, which reproduces hashers that ignore it (HMA): then a
 * JPEG is decoded from a copy whose orientation tag says "upright".
 * Colour profiles are not applied, as the server's Pillow decoding does not.
 * Photos above maxPixels are scaled down (high-quality resampling) first.
 */
async function decodeImage(bytes, type, applyExif, maxPixels, readVia) {
  const source = new Blob([applyExif ? bytes : withUprightOrientation(bytes)], { type });
  let bitmap;
  try {
    bitmap = await createImageBitmap(source, {
      imageOrientation: "from-image",
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
    });
  } catch (err) {
    throw new TaskError(
      "undecodable_image",
      `this browser cannot decode the image (${err && err.message ? err.message : err})`,
    );
  }
  const sourceWidth = bitmap.width;
  const sourceHeight = bitmap.height;
  let width = sourceWidth;
  let height = sourceHeight;
  if (maxPixels > 0 && width * height > maxPixels) {
    const scale = Math.sqrt(maxPixels / (width * height));
    width = Math.max(1, Math.floor(width * scale));
    height = Math.max(1, Math.floor(height * scale));
    const scaled = await createImageBitmap(bitmap, {
      resizeWidth: width,
      resizeHeight: height,
      resizeQuality: "high",
    });
    bitmap.close();
    bitmap = scaled;
  }
  try {
    return { ...(await pixelsOf(bitmap, readVia)), sourceWidth, sourceHeight };
  } finally {
    bitmap.close();
  }
}

// Byte order of the 4-byte VideoFrame formats we can read directly.
const FRAME_ORDERS = { RGBA: "rgba", RGBX: "rgba", BGRA: "bgra", BGRX: "bgra" };

/**
 * The bitmap's pixels. A WebCodecs VideoFrame hands over the decoded bytes
 * in the decoder's own layout without a canvas round trip (several times
 * faster on 12 MP photos); a canvas is the fallback. Both give the same bytes
 * for an upright image; only a canvas applies a pending EXIF orientation.
 */
async function pixelsOf(bitmap, readVia) {
  const { width, height } = bitmap;
  if (readVia !== "canvas" && typeof VideoFrame === "function") {
    let frame = null;
    try {
      frame = new VideoFrame(bitmap, { timestamp: 0 });
      const order = FRAME_ORDERS[frame.format];
      if (order !== undefined) {
        const options = { rect: { x: 0, y: 0, width, height }, layout: [{ offset: 0, stride: width * 4 }] };
        const data = new Uint8Array(frame.allocationSize(options));
        await frame.copyTo(data, options);
        return { data, width, height, order, readVia: "videoframe" };
      }
    } catch {
      // fall through to the canvas
    } finally {
      if (frame !== null) frame.close();
    }
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  const { data } = context.getImageData(0, 0, width, height);
  return { data, width, height, order: "rgba", readVia: "canvas" };
}

async function hashImage({ file, applyExif, maxPixels, readVia }) {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const sha256 = hex(await crypto.subtle.digest("SHA-256", bytes));
  const md5 = md5Hex(bytes);
  const exif = jpegOrientation(bytes);
  // Chromium keeps EXIF orientation as bitmap metadata that a canvas honours
  // but a VideoFrame ignores, so only upright JPEGs take the fast pixel read.
  const turned = applyExif && exif !== null && exif.orientation >= 2 && exif.orientation <= 8;
  const isJpeg = bytes.length > 2 && bytes[0] === 0xff && bytes[1] === 0xd8;
  const via = isJpeg && !turned ? readVia : "canvas";
  const pixels = await decodeImage(bytes, file.type, applyExif, maxPixels, via);
  const { pdq, quality, dihedral } = pdqFromImageData(pixels, { dihedral: true, order: pixels.order });
  const robust = referenceSet(pixels, pixels.order);
  return {
    md5,
    sha256,
    pdq,
    quality,
    dihedral,
    robust,
    width: pixels.width,
    height: pixels.height,
    sourceWidth: pixels.sourceWidth,
    sourceHeight: pixels.sourceHeight,
    orientation: exif === null ? 1 : exif.orientation,
    readVia: pixels.readVia,
  };
}

function hashFrame({ width, height, pixels }) {
  const { pdq, quality } = pdqFromImageData(
    { data: new Uint8ClampedArray(pixels), width, height },
    { dihedral: false },
  );
  return { pdq, quality };
}

async function md5OfFile({ file }) {
  const md5 = new Md5();
  for (let offset = 0; offset < file.size; offset += CHUNK_BYTES) {
    md5.update(new Uint8Array(await file.slice(offset, offset + CHUNK_BYTES).arrayBuffer()));
  }
  return { md5: md5.hex() };
}

const TASKS = { image: hashImage, frame: hashFrame, md5: md5OfFile };

self.onmessage = async (event) => {
  const { id, task } = event.data;
  try {
    const run = TASKS[task.type];
    if (run === undefined) throw new TaskError("unknown_task", `unknown task type ${task.type}`);
    self.postMessage({ id, ok: true, result: await run(task) });
  } catch (err) {
    const code = err instanceof TaskError ? err.code : "hashing_failed";
    self.postMessage({ id, ok: false, error: { code, message: String(err && err.message ? err.message : err) } });
  }
};
