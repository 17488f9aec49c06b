// The local page: photos go to this server's /v1/protect one at a time; results stay in the page.
// Its calls carry the page key from the page's own HTML (see docs/SECURITY.md), never the pairing token.
// Every preview and download is a file the server made from the original; the editor only sends choices.
// Each item carries its own state (waiting, protecting, done, failed, cancelled); render() shows it and the
// status line is always recomputed from all items, so the two cannot disagree.

import { createEditor } from "./editor.js";
import { text, translatePage } from "./i18n.js";
import { protectedName, protectedNames } from "./names.js";
import { isVideo, protectVideo } from "./video.js";
import { storeZip } from "./zip.js";

const pageKey = document.querySelector('meta[name="shield-page-key"]').content;
const form = document.getElementById("options");
const drop = document.getElementById("drop");
const picker = document.getElementById("picker");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const clearButton = document.getElementById("clear");
const downloadAllButton = document.getElementById("download-all");
const template = document.getElementById("result-template");
const items = [];
const queue = [];
const ACTIVE = ["waiting", "protecting"];
const LOOK = { waiting: "working", protecting: "working", done: "done", failed: "failed", cancelled: "failed" };
let working = false;
let zipProblem = "";

translatePage();
translatePage(template.content);

function queryString(choices) {
  const data = new FormData(form);
  const params = new URLSearchParams();
  params.set("fill", data.get("fill"));
  params.set("color", String(data.get("color")).replace("#", ""));
  params.set("sticker", data.get("sticker"));
  params.set("margin", data.get("margin"));
  params.set("format", data.get("format"));
  params.set("mode", data.get("mode"));
  if (choices.regions.length) params.set("regions", JSON.stringify(choices.regions));
  if (choices.keep.length) params.set("keep", JSON.stringify(choices.keep));
  return params.toString();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The reason a person can act on: the browser's own words for a lost connection ("Failed to fetch",
 *  "NetworkError when attempting to fetch resource.") become ours. */
function reasonOf(error) {
  if (error instanceof TypeError) return text.unreachable;
  if (error.status === 401) return text.restarted;
  return text.serverErrors?.[error.code] || error.message || text.unknownError;
}

async function protect(file, choices) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const response = await fetch(`/v1/protect?${queryString(choices)}`, {
      method: "POST", body: file, headers: { "X-Shield-Page-Key": pageKey }, cache: "no-store",
    });
    if (response.status === 429 || response.status === 503) {  // busy: the server asks us to come back
      await sleep(300 + attempt * 200);
      continue;
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({ message: response.statusText }));
      throw Object.assign(new Error(problem.message || `Error ${response.status}`),
        { status: response.status, code: problem.error });
    }
    return { report: JSON.parse(response.headers.get("X-Shield-Report")), blob: await response.blob() };
  }
  throw new Error(text.busy);
}

function markFaces(frame, report) {
  frame.querySelectorAll(".face").forEach((node) => node.remove());
  for (const { box: [x0, y0, x1, y1] } of report.detections) {
    const box = document.createElement("div");
    box.className = "face";
    box.style.left = `${(100 * x0) / report.width}%`;
    box.style.top = `${(100 * y0) / report.height}%`;
    box.style.width = `${(100 * (x1 - x0)) / report.width}%`;
    box.style.height = `${(100 * (y1 - y0)) / report.height}%`;
    frame.appendChild(box);
  }
}

const fallbackName = (item) => (item.video ? "video" : "photo");

function workingSummary(item) {
  if (item.video) return text.videoPhase[item.phase](item.share == null ? null : Math.round(100 * item.share));
  return item.state === "waiting" ? text.waiting : text.protecting;
}

