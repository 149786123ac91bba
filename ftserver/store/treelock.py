"""Folder locks: an upload holds every folder above its file shared, a folder move or
removal holds that one folder exclusively.

A name lock (locks.py) keeps two writers off one file, but an upload into
``a/b/c.txt`` names neither ``a`` nor ``a/b``: moving or removing ``a`` meanwhile
would make the upload publish into a folder that no longer exists (or recreate
it). So an upload (and a mkdir, and a move into a folder) holds a shared lock on
each folder from the top of the share down to the one it writes into (``a``,
then ``a/b``), from before it makes any folder until its reply, and a folder move
or removal takes that folder's lock exclusively (and those above it shared),
briefly, answering ``locked`` rather than wait behind an upload that may take
hours. Only work beneath the folder holds it off: an upload elsewhere in the
share does not stop a colleague from tidying another folder.

Folders are named by their real path (symlinks inside the share resolved), so
an upload through a link locks the folder it really writes into, and the top is
the whole share's root, so users confined to their home folders hold off a
removal of a folder above their homes too. A folder's lock is a byte of
``state_dir/locks/names.lock`` (locks.py), read-locked when shared, under an open
file description lock, so it holds across worker processes as well as threads.
One holder (an upload, a burst of them, a move) takes all its folders' bytes
through one open of that file (FolderLocks) and lets go of them all by closing
it: however deep the path, a holder costs one descriptor. Takers poll with a
deadline and nobody waits while holding an exclusive lock, so there is no
deadlock.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from common.protocol.errors import Locked
from common.protocol.names import is_within
from ftserver.store.locks import key_byte, open_names, try_lock_byte

SHARED_WAIT = 10.0
"""How long an upload waits for a folder move or removal (which is quick) to finish
(``limits.folder_wait``)."""
EXCLUSIVE_WAIT = 2.0
"""How long a folder move or removal waits for uploads beneath it to finish before it
gives up (``limits.folder_busy_wait``)."""
POLL = 0.05
MOVING = "a folder is being moved or removed; try again"
BUSY = "uploads into that folder are in progress; try again when they have finished"


class TreeLock:
    """The folder locks of one share, whose real root is ``top``."""

    def __init__(self, locks_dir: str, top: str, shared_wait: float = SHARED_WAIT,
                 exclusive_wait: float = EXCLUSIVE_WAIT) -> None:
        self.locks_dir = locks_dir
        self.top = top
        self.shared_wait = shared_wait
        self.exclusive_wait = exclusive_wait

    def holder(self) -> FolderLocks:
        """A new holder of folder locks (one open of the locks file); close it to let go."""
        return FolderLocks(self.locks_dir, self.top, self.shared_wait, self.exclusive_wait)

    @contextmanager
    def shared(self, folder: str) -> Iterator[None]:
        """Held by an upload or mkdir into ``folder`` (a real path): each folder from the
        top down to it, shared."""
        with self.holder() as held:
            held.share(folder)
            yield

    @contextmanager
    def exclusive(self, folder: str) -> Iterator[None]:
        """Held while ``folder`` (a real path) is moved or removed: the folders above it
        shared (so a folder around it cannot go meanwhile), itself exclusively (refused
        while uploads beneath it run)."""
        with self.holder() as held:
            held.share(os.path.dirname(folder))
            held.exclude(folder)
            yield


class FolderLocks:
    """Folder locks taken through one open of the locks file, all let go by ``close``.

    A byte locked again through the same open keeps its lock, so chains that share
    folders (``a/b`` and ``a/c``) cost nothing twice; bytes are never unlocked one by
    one, since a folder locked for one chain may still be needed by another.
    """

    def __init__(self, locks_dir: str, top: str, shared_wait: float = SHARED_WAIT,
                 exclusive_wait: float = EXCLUSIVE_WAIT) -> None:
        self.top = top
        self.shared_wait = shared_wait
        self.exclusive_wait = exclusive_wait
        self._fd: int | None = open_names(locks_dir)
        self._shared: set[str] = set()

    def holds(self, folder: str) -> bool:
        """True if the folders from the top down to ``folder`` are held shared here."""
        # A chain is always held whole, so its last folder stands for it (a set look-up
        # per file on a burst's hot path); the top and places outside it need none.
        return folder in self._shared or not folders_down_to(self.top, folder)

    def share(self, folder: str) -> None:
        """Hold each folder from the top down to ``folder`` shared (waiting up to
        ``shared_wait`` for a move or removal of one of them); Locked if one stays taken."""
        for each in folders_down_to(self.top, folder):
            if each not in self._shared:
                self._take(each, True, self.shared_wait, MOVING)
                self._shared.add(each)

    def exclude(self, folder: str) -> None:
        """Hold ``folder`` exclusively (waiting up to ``exclusive_wait`` for the uploads
        beneath it); Locked if they still run."""
        self._take(folder, False, self.exclusive_wait, BUSY)

    def _take(self, folder: str, shared: bool, wait: float, busy_message: str) -> None:
        if self._fd is None:
            raise ValueError("these folder locks were let go")
        byte = key_byte(folder_key(folder))
        deadline = time.monotonic() + wait
        while not try_lock_byte(self._fd, byte, shared=shared):
            if time.monotonic() >= deadline:
                raise Locked(busy_message)
            time.sleep(POLL)

    def close(self) -> None:
        """Let go of every folder lock held here."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
            self._shared = set()

    def __enter__(self) -> FolderLocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def folder_key(real: str) -> str:
    """The lock key of a folder (hashed to its byte by locks.key_byte): apart from the
    name lock of the same path (storage.lock_key, a hex digest), which a mkdir of the
    folder takes while uploads into it take its folder lock."""
    return "dir:" + real


def folders_down_to(top: str, folder: str) -> list[str]:
    """The real paths of the folders from just below ``top`` down to ``folder``; none for
    ``top`` itself (never moved or removed) or a folder outside it."""
    if folder == top or not is_within(top, folder):
        return []
    parts = os.path.relpath(folder, top).split(os.sep)
    return [os.path.join(top, *parts[:depth]) for depth in range(1, len(parts) + 1)]
