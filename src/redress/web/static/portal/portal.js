// The victim portal page: hash the chosen files here, show local previews,
// send only the hash sets. Messages come translated from the page itself.
import { PortalHasher } from "./hashing.js";

const messages = JSON.parse(document.getElementById("portal-messages").textContent);
const settings = JSON.parse(document.getElementById("portal-settings").textContent);

function say(key, values = {}) {
  return (messages[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

const input = document.getElementById("files");
const progress = document.getElementById("progress");
const previews = document.getElementById("previews");
const form = document.getElementById("case-form");
const submit = document.getElementById("submit");
const problem = document.getElementById("form-problem");
const numberFormat = new Intl.NumberFormat(settings.lang === "zh" ? "zh-Hans-CN" : "en");

let results = [];
let objectUrls = [];
let hashing = false;

function hashCount(items) {
  let total = 0;
  for (const r of items) {
    if (r.kind === "image") total += r.hashes.dihedral.length + 2;
    else total += r.hashes.vpdq.length + 1;
  }
  return total;
}

function preview(file, result, url) {
  const item = document.createElement("li");
  item.className = "preview";
  if (file.type.startsWith("video/")) {
    const video = document.createElement("video");
    video.src = url;
    video.muted = true;
    video.preload = "metadata";
    item.append(video);
  } else {
    const img = document.createElement("img");
    img.src = url;
    img.alt = "";
    item.append(img);
  }
  const caption = document.createElement("p");
  caption.className = "caption";
  if (result.error) {
    caption.textContent = say("failed");
    item.classList.add("failed");
  } else if (result.kind === "video") {
    caption.textContent = say("video", { count: numberFormat.format(result.hashes.vpdq.length) });
  } else {
    caption.textContent = say("image");
  }
  item.append(caption);
  for (const flag of result.flags ?? []) {
    const note = document.createElement("p");
    note.className = `flag ${flag.code}`;
    note.textContent = flag.code === "low_quality" ? say("lowQuality") : say("scaledDown");
    item.append(note);
  }
  return item;
}

input.addEventListener("change", async () => {
  const files = Array.from(input.files);
  for (const url of objectUrls) URL.revokeObjectURL(url);
  objectUrls = files.map((file) => URL.createObjectURL(file));
  previews.replaceChildren();
  results = [];
  problem.textContent = "";
  submit.disabled = true;
  if (files.length === 0) return;
  hashing = true;
  progress.textContent = say("hashing", { done: numberFormat.format(0), total: numberFormat.format(files.length) });
  const hasher = new PortalHasher();
  try {
    results = await hasher.hashFiles(files, {
      onProgress: ({ done, total }) => {
        progress.textContent = say("hashing", { done: numberFormat.format(done), total: numberFormat.format(total) });
      },
    });
  } finally {
    hasher.close();
    hashing = false;
  }
  results.forEach((result, i) => previews.append(preview(files[i], result, objectUrls[i])));
  const usable = results.filter((r) => !r.error);
  progress.textContent = say("ready", { count: numberFormat.format(usable.length) });
  progress.dataset.state = "ready";
  submit.disabled = usable.length === 0;
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  problem.textContent = "";
  const usable = results.filter((r) => !r.error);
  if (hashing || usable.length === 0) {
    problem.textContent = say("noFiles");
    return;
  }
  const depicted = document.getElementById("depicted").checked;
  const adult = document.getElementById("adult").checked;
  if (!depicted || !adult) {
    problem.textContent = say("declarations");
    return;
  }
  if (hashCount(usable) > settings.maxHashes) {
    problem.textContent = say("tooMany", { max: numberFormat.format(settings.maxHashes) });
    return;
  }
  // Only each result's hashes leave the device: no names, sizes, previews or pixels.
  const body = {
    files: usable.map((r) => ({ kind: r.kind, hashes: r.hashes })),
    declarations: { depicted, adult },
    contact: document.getElementById("contact").value.trim() || null,
    lang: settings.lang,
  };
  submit.disabled = true;
  progress.textContent = say("sending");
  let response;
  try {
    response = await fetch("/protect/api/cases", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    problem.textContent = say("serverError");
    submit.disabled = false;
    return;
  }
  if (!response.ok) {
    const failure = await response.json().catch(() => ({}));
    if (response.status === 429) problem.textContent = say("rateLimited");
    else if (failure.error === "too_many_hashes") problem.textContent = say("tooMany", { max: numberFormat.format(settings.maxHashes) });
    else if (failure.error === "declaration_required") problem.textContent = say("declarations");
    else problem.textContent = say("serverError");
    submit.disabled = false;
    return;
  }
  const created = await response.json();
  document.getElementById("case-number").textContent = created.case_number;
  document.getElementById("case-pin").textContent = created.pin;
  document.getElementById("create").hidden = true;
  const done = document.getElementById("created");
  done.hidden = false;
  done.scrollIntoView();
  progress.textContent = "";
});