/** Puts the item's state on its node: one place decides what each state shows. */
function render(item) {
  const { node, state } = item;
  node.dataset.state = state;
  for (const look of ["working", "done", "failed"]) node.classList.toggle(look, look === LOOK[state]);
  node.querySelector(".badge").textContent = text.badge[state];
  const summary = node.querySelector(".summary");
  if (ACTIVE.includes(state)) summary.textContent = workingSummary(item);
  else if (state === "done") summary.textContent = item.doneSummary;
  else if (state === "failed") summary.textContent = text.failed(item.reason);
  else summary.textContent = text.cancelled;
  const progress = node.querySelector("progress");
  progress.hidden = !(item.video && ACTIVE.includes(state));  // a photo has its spinner: no jump on each edit
  progress.setAttribute("aria-label", summary.textContent);
  if (item.video && item.share != null && item.phase !== "waiting") progress.value = item.share;
  else progress.removeAttribute("value");  // indeterminate: it moves while the server opens the clip
  const cancel = node.querySelector(".cancel");
  cancel.hidden = !(item.video && ACTIVE.includes(state));
  node.querySelector(".progress-row").hidden = progress.hidden && cancel.hidden;
  const download = node.querySelector(".download");
  download.hidden = !item.current;
  // Nothing to show (a file that is not a photo, a server that cannot be reached): no figures, no captions.
  node.querySelector(".pair").hidden = !item.output && (state === "failed" || state === "cancelled");
  refreshPage();
}

function nouns(list) {
  const photos = list.filter((item) => !item.video).length;
  return text.nouns(photos, list.length - photos);
}

/** The status line sums up the items' own states; it never says more than they do. */
function refreshStatus() {
  const by = (states) => items.filter((item) => states.includes(item.state));
  const active = by(ACTIVE);
  const parts = [];
  if (active.length) parts.push(text.statusWorking(nouns(active)));
  const done = by(["done"]);
  if (done.length) parts.push(text.statusDone(nouns(done), done.length));
  const failed = by(["failed"]);
  if (failed.length) parts.push(text.statusFailed(nouns(failed), failed.length));
  const cancelled = by(["cancelled"]);
  if (cancelled.length) parts.push(text.statusCancelled(nouns(cancelled), cancelled.length));
  if (zipProblem) parts.push(zipProblem);
  statusLine.textContent = parts.join(" ");
}

function refreshPage() {
  const ready = items.filter((item) => item.current);
  downloadAllButton.hidden = ready.length === 0;
  downloadAllButton.disabled = items.some((item) => ACTIVE.includes(item.state));
  clearButton.hidden = items.length === 0;
  refreshStatus();
}

function schedule(item) {
  item.version += 1;
  item.current = false;  // never download a file older than the choices
  item.state = "waiting";
  item.editor?.setBusy(true);
  if (!queue.includes(item)) queue.push(item);
  render(item);
  work();
}

function show(item, { report, blob }) {
  if (item.output) URL.revokeObjectURL(item.output.url);
  item.output = { report, blob, url: URL.createObjectURL(blob) };
  item.current = true;
  if (item.editor) {
    item.editor.update(item.output.url, report);
  } else {
    item.editor = createEditor(item.node.querySelector(".after .editor-slot"), {
      imageUrl: item.output.url, report, text: text.editor,
      onChange: (choices) => { item.choices = choices; schedule(item); },
    });
  }
  item.editor.setBusy(false);
  markFaces(item.node.querySelector(".before .frame"), report);
  const download = item.node.querySelector(".download");
  download.href = item.output.url;
  download.download = protectedName(item.file.name, report.format);
  item.doneSummary = text.summary(report.faces, report.added.length, report.kept.length, report.width,
    report.height, Math.round(report.timings_ms.total));
  item.state = "done";
  render(item);
}

function fail(item, error) {
  item.state = error.name === "AbortError" ? "cancelled" : "failed";
  item.reason = reasonOf(error);
  item.current = false;
  // The editor (when there is one) keeps its last server output so an undo can bring back a good result.
  item.editor?.setBusy(false);
  render(item);
}

async function work() {
  if (working) return;
  working = true;
  while (queue.length) {
    const item = queue.shift();
    const version = item.version;
    item.state = "protecting";
    render(item);
    try {
      const result = await protect(item.file, item.choices);
      if (item.version === version && !item.removed) {
        show(item, result);
        item.node.dataset.shown = String(version);  // which choices the shown output answers (tests wait on it)
      }
    } catch (error) {
      if (item.version === version && !item.removed) fail(item, error);
    }
  }
  working = false;
  refreshPage();
}

function videoQuery() {
  return new URLSearchParams({ fill: form.fill.value, color: form.color.value.replace("#", ""),
    sticker: form.sticker.value, margin: form.margin.value }).toString();
}

