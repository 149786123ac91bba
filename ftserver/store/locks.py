"""Per-name locks that hold across threads and processes (one byte of one file each).

A NameLock is exclusive: a writer of a name. treelock.py locks folders' bytes
the same way (``try_lock_byte``), shared by uploads beneath them.

Every name is one byte of ``state_dir/locks/names.lock``, locked with an open file
description lock (``F_OFD_SETLK``). Such a lock belongs to an open file description,
as a flock does: two threads that each open the file exclude each other just as
two processes do, and a process that dies lets go of its locks. The byte is a
62-bit hash of the key, so the folder holds this one file however many names a
long-running server has seen, and taking a lock creates, checks and deletes no
file: open and lock; unlock and close. Two keys land on one byte with odds of
2**-62 per pair; the worst that could do is answer "locked" when nothing is.

``remove_unused_lock_files`` clears, at start-up, the per-name lock files that
earlier versions kept (and any other lock file nobody holds).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import struct
import time

NAMES_FILE = "names.lock"
_FLOCK = struct.Struct("@hhqqi4x")
"""Linux's struct flock on 64-bit systems: type, whence, start, length, pid (0 for OFD)."""


class NameLock:
    """A non-blocking exclusive lock named by a key (a hex digest of the target path)."""

    def __init__(self, locks_dir: str, key: str) -> None:
        self.path = os.path.join(locks_dir, NAMES_FILE)
        self._byte = key_byte(key)
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = open_names(os.path.dirname(self.path))
        try:
            taken = try_lock_byte(fd, self._byte)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def acquire_within(self, seconds: float) -> bool:
        """Try for up to ``seconds``: a holder whose client was cut a moment ago may still be
        closing its session, and the client's immediate retry should not be told "locked"."""
        deadline = time.monotonic() + seconds
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def release(self) -> None:
        """Let go: unlock first, so that a copy of the descriptor (a fork) holds nothing."""
        if self._fd is not None:
            try:
                _set_byte(self._fd, fcntl.F_UNLCK, self._byte)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> NameLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class KeptNamesOpen:
    """One open of the names file that a thread keeps for name locks it takes one after
    another (a burst of uploads): no open and close per lock, and no object per lock.
    Locks taken through one open do not exclude each other (taking a name again
    through it just succeeds), so its keeper must not run two writers at once
    through it. Closing it lets go of every lock it holds, in one call."""

    def __init__(self, locks_dir: str) -> None:
        self.fd = open_names(locks_dir)

    def try_lock(self, key: str) -> bool:
        """Lock ``key`` exclusively; False if another open of the file holds it."""
        return try_lock_byte(self.fd, key_byte(key))

    def close(self) -> None:
        os.close(self.fd)


def key_byte(key: str) -> int:
    """The byte of the names file that stands for ``key`` (62 bits of its hash)."""
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 2


def try_lock_byte(fd: int, byte: int, *, shared: bool = False) -> bool:
    """Lock one byte through the open ``fd`` without waiting: read-locked if ``shared``,
    else write-locked. False if another open of the file holds it in a mode that
    conflicts. Locking a byte again through the same open just sets its mode; closing
    the open lets go of every byte it holds."""
    try:
        _set_byte(fd, fcntl.F_RDLCK if shared else fcntl.F_WRLCK, byte)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False  # held by another open of the file: another holder
        raise
    return True


def held_elsewhere(fd: int, byte: int, *, against_shared: bool = False) -> bool:
    """True if another open of the file holds ``byte`` in a way that would stop this open
    from write-locking it (or, with ``against_shared``, from read-locking it): someone is
    using that name now. Takes nothing."""
    kind = fcntl.F_RDLCK if against_shared else fcntl.F_WRLCK
    answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _FLOCK.pack(kind, os.SEEK_SET, byte, 1, 0))
    return _FLOCK.unpack(answer)[0] != fcntl.F_UNLCK


def _set_byte(fd: int, kind: int, byte: int) -> None:
    fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, byte, 1, 0))


def open_names(locks_dir: str) -> int:
    """A new open of the names file (its own open file description); the caller closes it."""
    return os.open(os.path.join(locks_dir, NAMES_FILE),
                   os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)


def remove_unused_lock_files(locks_dir: str) -> None:
    """Delete the lock files nobody holds, except the names file (at start-up, before any
    session runs: per-name files left by earlier versions, a tree lock file)."""
    with os.scandir(locks_dir) as scan:
        paths = [entry.path for entry in scan
                 if entry.name.endswith(".lock") and entry.name != NAMES_FILE]
    for path in paths:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.unlink(path)
            finally:
                os.close(fd)
