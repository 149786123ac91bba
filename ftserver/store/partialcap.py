"""The cap on the total size of partial uploads: the oldest not in use are evicted first.

Abandoned partials are also deleted after ``partial_ttl`` (storage.py); this cap
keeps many fresh abandoned uploads from filling the disk meanwhile. A partial
whose name lock is held belongs to an upload in progress and is never touched,
whatever its age, so the cap may be exceeded while that many uploads run.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

from ftserver.store.locks import NameLock

log = logging.getLogger("ftserver.partials")

SUFFIX = ".part"
STREAM_SUFFIX = "-stream" + SUFFIX
"""A streamed put's partial (never resumed): ``KEY-stream.part`` beside ``KEY.part``."""


@dataclass(frozen=True)
class Partial:
    key: str
    """The name-lock key of the upload it belongs to."""
    path: str
    size: int
    mtime: float


def partials(partials_dir: str) -> list[Partial]:
    """Every partial upload in ``partials_dir``, with the lock key its upload holds."""
    found = []
    with os.scandir(partials_dir) as scan:
        for entry in scan:
            if not entry.name.endswith(SUFFIX):
                continue
            try:
                st = entry.stat()
            except OSError:
                continue
            key = entry.name.removesuffix(STREAM_SUFFIX).removesuffix(SUFFIX)
            found.append(Partial(key, entry.path, st.st_size, st.st_mtime))
    return found


def evict_over_cap(partials_dir: str, locks_dir: str, cap: int, incoming: int = 0) -> int:
    """Delete the oldest unlocked partials until all of them plus ``incoming`` fit ``cap``.

    ``cap`` 0 means no cap. Returns the bytes freed.
    """
    if cap <= 0:
        return 0
    found = partials(partials_dir)
    excess = sum(partial.size for partial in found) + incoming - cap
    freed = 0
    for partial in sorted(found, key=lambda p: p.mtime):
        if excess <= 0:
            break
        if partial.size == 0:
            continue
        with NameLock(locks_dir, partial.key) as lock:
            if not lock.try_acquire():
                continue  # an upload in progress owns it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial.path)
                excess -= partial.size
                freed += partial.size
    if freed:
        log.info("evicted %d bytes of the oldest partial uploads (partial_max_bytes=%d)",
                 freed, cap)
    return freed
