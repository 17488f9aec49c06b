"""Video jobs of the server: a clip uploaded in parts, protected in the background, polled, fetched once.

    POST   /v1/video?fill=&color=&margin=&audio=keep|drop[&more=1]   body: the clip, or its first part
    POST   /v1/video/<id>/part?offset=N[&more=1]                      body: the next part
    GET    /v1/video/<id>            state, progress (0-1), frames, error, report
    GET    /v1/video/<id>/result     the protected MP4, once; the job is then removed
    DELETE /v1/video/<id>            cancels the job and removes its files

Parts keep every request under the photo body limit (a browser extension's message tops out at 64 MiB,
and waitress buffers a whole request before the app sees it). Uploads and results live in a private
folder (video.make_workdir) until fetched, cancelled or RESULT_TTL_S after their last use (a timer removes
them then, requests or not; SHIELD_VIDEO_JOB_TTL_S shortens it for tests). One clip is
processed at a time; MAX_JOBS jobs may exist at once, further uploads are refused with 429.
"""

import atexit
import json
import logging
import os
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Response, request

from shield_server import security, video
from shield_server.errors import BadOptions, Cancelled, NotFound, NotReady, ShieldError, TooLarge

log = logging.getLogger("shield.server")

MAX_JOBS = 4
RESULT_TTL_S = 600.0
TTL_VARIABLE = "SHIELD_VIDEO_JOB_TTL_S"
CHUNK = 1 << 20


@dataclass
class Job:
    id: str
    workdir: Path
    options: video.VideoOptions
    state: str = "uploading"  # uploading, queued, running, done, failed, cancelled
    received: int = 0
    frames_done: int = 0
    frames_total: int = 0
    error: ShieldError | None = None
    report: dict = field(default_factory=dict)
    touched: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)

    @property
    def input(self) -> Path:
        return self.workdir / "input"

    @property
    def output(self) -> Path:
        return self.workdir / "protected.mp4"

    def status(self) -> dict:
        progress = self.frames_done / self.frames_total if self.frames_total else (1.0 if self.state == "done" else 0.0)
        answer = {"id": self.id, "state": self.state, "progress": round(progress, 4),
                  "frames_done": self.frames_done, "frames_total": self.frames_total, "received": self.received}
        if self.error is not None:
            answer.update(error=self.error.code, message=self.error.message)
        if self.report:
            answer["report"] = self.report
        return answer


class VideoJobs:
    def __init__(self, max_jobs: int = MAX_JOBS, ttl_s: float = RESULT_TTL_S):
        self.max_jobs, self.ttl_s = max_jobs, ttl_s
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pending: queue.Queue[Job] = queue.Queue()
        self.closed = threading.Event()
        video.sweep_stale_workdirs()
        threading.Thread(target=self._work, name="video-jobs", daemon=True).start()
        threading.Thread(target=self._expire_on_time, name="video-job-expiry", daemon=True).start()
        atexit.register(self.close)

    def create(self, options: video.VideoOptions) -> Job:
        with self.lock:
            self._expire()
            if len(self.jobs) >= self.max_jobs:
                raise security.Busy(f"{self.max_jobs} videos are already waiting or being protected; "
                                    "fetch or cancel one, or try again later.")
            job = Job(secrets.token_urlsafe(16), video.make_workdir(), options)
            self.jobs[job.id] = job
        return job

    def get(self, job_id: str) -> Job:
        with self.lock:
            self._expire()
            job = self.jobs.get(job_id)
        if job is None:
            raise NotFound("No such video job (finished jobs are removed once fetched, or after 10 minutes).")
        job.touched = time.monotonic()
        return job

    def append(self, job: Job, data: bytes, offset: int, more: bool) -> None:
        if job.cancel.is_set():
            raise NotFound("This video job was cancelled or has expired.")
        if job.state != "uploading":
            raise BadOptions("This video's upload is already complete.")
        if offset != job.received:
            raise BadOptions(f"Parts must arrive in order: expected offset {job.received}, got {offset}.")
        if job.received + len(data) > job.options.max_bytes:
            self.remove(job)
            raise TooLarge(f"The video is over the limit of {job.options.max_bytes / 1e6:.0f} MB.")
        with open(job.input, "ab") as handle:
            handle.write(data)
        job.received += len(data)
        if not more:
            job.state = "queued"
            self.pending.put(job)

    def remove(self, job: Job) -> None:
        job.cancel.set()
        with self.lock:
            self.jobs.pop(job.id, None)
        if job.state != "running":  # a running job's worker removes its folder when it stops
            video.remove_workdir(job.workdir)
        if job.state in ("uploading", "queued", "running"):
            job.state = "cancelled"

    def close(self) -> None:
        self.closed.set()
        with self.lock:
            jobs = list(self.jobs.values())
            self.jobs.clear()
        for job in jobs:
            job.cancel.set()
            video.remove_workdir(job.workdir)

    def _expire(self) -> float:
        """Under the lock: drop jobs idle for ttl_s (results never fetched, uploads never finished); returns
        when the next one is due."""
        now = time.monotonic()
        due = now + self.ttl_s
        for job in [j for j in self.jobs.values() if j.state not in ("queued", "running")]:
            if now - job.touched >= self.ttl_s:
                del self.jobs[job.id]
                job.cancel.set()
                video.remove_workdir(job.workdir)
            else:
                due = min(due, job.touched + self.ttl_s)
        return due

    def _expire_on_time(self) -> None:
        """Abandoned jobs go when their time is up, not at the next request (there may be none)."""
        while not self.closed.is_set():
            with self.lock:
                due = self._expire()
            self.closed.wait(max(due - time.monotonic(), 0.05))

    def _work(self) -> None:
        while True:
            job = self.pending.get()
            if job.cancel.is_set():
                continue
            job.state = "running"
            self._run(job)
            job.touched = time.monotonic()
            if job.cancel.is_set():
                video.remove_workdir(job.workdir)

    def _run(self, job: Job) -> None:
        def progress(done: int, total: int) -> None:
            job.frames_done, job.frames_total = done, total

        try:
            result = video.protect_video(job.input, job.output, job.options, progress, job.cancel.is_set)
            job.report = result.report()
            job.state = "done"
        except Cancelled as exc:
            job.error, job.state = exc, "cancelled"
        except ShieldError as exc:
            job.error, job.state = exc, "failed"
        except Exception as exc:  # an engine bug: the job fails, nothing is released
            log.error("Video job failed: %s", type(exc).__name__)
            job.error, job.state = ShieldError("Internal error; the video was not released."), "failed"
        finally:
            job.input.unlink(missing_ok=True)


