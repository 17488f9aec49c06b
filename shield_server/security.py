"""Every request check of the local server, in one place: Host, Origin, token, body size, admission.

Order of checks for each request: Host (defeats DNS rebinding) -> Origin (refuses web pages) -> the query's
size and each option once -> token (the real credential) -> body size -> admission to the bounded work queue;
option values are only parsed after admission, and a JSON value's nesting is checked before it is parsed.
See docs/SECURITY.md.
"""

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from shield_server.errors import BadOptions, ShieldError, TooLarge

EXTENSION_ID = "kcbncmfikphjokbejdopkgddbliakibd"
CHROME_EXTENSION_ORIGIN = f"chrome-extension://{EXTENSION_ID}"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
TOKEN_HEADER = "X-Shield-Token"
PAGE_KEY_HEADER = "X-Shield-Page-Key"
API_PREFIX = "/v1/"
IDENTIFY_PATH = "/v1/identify"  # the one API path answered without a token (it proves the server knows it)
PAGE_PATHS = ("/", "/connect")  # the local pages that carry the page key
PAIRING_SECRET_HEADER = "X-Shield-Pairing-Secret"
# One-click pairing (server/pairing_requests.py): every pairing call must come from a connection of the user
# running the server (check_same_user), so another account can neither open requests (and hold their
# slots), nor read their codes, nor allow one. Only an extension opens a request; collecting its answer
# needs no token but the request's secret (browsers send no Origin on an extension's GET); listing and
# deciding requests is for the local page (credentials).
PAIRING_PATH = "/v1/pairing"
_PAIRING_COLLECT = re.compile(r"/v1/pairing/[0-9a-f]{32}")
CORS_EXPOSE_HEADERS = "X-Shield-Report, Content-Disposition"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{16,256}")
# A Firefox extension origin is moz-extension://<per-install UUID>.
_MOZ_EXTENSION = re.compile(r"moz-extension://[0-9a-fA-F-]{36}")
PEER_TABLE = "/proc/net/tcp"  # Linux: who owns each IPv4 connection
_ALLOWED_ORIGIN_FORM = re.compile(r"(https?|chrome-extension|moz-extension)://[A-Za-z0-9.\-\[\]:]+")

# Sizes of option values (query parameters and multipart text fields), checked before any of them is parsed.
# Box lists (regions, keep) hold at most pipeline.MAX_REGIONS boxes of 4 numbers: 64 kB leaves room for 200
# boxes of long decimals. Every other value (fill, color, margin, mode, audio, challenge, offset...) is a word
# or a number.
BOX_LIST_OPTIONS = ("regions", "keep")
MAX_BOX_LIST_BYTES = 64 * 1024
MAX_OPTION_BYTES = 256
MAX_OPTION_NAME_BYTES = 32
MAX_OPTIONS = 16
MAX_QUERY_BYTES = len(BOX_LIST_OPTIONS) * 3 * MAX_BOX_LIST_BYTES  # percent-encoding triples a byte at most
# Multipart: the file and the box lists. Werkzeug refuses more parts, or a text part over MAX_FORM_FIELD_READ
# while reading it (it counts a 64 kB piece of input with what it holds, so its limit must exceed that);
# each field is then held to its option's size like a query parameter.
MAX_FORM_PARTS = 8
MAX_FORM_FIELD_READ = 4 * MAX_BOX_LIST_BYTES
# A list of boxes is [[x0, y0, x1, y1], ...]: two levels. Python's JSON parser recurses once per level and
# fails with RecursionError (a 500) near 1000.
MAX_JSON_DEPTH = 2
_JSON_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class Unauthorized(ShieldError):
    code, status = "unauthorized", 401


class ForbiddenHost(ShieldError):
    code, status = "forbidden_host", 403


class ForbiddenOrigin(ShieldError):
    code, status = "forbidden_origin", 403


class ForbiddenPeer(ShieldError):
    code, status = "forbidden_peer", 403


