"""The Flask app: routes, error mapping and response headers. Request checks live in security.py."""

import ctypes
import io
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, Request, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shield_server import __version__, pipeline, security
from shield_server.errors import BadOptions, ShieldError, TooLarge
from shield_server.face_cache import FaceCache
from shield_server.formats import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from shield_server.server import video_jobs
from shield_server.server.pairing_requests import PairingRequests

log = logging.getLogger("shield.server")

# Room for the multipart envelope around a photo of max_bytes.
MULTIPART_OVERHEAD = 64 * 1024
WEB_FOLDER = Path(__file__).resolve().parent.parent / "web"
WEB_FILES = {name: "text/javascript; charset=utf-8" for name in (
    "app.js", "connect.js", "editor.js", "i18n.js", "names.js", "video.js", "zip.js")} | {
    name: "text/css; charset=utf-8" for name in ("style.css", "editor.css")}
WEB_PAGES = {"/": "index.html", "/connect": "connect.html"}  # the pages that carry the page key
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    # media-src blob:: the web page plays the protected clip it holds as a blob: URL, nothing else.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; media-src blob:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass
class ServerConfig:
    port: int
    token_store: object  # pairing.TokenStore
    allowed_origins: list[str] = field(default_factory=list)
    detectors: list[str] = field(default_factory=list)
    max_bytes: int = DEFAULT_MAX_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    # One photo in processing: the detector takes one photo at a time, so a second "active" photo would
    # wait for it where no deadline applies. 5 waiting, 10 s each at most to start: less than the
    # extension's default deadline (20 s), so a client behind a long job is told to come back.
    max_active: int = 1
    max_waiting: int = 5
    queue_deadline_s: float = 10.0


class InMemoryRequest(Request):
    """Multipart uploads stay in memory: werkzeug would spool files over 500 KB to a temporary file."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(config: ServerConfig) -> Flask:
    app = Flask(__name__, static_folder=None)
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = config.max_bytes + MULTIPART_OVERHEAD
    # Multipart text fields are options: each is bounded before it is parsed (werkzeug counts as it reads).
    app.config["MAX_FORM_MEMORY_SIZE"] = security.MAX_FORM_FIELD_READ
    app.config["MAX_FORM_PARTS"] = security.MAX_FORM_PARTS
    policy = security.RequestPolicy(config.port, config.token_store, config.allowed_origins,
                                    config.max_bytes + MULTIPART_OVERHEAD)
    admission = security.Admission(config.max_active, config.max_waiting, config.queue_deadline_s)
    pairings = PairingRequests(config.token_store)
    faces_cache = FaceCache()  # a review's edits re-send the same original: its faces are not detected again
    video_jobs.register(app, config.max_bytes)

    @app.before_request
    def check_request():
        g.started = time.perf_counter()
        if policy.check_request(request.method, request.path, request.headers, request.content_length,
                                request.query_string, lambda: request.args,
                                (request.environ.get("REMOTE_ADDR"), request.environ.get("REMOTE_PORT"))):
            return Response(status=204, headers=policy.cors_headers(request.path, request.headers, preflight=True))
        return None

    @app.after_request
    def add_headers(response: Response):
        response.headers.update(SECURITY_HEADERS)
        if "Access-Control-Allow-Origin" not in response.headers:
            response.headers.update(policy.cors_headers(request.path, request.headers))
        response.vary.add("Origin")
        elapsed = (time.perf_counter() - g.get("started", time.perf_counter())) * 1000
        # No query string (options only, but nothing else belongs in a log) and no control characters.
        path = request.path[:200].encode("unicode_escape").decode("ascii")
        log.info("%s %s %s %.0fms", request.method, path, response.status_code, elapsed)
        return response

    @app.errorhandler(ShieldError)
    def shield_error(exc: ShieldError):
        response = error_response(exc.code, exc.message, exc.status)
        if isinstance(exc, security.Busy):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code == 413:
            return error_response(TooLarge.code, "The upload, or one of its multipart fields, is over the size "
                                  "limit.", 413)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.code, "bad_request")
        return error_response(code, exc.description or exc.name, exc.code or 400)

    @app.errorhandler(Exception)
    def internal_error(exc: Exception):
        log.error("Internal error on %s %s: %s", request.method, request.path, type(exc).__name__)
        return error_response("internal", "Internal error; the photo was not released.", 500)

    @app.get("/v1/health")
    def health():
        stats = admission.stats
        return {"status": "ready", "version": __version__, "detectors": config.detectors,
                "queue": {"active": stats.active, "waiting": stats.waiting,
                          "max_active": admission.max_active, "max_waiting": admission.max_waiting}}

    @app.get(security.IDENTIFY_PATH)
    def identify():
        return {"proof": policy.server_proof(request.args.get("challenge"))}

    @app.post(security.PAIRING_PATH)
    def open_pairing():
        return pairings.open(request.headers["Origin"])

    @app.get(f"{security.PAIRING_PATH}/<request_id>")
    def collect_pairing(request_id: str):
        return pairings.collect(request_id, request.headers.get(security.PAIRING_SECRET_HEADER, ""))

    @app.get(security.PAIRING_PATH)
    def pending_pairings():
        return {"requests": pairings.pending()}

    @app.post(f"{security.PAIRING_PATH}/<request_id>/<decision>")
    def decide_pairing(request_id: str, decision: str):
        if decision not in ("allow", "refuse"):
            return error_response("not_found", "Not found.", 404)
        pairings.decide(request_id, decision == "allow")
        return {"ok": True}

    @app.post("/v1/protect")
    def protect():
        with admission.slot():
            data, params = _photo_and_option_texts(config)
            result = pipeline.protect(data, _options(params, config), faces_cache)
            release_freed_memory()
        report = json.dumps(result.report(), separators=(",", ":"))
        return Response(_chunks(result.data), mimetype=result.mime_type, headers={
            "Content-Length": str(len(result.data)), "X-Shield-Report": report,
            "Content-Disposition": f'attachment; filename="photo.protected.{result.extension}"'})

    @app.post("/v1/detect")
    def detect():
        with admission.slot():
            data, params = _photo_and_option_texts(config)
            choices, width, height = pipeline.detect_only(data, _options(params, config))
            release_freed_memory()
        return {"faces": pipeline.detections(choices.replaced, choices.kept), "added": [list(b) for b in choices.added],
                "kept": [list(f.box) for f in choices.kept], "width": width, "height": height}

    @app.get("/")
    @app.get("/connect")
    def page():  # security.PAGE_PATHS: served as documents only
        html = _web_text(WEB_PAGES[request.path]).replace("__SHIELD_PAGE_KEY__", policy.page_key)
        return Response(html, mimetype="text/html")

    @app.get("/<name>")
    def web_file(name: str):
        if name not in WEB_FILES:
            return error_response("not_found", "Not found.", 404)
        return Response(_web_text(name), content_type=WEB_FILES[name])

    return app


def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """Give what the photo just processed freed back to the system. glibc keeps freed heap memory for reuse,
    and after a 12 MP photo ~70 MB of it stayed in the process, on top of the next photo's peak (measured:
    peak 604 -> 547 MB over 6 photos of 12 MP, no cost in time; docs/BENCHMARKS.md). No-op off glibc."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def error_response(code: str, message: str, status: int) -> Response:
    body = json.dumps({"error": code, "message": message})
    return Response(body, status=status, mimetype="application/json")