def register(app: Flask, max_body_bytes: int) -> VideoJobs:
    jobs = VideoJobs(ttl_s=float(os.environ.get(TTL_VARIABLE, RESULT_TTL_S)))

    def body() -> bytes:
        if request.mimetype == "multipart/form-data":
            upload = request.files.get("file")
            if upload is None:
                raise BadOptions("The multipart upload has no field named 'file'.")
            return security.read_body_limited(upload.stream, max_body_bytes)
        return security.read_body_limited(request.stream, max_body_bytes)

    def more() -> bool:
        return request.args.get("more", "0") in ("1", "true")

    @app.post("/v1/video")
    def video_create():
        params = {k: v for k, v in request.args.to_dict().items() if k != "more"}
        options = video.VideoOptions.from_params(params)
        data = body()
        job = jobs.create(options)
        jobs.append(job, data, 0, more())
        return job.status(), 202

    @app.post("/v1/video/<job_id>/part")
    def video_part(job_id: str):
        job = jobs.get(job_id)
        try:
            offset = int(request.args.get("offset", ""))
        except ValueError:
            raise BadOptions("offset must be the number of bytes already sent.") from None
        jobs.append(job, body(), offset, more())
        return job.status(), 202

    @app.get("/v1/video/<job_id>")
    def video_status(job_id: str):
        return jobs.get(job_id).status()

    @app.get("/v1/video/<job_id>/result")
    def video_result(job_id: str):
        job = jobs.get(job_id)
        if job.state in ("failed", "cancelled"):
            jobs.remove(job)
            raise job.error or Cancelled("The video was cancelled.")
        if job.state != "done":
            raise NotReady(f"The video is not ready yet ({job.state}).")
        handle = open(job.output, "rb")
        size = job.output.stat().st_size
        with jobs.lock:
            jobs.jobs.pop(job.id, None)  # fetched once

        def stream():
            try:
                while chunk := handle.read(CHUNK):
                    yield chunk
            finally:
                handle.close()
                video.remove_workdir(job.workdir)

        return Response(stream(), mimetype="video/mp4", headers={
            "Content-Length": str(size), "X-Shield-Report": json.dumps(job.report, separators=(",", ":")),
            "Content-Disposition": 'attachment; filename="video.protected.mp4"'})

    @app.delete("/v1/video/<job_id>")
    def video_cancel(job_id: str):
        jobs.remove(jobs.get(job_id))
        return Response(status=204)

    return jobs

