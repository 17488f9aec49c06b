"""The faces found in the last few originals, in memory only, so that a person's edit is answered at once.

A review re-sends the same original with new regions or keeps after every change. Detection is most of a
photo's time (~360 of ~500 ms at 12 MP), and it would find the same faces again: its answer is kept here,
keyed by a SHA-256 of the original's bytes and of what else decides the frames detection sees. The photo
itself is never kept: every request decodes, redacts, verifies and encodes the original it carries, so a
client can reuse faces only for the very bytes they were found in.

Bounded by entries and by age; nothing is written anywhere.
"""

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Callable

MAX_ENTRIES = 8  # a few photos open for review at once (web page and extension)
MAX_AGE_S = 600.0  # an edit comes seconds after the last; a photo left for ten minutes is detected afresh


def cache_key(data: bytes, *settings) -> bytes:
    """A digest of the original's bytes and the settings that decide what detection sees."""
    digest = hashlib.sha256(data)
    digest.update(b"\0" + repr(settings).encode("utf-8"))
    return digest.digest()


class FaceCache:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_age_s: float = MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic):
        self.max_entries, self.max_age_s, self._clock = max_entries, max_age_s, clock
        self._entries: OrderedDict[bytes, tuple[float, tuple]] = OrderedDict()
        self._lock = threading.Lock()

    def faces(self, key: bytes, find: Callable[[], list]) -> tuple[list, bool]:
        """The faces stored under key (and True), or find()'s, stored (and False)."""
        with self._lock:
            self._forget_old()
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                return list(entry[1]), True
        found = find()  # outside the lock: detection has its own
        with self._lock:
            self._entries[key] = (self._clock(), tuple(found))
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return found, False

    def __len__(self) -> int:
        with self._lock:
            self._forget_old()
            return len(self._entries)

    def _forget_old(self) -> None:
        oldest = self._clock() - self.max_age_s
        for key in [key for key, (stored, _) in self._entries.items() if stored < oldest]:
            del self._entries[key]
