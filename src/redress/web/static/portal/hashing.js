// The portal's hashing API: turn the files a victim selects into the hash
// set the matcher needs (hashset.json), on her own device. Images are
// decoded and hashed in Web Workers; videos are sampled through a <video>
// element on the page (workers have no media element) and each sampled
// frame is hashed in a worker. No file bytes, pixels or thumbnails are
// sent anywhere: this module makes no network requests of its own beyond
// loading its sibling scripts and hashset.json.
//
// Usage from the portal page:
//   import { PortalHasher } from "/static/portal/hashing.js";
//   const hasher = new PortalHasher();
//   const results = await hasher.hashFiles(input.files, { onProgress });
//   hasher.close();
// Each result is {name, size, type, kind, hashes, flags, ...} or
// {name, size, type, kind, error: {code, message}}; only `hashes` is for upload.

// Loaded with fetch rather than a JSON module import, which older Safari
// and Firefox versions (still on many phones) cannot parse.
/** The hash-set definition (hashset.json), shared with the server. */
export const HASH_SET = Object.freeze(
  await fetch(new URL("./hashset.json", import.meta.url)).then((response) => {
    if (!response.ok) throw new Error(`hashset.json: HTTP ${response.status}`);
    return response.json();
  }),
);

/** Photos above this many pixels are scaled down before hashing (memory bound). */
export const DEFAULT_MAX_PIXELS = 24_000_000;

const IMAGE_EXTENSIONS = new Set(["jpg", "jpeg", "png", "gif", "webp", "bmp", "avif", "heic", "heif", "tif", "tiff"]);
const VIDEO_EXTENSIONS = new Set(["mp4", "m4v", "mov", "webm", "mkv", "ogv", "3gp"]);

/**
 * "image", "video" or null for a File, from its MIME type or, failing that, its extension.
 * @param {File} file
 */
export function fileKind(file) {
  const type = (file.type || "").toLowerCase();
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("video/")) return "video";
  const extension = (file.name || "").toLowerCase().split(".").pop();
  if (IMAGE_EXTENSIONS.has(extension)) return "image";
  if (VIDEO_EXTENSIONS.has(extension)) return "video";
  return null;
}

// --- the hash-set definition -------------------------------------------------

function checkValue(value, rule, path, problems) {
  switch (rule.type) {
    case "hex":
      if (typeof value !== "string" || value.length !== rule.length || !/^[0-9a-f]*$/.test(value)) {
        problems.push(`${path}: expected ${rule.length} lowercase hex digits`);
      }
      break;
    case "integer":
    case "number":
      if (typeof value !== "number" || !Number.isFinite(value) || (rule.type === "integer" && !Number.isInteger(value))) {
        problems.push(`${path}: expected ${rule.type === "integer" ? "an integer" : "a number"}`);
      } else if ((rule.minimum !== undefined && value < rule.minimum) || (rule.maximum !== undefined && value > rule.maximum)) {
        problems.push(`${path}: ${value} is outside ${rule.minimum ?? "-inf"}..${rule.maximum ?? "inf"}`);
      }
      break;
    case "array":
      if (!Array.isArray(value)) {
        problems.push(`${path}: expected a list`);
      } else {
        if (rule.length !== undefined && value.length !== rule.length) {
          problems.push(`${path}: expected ${rule.length} entries, got ${value.length}`);
        }
        if (rule.max_length !== undefined && value.length > rule.max_length) {
          problems.push(`${path}: expected at most ${rule.max_length} entries, got ${value.length}`);
        }
        value.forEach((item, index) => checkValue(item, rule.items, `${path}[${index}]`, problems));
      }
      break;
    case "object":
      checkFields(value, rule.fields, path, problems);
      break;
    default:
      problems.push(`${path}: unknown rule type ${rule.type}`);
  }
}

function checkFields(value, fields, path, problems) {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    problems.push(`${path}: expected an object`);
    return;
  }
  for (const [name, rule] of Object.entries(fields)) {
    if (!(name in value)) problems.push(`${path}.${name}: missing`);
    else checkValue(value[name], rule, `${path}.${name}`, problems);
  }
  for (const name of Object.keys(value)) {
    if (!(name in fields)) problems.push(`${path}.${name}: not part of the hash set`);
  }
}

