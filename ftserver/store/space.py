"""Room on disk for uploads: promised before a byte is accepted, reclaimed from abandoned partials.

An upload may start only if what it still needs fits on the filesystem it will be
published into, with ``min_free_bytes`` to spare, after what every other upload on
that filesystem has been promised and not yet written. Those promises are the
partials in use: a partial whose target's name lock is held (an upload is writing
it) will grow to the size its upload announced (in its name, or its sidecar). So
``reserve`` reads the partials folder, the name locks and statvfs, under a lock of
its own (a byte of the names file per filesystem), and the caller has created its
own partial before anyone else looks: across threads and worker processes alike,
no byte of free space is promised twice. A process that dies lets go of its locks,
so its partials stop counting as promises by themselves.

When room is short, abandoned partials (nobody's lock held, untouched for
EVICTABLE_AFTER seconds, so that a client's own retry can still resume) are
reclaimed, oldest first, and only as many as the upload needs. An upload that would
not fit even then evicts nothing and is refused (``no_space``, without saying how
much is free). ``partial_max_bytes`` caps the partials kept: when an upload starts
and when one is cut, the oldest not in use go until the partials held, plus what the
running uploads have been promised, fit under it (running uploads are never cut for
it). Partials untouched for ``partial_ttl`` go in the hourly sweep.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable

from common.protocol.errors import Locked, NoSpace
from common.sizes import human_size
from ftserver.store.locks import NameLock, held_elsewhere, key_byte, open_names
from ftserver.store.partials import (
    FoundPartial,
    PartialFolders,
    PartialsFolder,
    delete_found,
    scan,
    scan_legacy,
)

log = logging.getLogger("ftserver.partials")

EVICTABLE_AFTER = 600.0
"""Seconds a partial nobody writes is kept whatever the space (its client may retry)."""
SPACE_LOCK_WAIT = 5.0
"""Seconds an upload waits for another's space check (which takes milliseconds)."""


class Space:
    """Free space and partials for the uploads of one share."""

    def __init__(self, folders: PartialFolders, locks_dir: str, min_free_bytes: int,
                 cap: int) -> None:
        self.folders = folders
        self.locks_dir = locks_dir
        self.min_free_bytes = min_free_bytes
        self.cap = cap
        """Bytes of partials kept at most (0: no cap)."""

    # ------------------------------------------------------------ promising room

    def reserve(self, folder: PartialsFolder, need: int, key: str,
                mine: str | None = None) -> None:
        """Promise ``need`` bytes on ``folder``'s filesystem to the upload of the name whose
        lock key is ``key`` (the caller holds that lock) and whose partial is ``mine``
        (already created there, or None), or raise NoSpace. Old abandoned partials are
        reclaimed first when that makes it fit; nothing is reclaimed when it cannot."""
        with self._space_lock(folder), _Locks(self.locks_dir) as locks:
            found = [p for p in scan(folder.path) if p.name != mine]
            found += [p for p in scan_legacy(self.folders.legacy)
                      if _same_device(p.folder, folder.dev)]
            # Other partials of the caller's own name are nobody's now: it holds that lock.
            in_use = {p.name for p in found if p.key != key and locks.in_use(p.key)}
            promised = sum(max(0, (p.announced or 0) - p.held) for p in found
                           if p.name in in_use)
            room = _free(folder) - self.min_free_bytes - promised
            if need <= room:
                return
            now = time.time()
            evictable = sorted((p for p in found if p.name not in in_use
                                and now - p.mtime >= EVICTABLE_AFTER), key=lambda p: p.mtime)
            if need > room + sum(p.held for p in evictable):
                raise NoSpace(_does_not_fit(need))
            freed = _evict(evictable, need - room, self.locks_dir, key)
            if freed:
                log.info("reclaimed %d bytes of abandoned partial uploads for an upload",
                         freed)
            if need > room + freed:
                raise NoSpace(_does_not_fit(need))

    def room(self, folder: PartialsFolder) -> int:
        """Bytes an upload into ``folder``'s filesystem may take now without reserving (a
        burst of small files takes from this, one statvfs per burst)."""
        with _Locks(self.locks_dir) as locks:
            promised = sum(max(0, (p.announced or 0) - p.held) for p in scan(folder.path)
                           if locks.in_use(p.key))
        return _free(folder) - self.min_free_bytes - promised

    def _space_lock(self, folder: PartialsFolder) -> NameLock:
        lock = NameLock(self.locks_dir, f"space:{folder.dev}")
        if not lock.acquire_within(SPACE_LOCK_WAIT):
            raise Locked("the server is busy checking free space; try again")
        return lock

    # ------------------------------------------------------------ the cap and expiry

    def enforce_cap(self, incoming: int = 0) -> int:
        """Evict the oldest partials not in use until those kept, plus what running uploads
        were promised, plus ``incoming``, fit under the cap; return the bytes freed."""
        if self.cap <= 0:
            return 0
        if incoming > self.cap:
            incoming = 0  # no eviction makes room for it under the cap: evict nothing for it
        with _Locks(self.locks_dir) as locks:
            found = self.folders.scan_all()
            in_use = {p.path for p in found if locks.in_use(p.key)}
        promised = sum(max(p.held, p.announced or 0) for p in found if p.path in in_use)
        kept = sum(p.held for p in found if p.path not in in_use)
        excess = kept + promised + incoming - self.cap
        if excess <= 0:
            return 0
        oldest = sorted((p for p in found if p.path not in in_use and p.held),
                        key=lambda p: p.mtime)
        freed = _evict(oldest, excess, self.locks_dir)
        if freed:
            log.info("evicted %d bytes of the oldest partial uploads (partial_max_bytes=%d)",
                     freed, self.cap)
        return freed

    def remove_stale(self, max_age: float) -> int:
        """Delete the partials nobody has touched for ``max_age`` seconds (and strays a crash
        left in a partials folder); return how many partials went."""
        cutoff = time.time() - max_age
        removed = 0
        for partial in self.folders.scan_all():
            if partial.mtime < cutoff and _take_and_delete(partial, self.locks_dir):
                removed += 1
        for path in self.folders.known_paths():
            _remove_strays(path, cutoff)
        return removed


