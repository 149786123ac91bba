"""One lock over the whole share: uploads hold it shared, folder moves and removals exclusive.

A name lock (locks.py) keeps two writers off one file, but an upload into
``a/b/c.txt`` names neither ``a`` nor ``a/b``: moving or removing ``a`` meanwhile
would make the upload publish into a folder that no longer exists (or recreate
it). So every upload holds this lock shared, and a folder move or removal takes
it exclusively, briefly, and answers ``locked`` rather than wait behind an upload
that may take hours. It is a flock on ``state_dir/locks/tree.lock``, so it holds
across worker processes as well as threads.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from common.errors import Locked

SHARED_WAIT = 10.0
"""How long an upload waits for a folder move or removal (which is quick) to finish."""
EXCLUSIVE_WAIT = 2.0
"""How long a folder move or removal waits for uploads to finish before it gives up."""
POLL = 0.05


class TreeLock:
    def __init__(self, locks_dir: str) -> None:
        self.path = os.path.join(locks_dir, "tree.lock")

    @contextmanager
    def shared(self) -> Iterator[None]:
        """Held by every upload from its request to its reply."""
        with self._held(fcntl.LOCK_SH, SHARED_WAIT,
                        "a folder is being moved or removed; try again"):
            yield

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while a folder is moved or removed; refused while uploads run."""
        with self._held(fcntl.LOCK_EX, EXCLUSIVE_WAIT,
                        "uploads are in progress; try again when they have finished"):
            yield

    @contextmanager
    def _held(self, mode: int, wait: float, busy_message: str) -> Iterator[None]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise Locked(busy_message) from None
                    time.sleep(POLL)
            yield
        finally:
            os.close(fd)  # closing the last descriptor releases the flock
