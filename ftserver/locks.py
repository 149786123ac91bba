"""Exclusive per-name locks that hold across threads and processes (flock on a lock file).

flock locks belong to an open file description, so two threads that each open
the lock file exclude each other just as two processes do. Lock files live in
``state_dir/locks``. The holder deletes its lock file as it lets go, so the folder
holds only the locks in use, however many names a long-running server has seen.
That is safe because nobody waits on a lock file: a taker that opened the file
just before it went gets the lock on an orphaned inode, sees that it has no name
left (its link count is 0), and starts again on a fresh file (``try_acquire``).
A lock file only ever has the one name, its path, and only its holder deletes
it, so "still has a name" means "the path names it" and stays so while we hold it.
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
            if os.fstat(fd).st_nlink:  # not deleted by a holder since our open
                self._fd = fd
                return True
            # The file was removed (by its holder's release) between our open and flock:
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
        """Delete the lock file if nobody holds it (release deletes it)."""
        if not self.try_acquire():
            return False
        self.release()
        return True

    def release(self) -> None:
        """Delete the lock file, then let go: the file at our path is ours while we hold it."""
        if self._fd is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass  # someone emptied the folder by hand: nothing left to delete
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> NameLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