class Busy(ShieldError):
    """The queue is full: refused at once. retry_after_s goes out as the Retry-After header."""

    code, status = "busy", 429
    retry_after_s = 2


class BusyTimeout(Busy):
    """The photo could not start within the queue's deadline (a long job ahead of it)."""

    status = 503
    retry_after_s = 5


def validate_extra_origin(origin: str) -> str:
    """An --allow-origin value must be one exact origin: scheme://host[:port], no path, no wildcard."""
    origin = origin.strip().rstrip("/")
    if not _ALLOWED_ORIGIN_FORM.fullmatch(origin):
        raise ValueError(f"Not an origin: {origin!r} (expected e.g. chrome-extension://<id>).")
    return origin


class RequestPolicy:
    """Who may talk to the server listening on 127.0.0.1:port."""

    def __init__(self, port: int, token_store, extra_origins=(), max_body_bytes: int = 40_000_000):
        self.port = port
        self.tokens = token_store
        self.extra_origins = frozenset(validate_extra_origin(o) for o in extra_origins)
        self.max_body_bytes = max_body_bytes
        self.own_hosts = frozenset(f"{host}:{port}" for host in LOOPBACK_HOSTS)
        self.own_origins = frozenset(f"http://{host}" for host in self.own_hosts)
        # Authorises the local web page's own calls. It lives in memory only, changes on every start
        # and is only ever written into the page served to loopback Hosts (see SECURITY.md).
        self.page_key = secrets.token_urlsafe(32)

    def check_request(self, method: str, path: str, headers, content_length: int | None, query_string: bytes,
                      parsed_query, peer: tuple[str | None, str | None] = (None, None)) -> bool:
        """Every check, in order; raises the first failure. True means an allowed CORS preflight to answer.
        parsed_query() parses the query string into a MultiDict: only called once its size is checked.
        peer: the client's address and port (REMOTE_ADDR, REMOTE_PORT)."""
        self.check_host(headers.get("Host"))
        if not path.startswith(API_PREFIX):
            self.check_page_request(path, headers)
            return False
        self.check_origin(headers.get("Origin"))
        if method == "OPTIONS":
            return True
        check_query(query_string, parsed_query)
        if path == IDENTIFY_PATH:
            return False
        if path == PAIRING_PATH or path.startswith(PAIRING_PATH + "/"):
            self.check_same_user(*peer)
        if method == "POST" and path == PAIRING_PATH:
            if not self.is_extension_origin(headers.get("Origin") or ""):
                raise ForbiddenOrigin("Only the browser extension can ask to pair.")
            return False
        if method == "GET" and _PAIRING_COLLECT.fullmatch(path):
            return False
        self.check_credentials(headers, peer)
        self.check_content_length(content_length)
        return False

    def cors_headers(self, path: str, headers, preflight: bool = False) -> dict:
        """CORS answers go to extension origins only; the page's own origin needs none."""
        origin = headers.get("Origin")
        if not (path.startswith(API_PREFIX) and origin and self.is_extension_origin(origin)):
            return {}
        if not preflight:
            return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": CORS_EXPOSE_HEADERS}
        answer = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                  "Access-Control-Allow-Headers": f"{TOKEN_HEADER}, {PAIRING_SECRET_HEADER}, Content-Type", "Access-Control-Max-Age": "600"}
        if headers.get("Access-Control-Request-Private-Network") == "true":
            answer["Access-Control-Allow-Private-Network"] = "true"
        return answer

    def check_host(self, host: str | None) -> None:
        if (host or "").lower() not in self.own_hosts:
            raise ForbiddenHost(f"This server only answers to http://127.0.0.1:{self.port}.")

    def is_extension_origin(self, origin: str) -> bool:
        return (origin == CHROME_EXTENSION_ORIGIN or bool(_MOZ_EXTENSION.fullmatch(origin))
                or origin in self.extra_origins)

    def check_origin(self, origin: str | None) -> None:
        """No Origin (curl, scripts, same-origin GETs), an extension, or this server's own page."""
        if origin is None or self.is_extension_origin(origin) or origin.lower() in self.own_origins:
            return
        raise ForbiddenOrigin("Requests from web pages are refused.")

    def check_page_request(self, path: str, headers) -> None:
        """The web page is only loaded as a document, by navigation; another origin never gets it."""
        origin = headers.get("Origin")
        if origin is not None and origin.lower() not in self.own_origins:
            raise ForbiddenOrigin("The page is only served to this server's own origin.")
        destination = headers.get("Sec-Fetch-Dest")
        if path in PAGE_PATHS and destination not in (None, "document"):
            raise ForbiddenOrigin("The page can only be opened as a page.")

    def check_credentials(self, headers, peer: tuple[str | None, str | None] = (None, None)) -> None:
        token = headers.get(TOKEN_HEADER)
        page_key = headers.get(PAGE_KEY_HEADER)
        if token is not None:
            expected = self.tokens.current()
            if expected is not None and hmac.compare_digest(token.encode(), expected.encode()):
                return
        elif page_key is not None:
            # The page key is honoured only from the page's own origin (or same-origin GETs without one).
            origin = headers.get("Origin")
            if (origin is None or origin.lower() in self.own_origins) and hmac.compare_digest(
                    page_key.encode(), self.page_key.encode()):
                self.check_page_key_peer(*peer)
                return
        raise Unauthorized(f"Missing or wrong {TOKEN_HEADER}: run `shield pair` and paste the token "
                           "into the extension's settings.")

    def check_page_key_peer(self, peer_address: str | None, peer_port: str | None) -> None:
        """The page key is in a page every local account can load. Where the system tells who owns a
        loopback connection (Linux), it works only for the server's own user, so another account cannot use
        the API with it (fill the queue, hold the video jobs, read the pairing requests). Elsewhere the page
        key works as it is; one-click pairing is refused there anyway (check_same_user)."""
        if os.path.exists(PEER_TABLE):
            self.check_same_user(peer_address, peer_port)

    def server_proof(self, challenge: str | None) -> str:
        """HMAC of the client's random challenge with the pairing token. A program squatting on the port
        while Photo Shield is stopped cannot compute it, so a client can check the server before it sends
        the token or a photo."""
        if challenge is None or not _CHALLENGE.fullmatch(challenge):
            raise BadOptions("The challenge must be 16 to 256 characters of A-Z, a-z, 0-9, '-' or '_'.")
        token = self.tokens.current()
        if token is None:
            raise Unauthorized("The server has no pairing token: run `shield pair`.")
        message = f"photo-shield-proof:{challenge}".encode()
        return hmac.new(token.encode(), message, hashlib.sha256).hexdigest()

    def check_same_user(self, peer_address: str | None, peer_port: str | None) -> None:
        """The connection comes from a program of the user running this server (Linux: /proc/net/tcp says
        which user owns the client's end of a loopback connection). Elsewhere this cannot be told, so
        one-click pairing is refused and `shield pair` remains the way to pair."""
        owner = loopback_peer_uid(peer_address, peer_port, self.port)
        if owner is None or not hasattr(os, "getuid") or owner != os.getuid():
            raise ForbiddenPeer("Only the user running Photo Shield can use its page or allow a browser to "
                                "connect (or run `shield pair` and paste the token).")

    def check_content_length(self, content_length: int | None) -> None:
        if content_length is not None and content_length > self.max_body_bytes:
            raise TooLarge(f"The upload is {content_length / 1e6:.1f} MB; the limit is "
                           f"{self.max_body_bytes / 1e6:.0f} MB.")


