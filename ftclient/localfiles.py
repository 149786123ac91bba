"""The client's side of the disk: download partials and publishing them, confined to a folder.

A download in progress lives beside its destination under a hidden name
(``.NAME.ftpart``), never under the final name. Publishing is fsync, set mtime,
rename over the destination, fsync the folder: the same order the server uses.
Each partial is held under an exclusive flock while it is written (``lock_partial``),
so two downloads to one destination never splice two sources. Below the folder the
user named, every folder is reached by descriptor without following a symlink
(``open_folder``), and the partial is written and renamed relative to its folder's
descriptor, as the server walks its share.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from dataclasses import dataclass

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
    return os.path.join(folder, partial_name_for(name))


def partial_name_for(name: str) -> str:
    return f".{name}{PARTIAL_SUFFIX}"


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


@dataclass(frozen=True)
class LocalSpot:
    """Where a download lands: ``name`` in the folder ``top``/``folders``...

    ``top`` is a folder the user named, taken as it is (a symlink in its own path is
    the user's choice). The folders below it are walked one name at a time by
    descriptor and never through a symlink, so a process that swaps a subfolder for a
    symlink while a ``get -r`` runs cannot send a write outside ``top``.
    """

    top: str
    folders: tuple[str, ...]
    name: str

    @property
    def path(self) -> str:
        return os.path.join(self.top, *self.folders, self.name)

    @property
    def partial_name(self) -> str:
        return partial_name_for(self.name)


def spot_for(destination: str, within: str | None = None) -> LocalSpot:
    """The LocalSpot of ``destination``: below ``within`` if given, else in its own folder."""
    if within is None:
        folder, name = os.path.split(os.path.abspath(destination))
        return LocalSpot(folder, (), name)
    relative = os.path.relpath(destination, within)
    parts = tuple(relative.split(os.sep))
    if os.path.isabs(relative) or any(part in ("", os.curdir, os.pardir) for part in parts):
        raise PermissionDenied(f"{destination!r} would leave the destination folder {within!r}")
    return LocalSpot(within, parts[:-1], parts[-1])


def open_folder(top: str, folders: tuple[str, ...], *, create: bool = False) -> int:
    """A descriptor of ``top``/``folders``..., reached without following a symlink below
    ``top`` (``create``: making the folders that are missing). A symlink or a file in
    the way is PermissionDenied; other failures are OSError, for the caller to word."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for depth, name in enumerate(folders):
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=fd)
            try:
                below = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                where = os.path.join(top, *folders[:depth + 1])
                raise PermissionDenied(f"{where!r} is a symlink or a file, not a folder: "
                                       "not followed out of the destination") from None
            os.close(fd)
            fd = below
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat_spot(spot: LocalSpot) -> os.stat_result:
    """``lstat`` of the spot's file, reached as ``open_folder`` reaches its folder."""
    folder = open_folder(spot.top, spot.folders)
    try:
        return os.stat(spot.name, dir_fd=folder, follow_symlinks=False)
    finally:
        os.close(folder)


class HeldPartial:
    """A download's partial, open and locked, in its destination's folder (both held by
    descriptor until ``close``): written through ``fd``, then published or discarded."""

    def __init__(self, folder: int, fd: int, spot: LocalSpot) -> None:
        self.folder = folder
        self.fd = fd
        self.spot = spot

    def publish(self, mtime: float) -> None:
        """fsync, set mtime, rename over the destination, fsync the folder."""
        os.fsync(self.fd)
        os.utime(self.fd, (time.time(), mtime))
        os.replace(self.spot.partial_name, self.spot.name,
                   src_dir_fd=self.folder, dst_dir_fd=self.folder)
        os.fsync(self.folder)

    def discard(self) -> None:
        os.unlink(self.spot.partial_name, dir_fd=self.folder)

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.folder)


def lock_partial(spot: LocalSpot) -> HeldPartial:
    """Open the partial download of ``spot`` and hold an exclusive lock on it (until closed).

    Two downloads to one destination would otherwise share the partial and could
    splice two sources; the second is refused with Locked. O_NOFOLLOW: a symlink
    planted under the partial's name must not redirect the write, and the folder is
    reached by ``open_folder``. The lock is taken on the open file, so a partial that
    the holder renamed into place (or removed) meanwhile is no longer the one named:
    then open again. Local disk failures are raised as OSError, for the caller to word.
    """
    folder = open_folder(spot.top, spot.folders)
    try:
        for _ in range(LOCK_ATTEMPTS):
            fd = os.open(spot.partial_name,
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644,
                         dir_fd=folder)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = os.fstat(fd)
                try:
                    named = os.stat(spot.partial_name, dir_fd=folder, follow_symlinks=False)
                except FileNotFoundError:
                    named = None
            except BlockingIOError:
                os.close(fd)
                raise Locked(f"another download to {spot.path!r} is in progress") from None
            except BaseException:
                os.close(fd)
                raise
            if named is not None and (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino):
                return HeldPartial(folder, fd, spot)
            os.close(fd)
        raise Locked(f"another download to {spot.path!r} is in progress")
    except BaseException:
        os.close(folder)
        raise


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
