"""The client's side of the disk: download partials and publishing them, confined to a folder.

A download in progress lives beside its destination under a hidden name
(``.NAME.ftpart``), never under the final name. Publishing is fsync, set mtime,
rename over the destination, fsync the folder: the same order the server uses.
Each partial is held under an exclusive flock while it is written (``lock_partial``),
so two downloads to one destination never splice two sources.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time

from common.io.durable import fsync_dir
from common.protocol.errors import (
    FtError,
    Locked,
    NoSpace,
    NotFound,
    PermissionDenied,
    StorageError,
)
from ftclient.names import remote_basename

PARTIAL_SUFFIX = ".ftpart"
LOCK_ATTEMPTS = 5
"""Opens of a partial that another download renamed away between our open and lock."""


def partial_path_for(destination: str) -> str:
    folder, name = os.path.split(destination)
    return os.path.join(folder, f".{name}{PARTIAL_SUFFIX}")


def choose_destination(remote: str, local: str | None) -> str:
    """Where ``get`` writes: LOCAL, or LOCAL/basename when LOCAL is a folder, or ./basename."""
    name = remote_basename(remote)
    if local is None:
        return os.path.abspath(name)
    if os.path.isdir(local):
        return os.path.abspath(os.path.join(local, name))
    if local.endswith(os.sep):
        raise NotFound(f"local folder {local!r} does not exist")
    return os.path.abspath(local)


def publish(partial: str, fd: int, destination: str, mtime: float) -> None:
    os.fsync(fd)
    os.utime(fd, (time.time(), mtime))
    os.replace(partial, destination)
    fsync_dir(os.path.dirname(destination) or ".")


def lock_partial(partial: str, destination: str) -> int:
    """Open the partial download and hold an exclusive lock on it (until the fd is closed).

    Two downloads to one destination would otherwise share the partial and could
    splice two sources; the second is refused with Locked. O_NOFOLLOW: a symlink
    planted under the partial's name must not redirect the write. The lock is taken
    on the open file, so a partial that the holder renamed into place (or removed)
    meanwhile is no longer the one at ``partial``: then open again. Local disk
    failures are raised as OSError, for the caller to word.
    """
    for _ in range(LOCK_ATTEMPTS):
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = os.fstat(fd)
            try:
                named = os.stat(partial, follow_symlinks=False)
            except FileNotFoundError:
                named = None
        except BlockingIOError:
            os.close(fd)
            raise Locked(f"another download to {destination!r} is in progress") from None
        except BaseException:
            os.close(fd)
            raise
        if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
            return fd
        os.close(fd)
    raise Locked(f"another download to {destination!r} is in progress")


_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def local_error(exc: OSError, what: str, note: str = "") -> FtError:
    """The FtError for a failure of the local disk: ``what`` failed, because of ``exc``."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_SPACE_ERRNOS:
        return NoSpace(f"{what}: no space left on the local disk{note}")
    if exc.errno in _PERMISSION_ERRNOS:
        return PermissionDenied(f"{what}: {reason}{note}")
    return StorageError(f"{what}: {reason}{note}")
