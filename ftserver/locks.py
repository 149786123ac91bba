"""Per-name locks that hold across threads and processes (flock on a lock file).

A lock is exclusive (a writer of a name) or shared (an upload beneath a folder,
see treelock.py). flock locks belong to an open file description, so two threads
that each open the lock file exclude each other just as two processes do. Lock
files live in ``state_dir/locks``. The last holder deletes its lock file as it
lets go, so the folder holds only the locks in use, however many names a
long-running server has seen: an exclusive holder simply deletes it; a shared one
deletes it only if it can turn its lock exclusive at once (nobody else holds
it). That is safe because nobody waits on a lock file: a taker that opened the
file just before it went gets the lock on an orphaned inode, sees that the path
no longer names it, and starts again on a fresh file (``try_acquire``). While
anyone holds a lock, its path names the locked inode (only an exclusive holder
deletes it).
"""

from __future__ import annotations

import fcntl
import os
import time


class NameLock:
    """A non-blocking lock named by a key (a hex digest of the target path); exclusive
    unless ``shared``."""

    def __init__(self, locks_dir: str, key: str, *, shared: bool = False) -> None:
        self.path = os.path.join(locks_dir, key + ".lock")
        self.shared = shared
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        mode = fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX
        for _ in range(5):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            if _same_inode(fd, self.path):
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
        """Delete the lock file if no one else holds it, then let go: the file at our path
        is ours while we hold it exclusively."""
        if self._fd is not None:
            try:
                if self._alone():
                    os.unlink(self.path)
            except FileNotFoundError:
                pass  # someone emptied the folder by hand: nothing left to delete
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def _alone(self) -> bool:
        """True if we hold the lock exclusively now, on the file our path names.

        A shared holder tries to convert. flock converts by letting go first, so
        whether or not that works, someone else may have held the lock exclusively
        in between, deleted the file and made a new one: then ours is orphaned and
        the file at our path is someone else's.
        """
        if not self.shared:
            return True
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return _same_inode(self._fd, self.path)

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
