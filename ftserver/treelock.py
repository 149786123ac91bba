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
removal of a folder above their homes too. The locks are NameLocks (a byte of
``state_dir/locks/names.lock`` each, read-locked when shared, under an open file
description lock), so they hold across worker processes as well as threads.
Takers poll with a deadline and nobody waits while holding an exclusive lock,
so there is no deadlock.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from common.errors import Locked
from common.paths import is_within
from ftserver.locks import NameLock

SHARED_WAIT = 10.0
"""How long an upload waits for a folder move or removal (which is quick) to finish."""
EXCLUSIVE_WAIT = 2.0
"""How long a folder move or removal waits for uploads beneath it to finish before it
gives up."""
POLL = 0.05


class TreeLock:
    """The folder locks of one share, whose real root is ``top``."""

    def __init__(self, locks_dir: str, top: str) -> None:
        self.locks_dir = locks_dir
        self.top = top

    @contextmanager
    def shared(self, folder: str) -> Iterator[None]:
        """Held by an upload or mkdir into ``folder`` (a real path): each folder from the
        top down to it, shared, from the top down."""
        with ExitStack() as held:
            for each in folders_down_to(self.top, folder):
                held.enter_context(self._held(each, True, SHARED_WAIT,
                                              "a folder is being moved or removed; try again"))
            yield

    @contextmanager
    def exclusive(self, folder: str) -> Iterator[None]:
        """Held while ``folder`` (a real path) is moved or removed: the folders above it
        shared (so a folder around it cannot go meanwhile), itself exclusively (refused
        while uploads beneath it run)."""
        with (self.shared(os.path.dirname(folder)),
              self._held(folder, False, EXCLUSIVE_WAIT,
                         "uploads into that folder are in progress; try again when they "
                         "have finished")):
            yield

    @contextmanager
    def _held(self, folder: str, shared: bool, wait: float, busy_message: str
              ) -> Iterator[None]:
        with NameLock(self.locks_dir, folder_key(folder), shared=shared) as lock:
            deadline = time.monotonic() + wait
            while not lock.try_acquire():
                if time.monotonic() >= deadline:
                    raise Locked(busy_message)
                time.sleep(POLL)
            yield


def folder_key(real: str) -> str:
    """The lock key of a folder: apart from the name lock of the same path
    (storage.lock_key), which a mkdir of the folder takes while uploads into it take
    its folder lock."""
    return "dir-" + hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()


def folders_down_to(top: str, folder: str) -> list[str]:
    """The real paths of the folders from just below ``top`` down to ``folder``; none for
    ``top`` itself (never moved or removed) or a folder outside it."""
    if folder == top or not is_within(top, folder):
        return []
    parts = os.path.relpath(folder, top).split(os.sep)
    return [os.path.join(top, *parts[:depth]) for depth in range(1, len(parts) + 1)]