# Multipart form fields that may carry these options instead of the query string (boxes can be long).
FORM_OPTIONS = ("regions", "keep")
FORM_FILE = "file"


def _photo_and_option_texts(config: ServerConfig) -> tuple[bytes, dict[str, str]]:
    """The photo and its options as text, every size checked; nothing is parsed yet. Called once admitted to
    the queue: waitress holds each whole request in its buffer, and only the photo in processing is copied out
    of it and has its options parsed (_options), so a burst of requests costs its buffers and no more."""
    params = request.args.to_dict()
    if request.mimetype != "multipart/form-data":
        return security.read_body_limited(request.stream, config.max_bytes), params
    try:
        form, files = request.form, request.files
    except RequestEntityTooLarge:
        raise TooLarge(f"A multipart field is over {security.MAX_FORM_FIELD_READ // 1024} kB, or the upload has "
                       f"more than {security.MAX_FORM_PARTS} parts.") from None
    security.check_option_sizes(form.items(multi=True))
    unknown = sorted(set(form) - set(FORM_OPTIONS) | set(files) - {FORM_FILE})
    if unknown:
        raise BadOptions(f"Unknown multipart field(s): {', '.join(name[:32] for name in unknown)}. Send '{FORM_FILE}'"
                         f" (the photo) and optionally {' and '.join(FORM_OPTIONS)}; other options go in the query.")
    for name in FORM_OPTIONS:
        if name in form:
            if name in params or len(form.getlist(name)) > 1:
                raise BadOptions(f"'{name}' is given more than once.")
            params[name] = form[name]
    upload = files.get(FORM_FILE)
    if upload is None:
        raise BadOptions(f"The multipart upload has no field named '{FORM_FILE}'.")
    if len(files.getlist(FORM_FILE)) > 1:
        raise BadOptions(f"'{FORM_FILE}' is given more than once.")
    return security.read_body_limited(upload.stream, config.max_bytes), params


def _options(params: dict[str, str], config: ServerConfig) -> pipeline.ProtectOptions:
    return pipeline.ProtectOptions.from_params(params, max_bytes=config.max_bytes, max_pixels=config.max_pixels)


def _web_text(name: str) -> str:
    return (WEB_FOLDER / name).read_text(encoding="utf-8")


def _chunks(data: bytes, size: int = 1 << 20):
    # Waitress flushes between chunks, so a large photo never sits twice in its output buffer.
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start:start + size])
