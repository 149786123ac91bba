"""The ft error a client sees for a failure of the server's disk (never an absolute path)."""

from __future__ import annotations

import errno

from common.protocol.errors import (
    FtError,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
    StorageError,
)


def storage_error(exc: OSError, what: str) -> FtError:
    """Map an OSError to the ft error a client should see (no absolute paths in it)."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(f"the server's disk is full ({what})")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionDenied(f"permission denied ({what})")
    if exc.errno == errno.ENOENT:
        return NotFound(f"{what}: not found")
    if exc.errno == errno.ENOTDIR:
        return NotADirectory(f"{what}: a parent is not a folder")
    if exc.errno == errno.EISDIR:
        return IsADirectory(f"{what} is a folder")
    return StorageError(f"I/O error on the server ({what}): {exc.strerror or 'unknown'}")
