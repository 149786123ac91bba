"""Open paths inside the share without following any symlink that appears after resolution.

``Storage.resolve`` turns a name into its real path (symlinks inside the share
followed, escapes refused), but a check by path and a later open by path are two
steps: a folder swapped for a symlink in between would lead the open outside.
So every open of something in the share walks the real path one component at
a time from the root, with O_NOFOLLOW at each step: a component that has become
a symlink since (ELOOP) is refused as ``BadPath``. The final file is opened
O_PATH, so merely looking at a FIFO or a device never opens it; a caller that
wants its content reopens the checked inode through /proc/self/fd.
"""

from __future__ import annotations

import errno
import os
import stat

from common.durable import fsync_dir
from common.errors import BadPath

SWAPPED = "the path changed while it was being opened (a symlink leaving the share?)"
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _components(root_real: str, real: str) -> list[str]:
    relative = os.path.relpath(real, root_real)
    if relative == ".":
        return []
    parts = relative.split(os.sep)
    if parts[0] == "..":
        raise BadPath("path leaves the shared folder")
    return parts


def open_path_beneath(root_real: str, real: str) -> int:
    """An O_PATH descriptor of ``real``, reached from the root without following symlinks."""
    parts = _components(root_real, real)
    fd = os.open(root_real, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            flags = _PATH_FLAGS if last else _PATH_FLAGS | os.O_DIRECTORY
            child = os.open(part, flags, dir_fd=fd)
            os.close(fd)
            fd = child
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise BadPath(SWAPPED)
    except OSError as exc:
        os.close(fd)
        if exc.errno == errno.ELOOP:
            raise BadPath(SWAPPED) from None
        raise
    except BaseException:
        os.close(fd)
        raise
    return fd


def reopen(path_fd: int, flags: int) -> int:
    """Open the very inode ``path_fd`` refers to (not whatever its name holds now)."""
    return os.open(f"/proc/self/fd/{path_fd}", flags | os.O_CLOEXEC)


def fd_path(fd: int) -> str:
    """A path that names the folder open as ``fd`` for as long as ``fd`` stays open."""
    return f"/proc/self/fd/{fd}"


def make_dirs_beneath(root_real: str, real: str) -> None:
    """Create the folder ``real`` and its missing parents under the root, durably.

    Each step is created with mkdirat and entered with O_NOFOLLOW, so a symlink
    swapped in on the way is never followed (BadPath), and nothing is created
    outside the root.
    """
    parts = _components(root_real, real)
    fd = os.open(root_real, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for part in parts:
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
                fsync_dir(fd_path(fd))
            except FileExistsError:
                pass
            try:
                child = os.open(part, _PATH_FLAGS | os.O_DIRECTORY, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise BadPath(SWAPPED) from None
                raise
            os.close(fd)
            fd = child
    finally:
        os.close(fd)
