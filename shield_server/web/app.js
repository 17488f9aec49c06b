"use strict";
// The local page: photos go to this server's /v1/protect one at a time; results stay in the page.
// Its calls carry the page key from the page's own HTML (see docs/SECURITY.md), never the pairing token.

const pageKey = document.querySelector('meta[name="shield-page-key"]').content;
const form = document.getElementById("options");
const drop = document.getElementById("drop");
const picker = document.getElementById("picker");
const statusLine = document.getElementById("status");
const results = document.getElementById("results");
const clearButton = document.getElementById("clear");
const template = document.getElementById("result-template");
const pending = [];
const objectUrls = [];
let working = false;

function queryString() {
  const data = new FormData(form);
  const params = new URLSearchParams();
  params.set("fill", data.get("fill"));
  params.set("color", String(data.get("color")).replace("#", ""));
  params.set("margin", data.get("margin"));
  params.set("format", data.get("format"));
  params.set("mode", data.get("mode"));
  return params.toString();
}

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  objectUrls.push(url);
  return url;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function protect(file) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const response = await fetch(`/v1/protect?${queryString()}`, {
      method: "POST", body: file, headers: { "X-Shield-Page-Key": pageKey }, cache: "no-store",
    });
    if (response.status === 429 || response.status === 503) {  // busy: the server asks us to come back
      await sleep(300 + attempt * 200);
      continue;
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({ message: response.statusText }));
      if (response.status === 401) problem.message = "The server was restarted: reload this page.";
      throw new Error(problem.message || `Error ${response.status}`);
    }
    return { report: JSON.parse(response.headers.get("X-Shield-Report")), blob: await response.blob() };
  }
  throw new Error("The server stayed busy; try again in a moment.");
}

function markFaces(frame, report) {
  for (const [x0, y0, x1, y1] of report.boxes) {
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

async function handle(file) {
  const item = template.content.firstElementChild.cloneNode(true);
  item.querySelector(".name").textContent = file.name;
  item.querySelector(".summary").textContent = "Protecting…";
  const before = item.querySelector(".before img");
  before.addEventListener("error", () => { before.alt = "(this browser cannot show the original)"; });
  before.src = objectUrl(file);
  results.prepend(item);
  clearButton.hidden = false;
  try {
    const { report, blob } = await protect(file);
    markFaces(item.querySelector(".before .frame"), report);
    item.querySelector(".after img").src = objectUrl(blob);
    const download = item.querySelector(".download");
    download.href = objectUrl(blob);
    download.download = protectedName(file.name, report.format);
    download.hidden = false;
    const faces = report.faces === 1 ? "1 face" : `${report.faces} faces`;
    item.querySelector(".summary").textContent =
      `${faces} replaced, metadata removed (${report.width}×${report.height}, ${Math.round(report.timings_ms.total)} ms).`;
    item.classList.add("done");
  } catch (error) {
    item.classList.add("failed");
    item.querySelector(".summary").textContent = `Not protected: ${error.message}`;
  }
}

async function work() {
  if (working) return;
  working = true;
  while (pending.length) {
    statusLine.textContent = `Protecting ${pending.length} photo${pending.length > 1 ? "s" : ""}…`;
    await handle(pending.shift());
  }
  statusLine.textContent = "Done.";
  working = false;
}

function add(files) {
  pending.push(...Array.from(files));
  work();
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
clearButton.addEventListener("click", () => {
  objectUrls.splice(0).forEach((url) => URL.revokeObjectURL(url));
  results.replaceChildren();
  clearButton.hidden = true;
  statusLine.textContent = "";
});
