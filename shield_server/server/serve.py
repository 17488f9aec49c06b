"""`shield serve` and `shield pair`: the waitress runner on 127.0.0.1 and the pairing token commands."""

import argparse
import json
import logging
import signal
import sys

from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ErrorTask

from shield_server.native_output import native_stderr_silenced
from shield_server.security import validate_extra_origin
from shield_server.server import pairing
from shield_server.server.app import MULTIPART_OVERHEAD, SECURITY_HEADERS, ServerConfig, create_app

DEFAULT_PORT = 47321
BIND_ADDRESS = "127.0.0.1"  # loopback only, never another interface
# Beyond the queue's threads, a few for cheap answers (health, refusals) while photos are processing.
SPARE_THREADS = 2
# Waitress buffers each whole request before the app sees it, so open connections bound memory.
CONNECTION_LIMIT = 16


class JsonErrorTask(ErrorTask):
    """Waitress's own refusals (body over the limit, malformed HTTP) in the API's JSON error shape."""

    def execute(self):
        error = self.request.error
        code = "too_large" if error.code == 413 else "bad_request"
        body = json.dumps({"error": code, "message": error.reason}).encode()
        self.status = f"{error.code} {error.reason}"
        self.response_headers.extend([("Content-Type", "application/json"), *SECURITY_HEADERS.items()])
        self.set_close_on_finish()
        self.content_length = len(body)
        self.write(body)


class ShieldChannel(HTTPChannel):
    error_task_class = JsonErrorTask


def _not_yet(environ, start_response):  # replaced by the real app before the first request is served
    start_response("503 Service Unavailable", [("Content-Type", "application/json"), ("Retry-After", "2")])
    return [b'{"error": "busy", "message": "Starting."}']


def _limit_malloc_arenas() -> None:
    """glibc gives each worker thread its own malloc arena; photo-sized buffers freed in one arena are not
    reused by the others, and RSS creeps up to about twice what the work needs. Two arenas keep it flat
    (measured: ~1 GB -> ~0.5 GB after 30 photos of 3 MP). Same effect as MALLOC_ARENA_MAX=2; no-op elsewhere."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def _stop(signum, frame):
    raise KeyboardInterrupt


def main(args) -> int:
    port = DEFAULT_PORT if getattr(args, "port", None) is None else args.port
    folder = pairing.config_dir(getattr(args, "config_dir", None))
    try:
        if not 0 <= port <= 65535:
            raise ValueError(f"Not a port: {port}.")
        origins = [validate_extra_origin(o) for o in getattr(args, "allow_origin", None) or []]
        tokens = pairing.TokenStore(folder)
    except ValueError as exc:
        print(f"shield serve: {exc}", file=sys.stderr)
        return 2
    except (pairing.PairingError, OSError) as exc:
        print(f"shield serve: {exc}", file=sys.stderr)
        return 1
    _limit_malloc_arenas()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "task queue depth" is expected under load
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        return _serve(port, tokens, origins, _queue_settings(args), bool(getattr(args, "verbose", False)))
    except KeyboardInterrupt:
        print("Photo Shield stopped.", flush=True)
        return 0


def _queue_settings(args) -> dict:
    """Queue sizes and deadline (defaults in ServerConfig); only the test entry point below sets them."""
    given = {"max_active": getattr(args, "max_active", None), "max_waiting": getattr(args, "max_waiting", None),
             "queue_deadline_s": getattr(args, "queue_deadline", None)}
    return {name: value for name, value in given.items() if value}


def _serve(port: int, tokens: pairing.TokenStore, origins: list[str], queue: dict, verbose: bool) -> int:
    config = ServerConfig(port=port, token_store=tokens, allowed_origins=origins, **queue)
    try:  # bind first: a port already in use is reported at once, not after loading the models
        server = create_server(
            _not_yet, host=BIND_ADDRESS, port=port,
            threads=config.max_active + config.max_waiting + SPARE_THREADS,
            connection_limit=CONNECTION_LIMIT, channel_timeout=60, asyncore_use_poll=True,
            max_request_body_size=config.max_bytes + MULTIPART_OVERHEAD,
            # Keep bodies and answers in memory: waitress would otherwise spill them to temporary files.
            inbuf_overflow=config.max_bytes + MULTIPART_OVERHEAD + 1, outbuf_overflow=1 << 30,
            expose_tracebacks=False, ident="photo-shield")
    except OSError as exc:
        print(f"shield serve: cannot listen on {BIND_ADDRESS}:{port}: {exc.strerror}. "
              "Is another Photo Shield already running?", file=sys.stderr)
        return 1
    server.channel_class = ShieldChannel
    config.port = server.effective_port  # differs from port only for --port 0 (tests: any free port)

    from shield_server import pipeline  # loads numpy and the models: only when actually serving

    print("Loading the face models...", flush=True)
    try:
        with native_stderr_silenced(not verbose):
            config.detectors = pipeline.warm_up()
    except Exception as exc:  # noqa: BLE001 - any failure here means no photo could ever be protected
        server.close()
        print(f"shield serve: the face models could not be loaded ({type(exc).__name__}: {exc})."
              + ("" if verbose else " `shield serve --verbose` shows the libraries' own messages."),
              file=sys.stderr)
        return 1
    # Connections made while the models load wait in the listen backlog; none is answered before this.
    server.application = create_app(config)

    url = f"http://{BIND_ADDRESS}:{config.port}"
    print(f"Photo Shield listening on {url}/ (loopback only; detectors: {', '.join(config.detectors)})\n"
          f"  Web page: open {url}/ in your browser.\n"
          f"  Browser extension: install it as README.md says (\"Install the browser extension\"), then\n"
          f"  press Connect this browser on its welcome page, and Allow at {url}/connect\n"
          f"  Token file: {tokens.path}\n"
          f"  Stop with Ctrl+C.", flush=True)
    try:
        server.run()
    finally:
        server.close()
    print("Photo Shield stopped.", flush=True)
    return 0


def pair(args) -> int:
    folder = pairing.config_dir(getattr(args, "config_dir", None))
    try:
        token = pairing.rotate(folder) if getattr(args, "rotate", False) else pairing.load_or_create(folder)
    except (pairing.PairingError, OSError) as exc:
        print(f"shield pair: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "rotate", False):
        print("New pairing token (the old one no longer works; a running server switches at once):",
              file=sys.stderr)
    else:
        print("Pairing token: paste it into the Photo Shield extension's settings.", file=sys.stderr)
    print(token)
    return 0


def _parser() -> argparse.ArgumentParser:
    """`shield serve` plus queue knobs for tests (the public CLI keeps the safe defaults)."""
    parser = argparse.ArgumentParser(prog="python -m shield_server.server.serve")
    parser.add_argument("--max-active", type=int)
    parser.add_argument("--max-waiting", type=int)
    parser.add_argument("--queue-deadline", type=float)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--allow-origin", action="append", default=[])
    parser.add_argument("--config-dir", default=None)
    parser.add_argument("--verbose", action="store_true")
    return parser


if __name__ == "__main__":
    sys.exit(main(_parser().parse_args()))