/**
 * Problems (empty when none) of a hash set against hashset.json.
 * @param {"image"|"video"} kind
 * @param {object} hashes
 * @returns {string[]}
 */
export function checkHashSet(kind, hashes) {
  const fields = HASH_SET[kind];
  if (fields === undefined) return [`unknown kind ${kind}`];
  const problems = [];
  checkFields(hashes, fields, kind, problems);
  return problems;
}

// --- workers -----------------------------------------------------------------

class WorkerPool {
  constructor(size) {
    this.idle = [];
    this.waiting = [];
    this.pending = new Map();
    this.nextId = 1;
    this.all = [];
    this.closed = false;
    // Replacements for crashed workers, bounded so a script that cannot load
    // at all does not respawn forever.
    this.respawnsLeft = 2 * size;
    for (let k = 0; k < size; k++) this.idle.push(this.#spawn());
  }

  #spawn() {
    const worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
    worker.onmessage = (event) => this.#settle(worker, event.data);
    worker.onerror = (event) => this.#crash(worker, event);
    this.all.push(worker);
    return worker;
  }

  /** Run one task on the next free worker. */
  run(task, transfer = []) {
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, transfer, resolve, reject });
      this.#dispatch();
    });
  }

  close() {
    this.closed = true;
    for (const worker of this.all) worker.terminate();
    for (const job of this.pending.values()) job.reject(new HashingError("hashing_stopped", "hashing was stopped"));
    this.pending.clear();
  }

  #dispatch() {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const worker = this.idle.pop();
      const job = this.waiting.shift();
      const id = this.nextId++;
      this.pending.set(id, { ...job, worker });
      worker.postMessage({ id, task: job.task }, job.transfer);
    }
  }

  #settle(worker, { id, ok, result, error }) {
    const job = this.pending.get(id);
    this.pending.delete(id);
    this.idle.push(worker);
    if (job !== undefined) {
      if (ok) job.resolve(result);
      else job.reject(new HashingError(error.code, error.message));
    }
    this.#dispatch();
  }

  #crash(worker, event) {
    // A worker that dies (e.g. out of memory on a huge photo) fails its task,
    // not the batch: it is replaced and the queue goes on.
    event.preventDefault();
    for (const [id, job] of this.pending) {
      if (job.worker === worker) {
        this.pending.delete(id);
        job.reject(new HashingError("hashing_failed", event.message || "the hashing worker stopped"));
      }
    }
    worker.terminate();
    this.all = this.all.filter((w) => w !== worker);
    this.idle = this.idle.filter((w) => w !== worker);
    if (!this.closed && this.respawnsLeft > 0) {
      this.respawnsLeft -= 1;
      this.idle.push(this.#spawn());
      this.#dispatch();
    } else if (this.all.length === 0) {
      for (const job of this.waiting) job.reject(new HashingError("hashing_failed", "no hashing worker could run"));
      this.waiting = [];
    }
  }
}

/** A failure to hash one file: a stable `code` and a message for people. */
export class HashingError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// --- video -------------------------------------------------------------------

function waitFor(target, eventName) {
  return new Promise((resolve, reject) => {
    const done = () => {
      target.removeEventListener(eventName, done);
      target.removeEventListener("error", failed);
      resolve();
    };
    const failed = () => {
      target.removeEventListener(eventName, done);
      target.removeEventListener("error", failed);
      const detail = target.error ? target.error.message || `media error ${target.error.code}` : "media error";
      reject(new HashingError("undecodable_video", `this browser cannot decode the video (${detail})`));
    };
    target.addEventListener(eventName, done);
    target.addEventListener("error", failed);
  });
}

// Chromium may fire "seeked" before the frame at the new time can be drawn; on a
// busy device drawImage then copies the previous frame (seen: a frame 106 bits from
// the right one). requestVideoFrameCallback fires once the new frame is presented.
// The wait is bounded: a seek that lands on the frame already shown presents none.
function framePresented(video, timeoutMs) {
  if (typeof video.requestVideoFrameCallback !== "function") return Promise.resolve(null);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      video.cancelVideoFrameCallback(handle);
      resolve(null);
    }, timeoutMs);
    const handle = video.requestVideoFrameCallback((_now, metadata) => {
      clearTimeout(timer);
      resolve(metadata);
    });
  });
}