def loopback_peer_uid(peer_address: str | None, peer_port: str | None, server_port: int) -> int | None:
    """The user id owning the client end of the IPv4 loopback connection peer_port -> server_port, or None."""
    if peer_address != "127.0.0.1" or not str(peer_port or "").isdigit():
        return None
    wanted = (f"0100007F:{int(peer_port):04X}", f"0100007F:{int(server_port):04X}")
    try:
        with open(PEER_TABLE, encoding="ascii") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if (fields[1], fields[2]) == wanted:
                    return int(fields[7])
    except OSError:
        pass
    return None


def check_query(query_string: bytes, parsed_query) -> None:
    """The query's size, then each option at most once and of bounded size (parsed_query() gives its
    MultiDict, only once the raw size is known). Of fill=noise&fill=000000, which one counts would be a
    guess, and a client and the server guessing differently is how a photo gets the wrong protection."""
    if len(query_string) > MAX_QUERY_BYTES:
        raise TooLarge(f"The query string is {len(query_string)} bytes; the limit is {MAX_QUERY_BYTES}.")
    query = parsed_query()
    repeated = sorted(name for name in query.keys() if len(query.getlist(name)) > 1)
    if repeated:
        raise BadOptions(f"Option(s) given more than once: {', '.join(repeated)}. Give each option once.")
    check_option_sizes(query.items())


