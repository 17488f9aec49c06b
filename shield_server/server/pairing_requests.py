"""One-click pairing: the extension asks, the person allows it in the local page, the extension gets the token.

1. The extension opens a request (`POST /v1/pairing`) and gets an id, a secret and a short code to show.
2. The local page lists open requests (id, code, asking origin); the person checks that the code is the one
   the extension shows and allows it. Every pairing call needs a connection from the user running the
   server (security.check_same_user): another local user can neither open a request, nor read the codes,
   nor allow one. Each asking origin has at most one pending request: a new one replaces it.
3. The extension collects the token with the id and its secret; the page never sees the secret, so whoever
   can read the page cannot collect the token. The threat reasoning is in docs/SECURITY.md.
"""

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

from shield_server.errors import ShieldError

LIFETIME_S = 120
MAX_OPEN = 4


class UnknownPairing(ShieldError):
    code, status = "not_found", 404


class TooManyPairings(ShieldError):
    code, status = "busy", 429


@dataclass
class _Request:
    secret: str
    code: str
    origin: str
    expires: float
    state: str = "pending"  # pending -> allowed | refused


class PairingRequests:
    def __init__(self, token_store, clock=time.monotonic):
        self._tokens = token_store
        self._clock = clock
        self._requests: dict[str, _Request] = {}
        self._lock = threading.Lock()

    def _drop_expired(self) -> None:
        now = self._clock()
        for request_id in [i for i, r in self._requests.items() if r.expires <= now]:
            del self._requests[request_id]

    def open(self, origin: str) -> dict:
        with self._lock:
            self._drop_expired()
            for request_id in [i for i, r in self._requests.items() if r.origin == origin and r.state == "pending"]:
                del self._requests[request_id]  # asked again (Connect pressed twice): the newest request counts
            if len(self._requests) >= MAX_OPEN:
                raise TooManyPairings("Too many pairing requests are open; try again in two minutes.")
            request_id, secret = secrets.token_hex(16), secrets.token_urlsafe(32)
            code = f"{secrets.randbelow(1000):03d} {secrets.randbelow(1000):03d}"
            self._requests[request_id] = _Request(secret, code, origin, self._clock() + LIFETIME_S)
        return {"id": request_id, "secret": secret, "code": code, "expires_in": LIFETIME_S}

    def pending(self) -> list[dict]:
        with self._lock:
            self._drop_expired()
            return [{"id": i, "code": r.code, "origin": r.origin}
                    for i, r in self._requests.items() if r.state == "pending"]

    def decide(self, request_id: str, allow: bool) -> None:
        with self._lock:
            self._drop_expired()
            request = self._requests.get(request_id)
            if request is None or request.state != "pending":
                raise UnknownPairing("No such pairing request (it may have expired).")
            request.state = "allowed" if allow else "refused"

    def collect(self, request_id: str, secret: str) -> dict:
        """The request's state; the token once, when it was allowed (the request is then closed)."""
        with self._lock:
            self._drop_expired()
            request = self._requests.get(request_id)
            if request is None or not hmac.compare_digest(secret.encode(), request.secret.encode()):
                raise UnknownPairing("No such pairing request (it may have expired).")
            if request.state == "pending":
                return {"status": "pending"}
            del self._requests[request_id]
            token = self._tokens.current() if request.state == "allowed" else None
            if token is None:
                return {"status": "refused"}
            return {"status": "allowed", "token": token}
