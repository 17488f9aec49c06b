// The local page: photos go to this server's /v1/protect one at a time; results stay in the page.
// Its calls carry the page key from the page's own HTML (see docs/SECURITY.md), never the pairing token.
// Every preview and download is a file the server made from the original; the editor only sends choices.

import { createEditor } from "./editor.js";
import { text, translatePage } from "./i18n.js";
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
let working = false;

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
      if (response.status === 401) problem.message = text.restarted;
      throw new Error(problem.message || `Error ${response.status}`);
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

function protectedName(name, extension) {
  const stem = name.replace(/\.[^.]*$/, "") || "photo";
  return `${stem}-protected.${extension}`;
}

function setState(item, state) {
  for (const name of ["working", "done", "failed"]) item.node.classList.toggle(name, name === state);
}

function schedule(item) {
  item.version += 1;
  item.current = false;
  item.node.querySelector(".download").hidden = true;  // never download a file older than the choices
  setState(item, "working");
  item.editor?.setBusy(true);
  if (!item.output) item.node.querySelector(".summary").textContent = text.protecting;
  if (!queue.includes(item)) queue.push(item);
  refreshActions();
  work();
}

function show(item, { report, blob }) {
  if (item.output) URL.revokeObjectURL(item.output.url);
  item.output = { report, blob, url: URL.createObjectURL(blob) };
  item.current = true;
  const after = item.node.querySelector(".after");
  after.hidden = false;
  if (item.editor) {
    item.editor.update(item.output.url, report);
  } else {
    item.editor = createEditor(after.querySelector(".editor-slot"), {
      imageUrl: item.output.url, report, text: text.editor,
      onChange: (choices) => { item.choices = choices; schedule(item); },
    });
  }
  item.editor.setBusy(false);
  markFaces(item.node.querySelector(".before .frame"), report);
  const download = item.node.querySelector(".download");
  download.href = item.output.url;
  download.download = protectedName(item.file.name, report.format);
  download.hidden = false;
  item.node.querySelector(".summary").textContent = text.summary(report.faces, report.added.length,
    report.kept.length, report.width, report.height, Math.round(report.timings_ms.total));
  setState(item, "done");
}

function showError(item, error) {
  setState(item, "failed");
  item.node.querySelector(".summary").textContent = text.failed(error.message);
  item.node.querySelector(".download").hidden = true;
  // The editor (when there is one) keeps its last server output so an undo can bring back a good result.
  if (item.editor) item.editor.setBusy(false); else item.node.querySelector(".after").hidden = true;
}

async function work() {
  if (working) return;
  working = true;
  while (queue.length) {
    statusLine.textContent = text.working(queue.length);
    const item = queue.shift();
    const version = item.version;
    try {
      const result = await protect(item.file, item.choices);
      if (item.version === version && !item.removed) {
        show(item, result);
        item.node.dataset.shown = String(version);  // which choices the shown output answers (tests wait on it)
      }
    } catch (error) {
      if (item.version === version && !item.removed) showError(item, error);
    }
    refreshActions();
  }
  statusLine.textContent = items.length ? text.done : "";
  working = false;
  refreshActions();
}

// A clip is its own job on the server: no editor, a progress line, a player, a download; Clear cancels it.
function addVideo(file, node) {
  const item = { file, node, video: true, version: 0, current: false, output: null, cancel: new AbortController() };
  node.querySelector(".before").hidden = true;
  items.push(item);
  results.prepend(node);
  setState(item, "working");
  const summary = node.querySelector(".summary");
  summary.textContent = text.protecting;
  const query = new URLSearchParams({ fill: form.fill.value, color: form.color.value.replace("#", ""),
    sticker: form.sticker.value, margin: form.margin.value }).toString();
  protectVideo(file, { pageKey, query, signal: item.cancel.signal,
                       onProgress: (share) => { summary.textContent = text.videoProgress(Math.round(share * 100)); } })
    .then(({ report, blob }) => {
      if (item.removed) return;
      item.output = { report, blob, url: URL.createObjectURL(blob) };
      item.current = true;
      const player = document.createElement("video");
      player.controls = true;
      player.src = item.output.url;
      const after = node.querySelector(".after");
      after.querySelector(".editor-slot").replaceChildren(player);
      after.querySelector("figcaption").textContent = text.videoAfter;
      const download = node.querySelector(".download");
      download.href = item.output.url;
      download.download = protectedName(file.name, report.format);
      download.textContent = text.videoDownload;
      download.hidden = false;
      summary.textContent = text.videoSummary(report.width, report.height, report.frames);
      setState(item, "done");
      refreshActions();
    })
    .catch((error) => { if (!item.removed) showError(item, error); });
}

function add(files) {
  for (const file of Array.from(files)) {
    const node = template.content.firstElementChild.cloneNode(true);
    node.querySelector(".name").textContent = file.name;
    if (isVideo(file)) {
      addVideo(file, node);
      continue;
    }
    const item = { file, node, version: 0, current: false, output: null, editor: null,
      choices: { regions: [], keep: [] } };
    const before = node.querySelector(".before img");
    item.originalUrl = URL.createObjectURL(file);
    before.addEventListener("error", () => {  // e.g. HEIC: no broken-image icon, a sentence instead
      node.querySelector(".before .frame").hidden = true;
      node.querySelector(".no-preview").hidden = false;
    });
    before.src = item.originalUrl;
    items.push(item);
    results.prepend(node);
    schedule(item);
  }
  clearButton.hidden = false;
}

function refreshActions() {
  const ready = items.filter((item) => item.current);
  downloadAllButton.hidden = ready.length === 0;
  downloadAllButton.disabled = working || queue.length > 0;
}

async function downloadAll() {
  downloadAllButton.disabled = true;
  const used = new Set();
  const files = items.filter((item) => item.current).map((item) => {
    let name = protectedName(item.file.name, item.output.report.format);
    for (let n = 2; used.has(name); n++) name = protectedName(`${item.file.name.replace(/\.[^.]*$/, "")} (${n})`, item.output.report.format);
    used.add(name);
    return { name, blob: item.output.blob };
  });
  try {
    const url = URL.createObjectURL(await storeZip(files));
    const link = document.createElement("a");
    link.href = url;
    link.download = "photos-protected.zip";
    link.click();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (error) {
    statusLine.textContent = text.zipFailed(error.message);
  }
  refreshActions();
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
form.addEventListener("change", () => {  // new options apply to the photos already shown too
  showFillOptions();
  items.forEach(schedule);
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
  results.replaceChildren();
  clearButton.hidden = true;
  statusLine.textContent = "";
  refreshActions();
});
showFillOptions();