// A clip is its own job on the server: no editor, a progress bar, its own Cancel, a player, a download.
function addVideo(file, node) {
  const item = { file, node, video: true, version: 0, current: false, output: null, state: "protecting",
    phase: "uploading", share: 0, cancel: new AbortController() };
  node.querySelector(".before").hidden = true;
  node.querySelector(".after figcaption").textContent = text.videoAfter;
  node.querySelector(".download").textContent = text.videoDownload;
  node.querySelector(".cancel").addEventListener("click", () => {  // shown at once; the job is deleted behind it
    item.cancel.abort();
    fail(item, new DOMException("cancelled", "AbortError"));
  });
  items.push(item);
  results.prepend(node);
  render(item);
  const onProgress = ({ phase, share }) => {
    if (item.removed || !ACTIVE.includes(item.state)) return;
    Object.assign(item, { phase, share, state: phase === "waiting" ? "waiting" : "protecting" });
    render(item);
  };
  protectVideo(file, { pageKey, query: videoQuery(), signal: item.cancel.signal, onProgress })
    .then(({ report, blob }) => {
      if (item.removed || item.cancel.signal.aborted) return;
      item.output = { report, blob, url: URL.createObjectURL(blob) };
      item.current = true;
      const player = document.createElement("video");
      player.controls = true;
      player.playsInline = true;
      player.preload = "auto";
      player.src = item.output.url;  // a blob: URL: the page's CSP allows media from blob: and nothing else
      node.querySelector(".after .editor-slot").replaceChildren(player);
      const download = node.querySelector(".download");
      download.href = item.output.url;
      download.download = protectedName(file.name, report.format, "video");
      item.doneSummary = text.videoSummary(report.width, report.height, report.frames);
      item.state = "done";
      render(item);
    })
    .catch((error) => { if (!item.removed && !item.cancel.signal.aborted) fail(item, error); });
}

function add(files) {
  for (const file of Array.from(files)) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.querySelector(".name").textContent = file.name;
    if (isVideo(file)) {
      addVideo(file, node);
      continue;
    }
    const item = { file, node, version: 0, current: false, output: null, editor: null, state: "waiting",
      choices: { regions: [], keep: [] } };
    const before = node.querySelector(".before img");
    item.originalUrl = URL.createObjectURL(file);
    before.addEventListener("error", () => {  // e.g. HEIC: no broken-image icon and no outline caption, a sentence
      node.querySelector(".before .frame").hidden = true;
      node.querySelector(".before figcaption").hidden = true;
      node.querySelector(".no-preview").hidden = false;
    });
    before.src = item.originalUrl;
    items.push(item);
    results.prepend(node);
    schedule(item);
  }
}

async function downloadAll() {
  downloadAllButton.disabled = true;
  zipProblem = "";
  const ready = items.filter((item) => item.current);
  const names = protectedNames(ready.map((item) => ({
    name: item.file.name, extension: item.output.report.format, fallback: fallbackName(item) })));
  try {
    const archive = await storeZip(ready.map((item, i) => ({ name: names[i], blob: item.output.blob })));
    const url = URL.createObjectURL(archive);
    const link = document.createElement("a");
    link.href = url;
    link.download = "photos.protected.zip";
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    zipProblem = text.zipFailed(error.message);
  }
  refreshPage();
}

function showFillOptions() {
  document.getElementById("color-option").hidden = form.fill.value !== "solid";
  document.getElementById("sticker-option").hidden = form.fill.value !== "sticker";
}

picker.addEventListener("change", () => { add(picker.files); picker.value = ""; });
// Photos dropped anywhere on the page are taken (the browser would otherwise open the original in the tab).
window.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
window.addEventListener("dragleave", (event) => { if (!event.relatedTarget) drop.classList.remove("over"); });
window.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  add(event.dataTransfer.files);
});
form.margin.addEventListener("input", () => { document.getElementById("margin-value").value = form.margin.value; });
form.addEventListener("change", () => {  // new options apply to the photos already shown too (videos keep theirs)
  showFillOptions();
  items.filter((item) => !item.video).forEach(schedule);
});
downloadAllButton.addEventListener("click", downloadAll);
clearButton.addEventListener("click", () => {
  for (const item of items.splice(0)) {
    item.removed = true;
    item.cancel?.abort();
    URL.revokeObjectURL(item.originalUrl);
    if (item.output) URL.revokeObjectURL(item.output.url);
  }
  queue.length = 0;
  zipProblem = "";
  results.replaceChildren();
  refreshPage();
});
showFillOptions();
refreshPage();
