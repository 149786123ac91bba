"""The SHA-256 state of tus uploads between their PATCHes, kept in memory.

A tus upload arrives in many passes of the one upload. Each pass that ends short
keeps its partial with the digest of what it holds (partial.keep, as a cut put
does); the hasher itself, fed all those bytes, is kept here too, so that the next
pass goes on hashing from it instead of reading the whole partial again (which,
PATCH after PATCH, would read a big file over and over). ops/upload.py takes a
kept hasher only when its digest is the one the partial recorded for what it holds
now; a restart, another worker process, or an evicted entry only costs one read
of the partial. Bounded: the least recently used go first.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

MAX_KEPT = 256
"""Uploads whose hashers are kept (a SHA-256 state is about 200 bytes)."""


class KeptHashers:
    def __init__(self, limit: int = MAX_KEPT) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, hashlib._Hash] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, token: str) -> hashlib._Hash | None:
        with self._lock:
            hasher = self._kept.get(token)
            if hasher is None:
                return None
            self._kept.move_to_end(token)
            return hasher.copy()

    def put(self, token: str, hasher: hashlib._Hash | None) -> None:
        with self._lock:
            if hasher is None:
                self._kept.pop(token, None)
                return
            self._kept[token] = hasher
            self._kept.move_to_end(token)
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)

    def drop(self, token: str) -> None:
        self.put(token, None)


KEPT = KeptHashers()
"""This process's (sessions are threads of it)."""
