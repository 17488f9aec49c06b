// Videos in the local page: a job on this server (docs/API.md, "Video jobs"), uploaded in parts under the
// request limit, polled for progress, fetched once. Cancelling deletes the job; nothing else keeps the clip.

const PART_BYTES = 32 * 1024 * 1024;  // each request stays under the server's 40 MB limit
const POLL_MS = 500;
const VIDEO_NAME = /\.(mp4|mov|m4v|3gp|webm|mkv)$/i;

export const isVideo = (file) => file.type.startsWith("video/") || VIDEO_NAME.test(file.name);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function call(pageKey, method, path, body) {
  const response = await fetch(path, { method, body, headers: { "X-Shield-Page-Key": pageKey }, cache: "no-store" });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ message: response.statusText }));
    const error = new Error(problem.message || `Error ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response;
}

/** Resolves {blob, report} with the protected clip; onProgress(0..1) while the server works. Stops (and
 *  deletes the job) when `signal` aborts. */
export async function protectVideo(file, { pageKey, query, onProgress, signal }) {
  const parts = Math.max(1, Math.ceil(file.size / PART_BYTES));
  const more = (index) => (index < parts - 1 ? "&more=1" : "");
  let status = await (await call(pageKey, "POST", `/v1/video?${query}${more(0)}`, file.slice(0, PART_BYTES))).json();
  const job = `/v1/video/${status.id}`;
  try {
    for (let index = 1; index < parts; index++) {
      if (signal.aborted) throw new DOMException("cancelled", "AbortError");
      const offset = index * PART_BYTES;
      status = await (await call(pageKey, "POST", `${job}/part?offset=${offset}${more(index)}`,
        file.slice(offset, offset + PART_BYTES))).json();
    }
    while (!["done", "failed", "cancelled"].includes(status.state)) {
      if (signal.aborted) throw new DOMException("cancelled", "AbortError");
      onProgress(status.progress || 0);
      await sleep(POLL_MS);
      status = await (await call(pageKey, "GET", job)).json();
    }
    if (status.state !== "done") throw new Error(status.message || status.error || status.state);
    const result = await call(pageKey, "GET", `${job}/result`);
    return { report: JSON.parse(result.headers.get("X-Shield-Report")), blob: await result.blob() };
  } catch (error) {
    fetch(job, { method: "DELETE", headers: { "X-Shield-Page-Key": pageKey } }).catch(() => {});
    throw error;
  }
}
