// Videos in the local page: a job on this server (docs/API.md, "Video jobs"), uploaded in parts under the
// request limit, polled for progress, fetched once. Cancelling deletes the job; nothing else keeps the clip.

const PART_BYTES = 8 * 1024 * 1024;  // each request stays under the server's 40 MB limit; parts show upload progress
const POLL_MS = 400;
const VIDEO_NAME = /\.(mp4|mov|m4v|3gp|webm|mkv)$/i;

export const isVideo = (file) => file.type.startsWith("video/") || VIDEO_NAME.test(file.name);

function cancelled() {
  return new DOMException("The video was cancelled.", "AbortError");
}

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); reject(cancelled()); }, { once: true });
  });
}

async function call(pageKey, method, path, body, signal) {
  const response = await fetch(path, { method, body, signal, headers: { "X-Shield-Page-Key": pageKey }, cache: "no-store" });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ message: response.statusText }));
    throw Object.assign(new Error(problem.message || `Error ${response.status}`),
      { status: response.status, code: problem.error });
  }
  return response;
}

/** Where a job stands, for the page: { phase, share }. phase: "uploading" (share: of the bytes sent),
 *  "waiting" (another video goes first), "opening" (the server reads and checks the clip; no frame searched
 *  yet), "protecting" (share: of the frames decoded and searched). */
function progressOf(status, file) {
  if (status.state === "uploading") return { phase: "uploading", share: status.received / Math.max(file.size, 1) };
  if (status.state === "queued") return { phase: "waiting", share: null };
  if (!status.frames_done) return { phase: "opening", share: null };
  return { phase: "protecting", share: status.progress || 0 };
}

/** Resolves {blob, report} with the protected clip; onProgress({phase, share}) from the first byte sent.
 *  Stops (and deletes the job) when `signal` aborts; then rejects with an AbortError. */
export async function protectVideo(file, { pageKey, query, onProgress, signal }) {
  const parts = Math.max(1, Math.ceil(file.size / PART_BYTES));
  const more = (index) => (index < parts - 1 ? "&more=1" : "");
  onProgress({ phase: "uploading", share: 0 });
  // The first part is never aborted half-way: the job it creates is known, so a Cancel can delete it.
  let status = await (await call(pageKey, "POST", `/v1/video?${query}${more(0)}`, file.slice(0, PART_BYTES))).json();
  const job = `/v1/video/${status.id}`;
  try {
    if (signal.aborted) throw cancelled();
    for (let index = 1; index < parts; index++) {
      onProgress(progressOf(status, file));
      const offset = index * PART_BYTES;
      status = await (await call(pageKey, "POST", `${job}/part?offset=${offset}${more(index)}`,
        file.slice(offset, offset + PART_BYTES), signal)).json();
    }
    while (!["done", "failed", "cancelled"].includes(status.state)) {
      onProgress(progressOf(status, file));
      await sleep(POLL_MS, signal);
      status = await (await call(pageKey, "GET", job, undefined, signal)).json();
    }
    if (status.state !== "done") throw Object.assign(new Error(status.message || status.state), { code: status.error });
    const result = await call(pageKey, "GET", `${job}/result`, undefined, signal);
    return { report: JSON.parse(result.headers.get("X-Shield-Report")), blob: await result.blob() };
  } catch (error) {
    fetch(job, { method: "DELETE", headers: { "X-Shield-Page-Key": pageKey } }).catch(() => {});
    throw signal.aborted ? cancelled() : error;
  }
}
