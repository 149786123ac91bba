"""Exclusive per-name locks that hold across threads and processes (flock on a lock file).

flock locks belong to an open file description, so two threads that each open
the lock file exclude each other just as two processes do. Lock files live in
``state_dir/locks`` and are never deleted while the server runs (deleting a lock
file someone waits on would let two holders in).
"""

from __future__ import annotations

import fcntl
import os
import time


class NameLock:
    """A non-blocking exclusive lock named by a key (a hex digest of the target path)."""

    def __init__(self, locks_dir: str, key: str) -> None:
        self.path = os.path.join(locks_dir, key + ".lock")
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if _same_inode(fd, self.path):
                self._fd = fd
                return True
            # The file was removed (by remove_unlocked) between our open and flock:
            # a lock on the old inode excludes nobody, so take the new file's.
            os.close(fd)
        return False

    def acquire_within(self, seconds: float) -> bool:
        """Try for up to ``seconds``: a holder whose client was cut a moment ago may still be
        closing its session, and the client's immediate retry should not be told "locked"."""
        deadline = time.monotonic() + seconds
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def remove_if_free(self) -> bool:
        """Delete the lock file if nobody holds it; safe because try_acquire re-checks."""
        if not self.try_acquire():
            return False
        try:
            os.unlink(self.path)
        finally:
            self.release()
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> NameLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_inode(fd: int, path: str) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (on_disk.st_dev, on_disk.st_ino)