def check_option_sizes(options) -> None:
    """(name, value) pairs: at most MAX_OPTIONS, names and values within their sizes."""
    options = list(options)
    if len(options) > MAX_OPTIONS:
        raise BadOptions(f"{len(options)} options given; at most {MAX_OPTIONS} are accepted.")
    for name, value in options:
        if len(name) > MAX_OPTION_NAME_BYTES:
            raise BadOptions(f"An option name is {len(name)} characters long; none is longer than "
                             f"{MAX_OPTION_NAME_BYTES}.")
        limit = MAX_BOX_LIST_BYTES if name in BOX_LIST_OPTIONS else MAX_OPTION_BYTES
        size = len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else len(value)
        if size > limit:
            raise TooLarge(f"The option '{name}' is {size} bytes; the limit is {limit} bytes"
                           + (f" (at most {MAX_BOX_LIST_BYTES // 1024} kB of boxes)." if limit == MAX_BOX_LIST_BYTES
                              else "."))


def check_json_nesting(name: str, text: str, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuses JSON nested deeper than max_depth before it is parsed (strings are skipped whole)."""
    depth = 0
    for match in _JSON_NESTING.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > max_depth:
                raise BadOptions("{option} is nested deeper than a list of [x0, y0, x1, y1] boxes.", option=name)
        elif token in "]}":
            depth -= 1


def read_body_limited(stream, limit: int) -> bytes:
    """Read at most limit bytes; more means the client lied about (or omitted) its Content-Length."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"The upload is over the limit of {limit / 1e6:.0f} MB.")
    return data


@dataclass
class AdmissionStats:
    active: int = 0
    waiting: int = 0


class Admission:
    """A bounded work queue: max_active photos in processing, max_waiting more queued, the rest refused
    at once (429). A queued request that cannot start within deadline_s is refused with 503. The server's
    sizes are in app.ServerConfig."""

    def __init__(self, max_active: int, max_waiting: int, deadline_s: float):
        self.max_active, self.max_waiting, self.deadline_s = max_active, max_waiting, deadline_s
        self._condition = threading.Condition()
        self.stats = AdmissionStats()

    @contextmanager
    def slot(self):
        self._enter()
        try:
            yield
        finally:
            with self._condition:
                self.stats.active -= 1
                self._condition.notify()

    def _enter(self) -> None:
        with self._condition:
            stats = self.stats
            if stats.active < self.max_active and stats.waiting == 0:
                stats.active += 1
                return
            if stats.waiting >= self.max_waiting:
                raise Busy("Too many photos at once; try again in a moment.")
            stats.waiting += 1
            give_up_at = time.monotonic() + self.deadline_s
            try:
                while stats.active >= self.max_active:
                    remaining = give_up_at - time.monotonic()
                    if remaining <= 0:
                        raise BusyTimeout("The server is busy; the photo waited too long. Try again.")
                    self._condition.wait(remaining)
            finally:
                stats.waiting -= 1
            stats.active += 1