async function sampleVideo(file, pool, secondsPerHash) {
  const url = URL.createObjectURL(file);
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.preload = "auto";
  try {
    const loaded = waitFor(video, "loadeddata");
    video.src = url;
    await loaded;
    const { videoWidth: width, videoHeight: height, duration } = video;
    if (!Number.isFinite(duration) || width === 0 || height === 0) {
      throw new HashingError("undecodable_video", "the video has no known duration or picture size");
    }
    const canvas = new OffscreenCanvas(width, height);
    const context = canvas.getContext("2d", { willReadFrequently: true });
    const frames = [];
    const inFlight = [];
    // One frame every secondsPerHash from 0, as vPDQ samples. The browser shows
    // the frame on screen at time t, which may be a neighbour of the frame a
    // server-side decoder picks: hashes are near, not always identical.
    for (let k = 0; k * secondsPerHash < duration; k++) {
      const ts = k * secondsPerHash;
      const seeked = waitFor(video, "seeked");
      const presented = ts === video.currentTime ? null : framePresented(video, 500);
      video.currentTime = ts;
      await seeked;
      await presented;
      context.drawImage(video, 0, 0, width, height);
      const { data } = context.getImageData(0, 0, width, height);
      const hashed = pool
        .run({ type: "frame", width, height, pixels: data.buffer }, [data.buffer])
        .then(({ pdq, quality }) => ({ frame: k, quality, pdq, ts }));
      frames.push(hashed);
      // Keep only a few frames' pixels in memory while the workers catch up.
      inFlight.push(hashed);
      if (inFlight.length >= 2 * pool.all.length) await inFlight.shift();
    }
    return { frames: await Promise.all(frames), width, height, duration };
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}

// --- the public API ----------------------------------------------------------

function lowQualityFlag(quality) {
  return {
    code: "low_quality",
    message:
      `PDQ quality ${quality} is below ${HASH_SET.pdq_min_quality}: the picture is too plain, small or ` +
      "blurred for its fingerprint to be matched reliably. It is kept, and its exact-copy " +
      "fingerprints (MD5, SHA-256) still work.",
  };
}

/** Hashes files on this device with a pool of Web Workers. */
export class PortalHasher {
  /**
   * @param {{workers?: number}} [options] worker count (default: the device's cores, at most 4)
   */
  constructor({ workers } = {}) {
    const cores = globalThis.navigator?.hardwareConcurrency || 2;
    this.size = Math.max(1, workers ?? Math.min(4, cores));
    this.pool = new WorkerPool(this.size);
  }

  /**
   * Hash one image file.
   * @param {File|Blob} file
   * @param {{applyExif?: boolean, maxPixels?: number, readVia?: "auto"|"canvas"}} [options]
   *   applyExif: false hashes a JPEG as stored (as Hasher-Matcher-Actioner does);
   *   maxPixels: larger photos are scaled down first; readVia: "canvas" skips
   *   the faster WebCodecs pixel read (both give the same pixels).
   */
  async hashImage(file, { applyExif = true, maxPixels = DEFAULT_MAX_PIXELS, readVia = "auto" } = {}) {
    const r = await this.pool.run({ type: "image", file, applyExif, maxPixels, readVia });
    // The robust reference set (docs/robustness.md): each hash's kind is sent
    // as its number in hashset.json's list; the server sets the radii.
    const kinds = HASH_SET.image.robust.order;
    const robust = r.robust
      .filter((h) => kinds.includes(h.kind))
      .map((h) => ({ kind: kinds.indexOf(h.kind), pdq: h.pdq, quality: h.quality }));
    const hashes = { md5: r.md5, sha256: r.sha256, pdq: r.pdq, quality: r.quality, dihedral: r.dihedral, robust };
    const flags = r.quality < HASH_SET.pdq_min_quality ? [lowQualityFlag(r.quality)] : [];
    if (r.width !== r.sourceWidth || r.height !== r.sourceHeight) {
      flags.push({
        code: "scaled_down",
        message: `hashed at ${r.width}x${r.height} (from ${r.sourceWidth}x${r.sourceHeight}) to fit this device's memory`,
      });
    }
    return {
      kind: "image",
      hashes,
      flags,
      width: r.width,
      height: r.height,
      sourceWidth: r.sourceWidth,
      sourceHeight: r.sourceHeight,
      orientation: r.orientation,
      exifApplied: applyExif,
      readVia: r.readVia,
    };
  }

  /**
   * Hash one video file: vPDQ (one PDQ per secondsPerHash, from 0) and MD5 of the bytes.
   * @param {File|Blob} file
   * @param {{secondsPerHash?: number}} [options]
   */
  async hashVideo(file, { secondsPerHash = HASH_SET.vpdq_seconds_per_hash } = {}) {
    if (typeof document === "undefined") {
      throw new HashingError("undecodable_video", "videos are hashed on a page, not in a worker");
    }
    const digest = this.pool.run({ type: "md5", file });
    const sampled = await sampleVideo(file, this.pool, secondsPerHash);
    const { md5 } = await digest;
    const reliable = sampled.frames.filter((f) => f.quality >= HASH_SET.pdq_min_quality).length;
    const flags = reliable === 0 ? [lowQualityFlag(Math.max(0, ...sampled.frames.map((f) => f.quality)))] : [];
    return {
      kind: "video",
      hashes: { md5, vpdq: sampled.frames },
      flags,
      width: sampled.width,
      height: sampled.height,
      duration: sampled.duration,
    };
  }

  /**
   * Hash one file of either kind. Never throws for a bad file: failures come
   * back as {error: {code, message}} so a batch carries on.
   * @param {File} file
   * @param {{applyExif?: boolean, maxPixels?: number, secondsPerHash?: number}} [options]
   */
  async hashFile(file, options = {}) {
    const about = { name: file.name ?? "", size: file.size, type: file.type };
    const kind = fileKind(file);
    try {
      if (kind === "image") return { ...about, ...(await this.hashImage(file, options)) };
      if (kind === "video") return { ...about, ...(await this.hashVideo(file, options)) };
      throw new HashingError("unsupported_file", "only photos and videos can be protected");
    } catch (err) {
      const code = err instanceof HashingError ? err.code : "hashing_failed";
      return { ...about, kind, error: { code, message: String(err && err.message ? err.message : err) } };
    }
  }

  /**
   * Hash many files; images run in parallel on the workers, videos one at a
   * time (each needs the page's media decoder). Results keep the input order.
   * @param {Iterable<File>} files
   * @param {{onProgress?: function, applyExif?: boolean, maxPixels?: number, secondsPerHash?: number}} [options]
   */
  async hashFiles(files, { onProgress, ...options } = {}) {
    const list = Array.from(files);
    const results = new Array(list.length);
    let done = 0;
    let videoChain = Promise.resolve();
    const jobs = list.map((file, index) => {
      const start = () => this.hashFile(file, options);
      let job;
      if (fileKind(file) === "video") {
        job = videoChain.then(start);
        videoChain = job;
      } else {
        job = start();
      }
      return job.then((result) => {
        results[index] = result;
        done += 1;
        if (onProgress) onProgress({ done, total: list.length, index, result });
      });
    });
    await Promise.all(jobs);
    return results;
  }

  /** Stop the workers; pending tasks fail with code "hashing_stopped". */
  close() {
    this.pool.close();
  }
}

/**
 * One-shot convenience: hash `files` with a fresh PortalHasher, then stop its workers.
 * @param {Iterable<File>} files
 * @param {{workers?: number, onProgress?: function, applyExif?: boolean, maxPixels?: number, secondsPerHash?: number}} [options]
 */
export async function hashFiles(files, { workers, ...options } = {}) {
  const hasher = new PortalHasher({ workers });
  try {
    return await hasher.hashFiles(files, options);
  } finally {
    hasher.close();
  }
}