class _Locks:
    """One open of the names file, to ask whether names are being written."""

    def __init__(self, locks_dir: str) -> None:
        self.fd = open_names(locks_dir)

    def in_use(self, key: str) -> bool:
        return held_elsewhere(self.fd, key_byte(key))

    def __enter__(self) -> _Locks:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _free(folder: PartialsFolder) -> int:
    vfs = os.statvfs(folder.fd)
    return vfs.f_bavail * vfs.f_frsize


def _same_device(path: str, dev: int) -> bool:
    try:
        return os.stat(path).st_dev == dev
    except OSError:
        return False


def _does_not_fit(need: int) -> str:
    return (f"the upload does not fit on the server's disk ({human_size(need)} more needed); "
            "ask the administrator, or try again later")


def _evict(candidates: Iterable[FoundPartial], wanted: int, locks_dir: str,
           held_key: str | None = None) -> int:
    """Delete ``candidates`` in order until ``wanted`` bytes are freed; return bytes freed.
    Partials of ``held_key``, whose lock the caller holds, are deleted without taking it."""
    freed = 0
    for partial in candidates:
        if freed >= wanted:
            break
        if (delete_found(partial) if partial.key == held_key
                else _take_and_delete(partial, locks_dir)):
            freed += partial.held
    return freed


def _take_and_delete(partial: FoundPartial, locks_dir: str) -> bool:
    """Delete a partial if no upload holds its name's lock (taken for the moment)."""
    with NameLock(locks_dir, partial.key) as lock:
        if not lock.try_acquire():
            return False  # an upload in progress owns it
        return delete_found(partial)


def _remove_strays(path: str, cutoff: float) -> None:
    """Sidecars without a partial, and half-written sidecars, older than ``cutoff``."""
    try:
        with os.scandir(path) as entries:
            found = list(entries)
    except OSError:
        return
    names = {entry.name for entry in found}
    for entry in found:
        name = entry.name
        if name.endswith((".part", ".stream")):
            continue
        if name.endswith(".meta") and name.removesuffix(".meta") + ".part" in names:
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
