"""Open paths inside the share without following any symlink that appears after resolution.

``Names.resolve`` (names.py) turns a name into its real path (symlinks inside the share
followed, escapes refused), but a check by path and a later open by path are two
steps: a folder swapped for a symlink in between would lead the open outside.
So every open of something in the share walks the real path one component at
a time from the root, with O_NOFOLLOW at each step: a component that has become
a symlink since is refused as ``BadPath``, naming that component. Whether it is
a link is judged from the component itself (lstat), never from what it points
at, so the answer is the same whether the link's target exists or not and tells
nothing about paths outside the share. The final file is opened O_PATH, so
merely looking at a FIFO or a device never opens it; a caller that wants its
content reopens the checked inode through /proc/self/fd.

Folders are created at most MAX_FOLDER_DEPTH levels deep: deeper trees cost a
walk or a removal far more than they are worth (issue 18).
"""

from __future__ import annotations

import errno
import os
import stat

from common.io.durable import fsync_dir
from common.protocol.errors import BadPath
from common.protocol.names import MAX_FOLDER_DEPTH

SWAPPED = "the path changed while it was being opened (a symlink leaving the share?)"
SWAPPED_TO_LINK = ("is a symlink now, swapped in while the path was being opened; "
                   "it is not followed")
_PATH_FLAGS = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC


def _components(root_real: str, real: str) -> list[str]:
    relative = os.path.relpath(real, root_real)
    if relative == ".":
        return []
    parts = relative.split(os.sep)
    if parts[0] == "..":
        raise BadPath("path leaves the shared folder")
    return parts


def _swapped_for_link(parts: list[str], index: int) -> BadPath:
    """The error for ``parts[index]`` found to be a symlink where the check saw none.

    It names the component by its path inside the share (never an absolute path),
    and says nothing of where the link leads.
    """
    return BadPath(f"{'/'.join(parts[:index + 1])!r} {SWAPPED_TO_LINK}")


def _enter(fd: int, parts: list[str], index: int, flags: int) -> int:
    """Open ``parts[index]`` in the folder ``fd`` with ``flags`` (O_NOFOLLOW among them).

    A symlink met on the way is BadPath. Opened with O_DIRECTORY the kernel reports
    one as ENOTDIR, as it would a file, so that case is told apart by an lstat
    of the component itself (ELOOP only ever means a symlink).
    """
    try:
        return os.open(parts[index], flags, dir_fd=fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (
                exc.errno == errno.ENOTDIR and _is_link(fd, parts[index])):
            raise _swapped_for_link(parts, index) from None
        raise


def _is_link(folder_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=folder_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def open_path_beneath(root_real: str, real: str) -> int:
    """An O_PATH descriptor of ``real``, reached from the root without following symlinks.

    BadPath if any component is a symlink now; FileNotFoundError or
    NotADirectoryError (the caller words them) if one is missing or a file.
    """
    parts = _components(root_real, real)
    fd = os.open(root_real, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index in range(len(parts)):
            last = index == len(parts) - 1
            flags = _PATH_FLAGS if last else _PATH_FLAGS | os.O_DIRECTORY
            child = _enter(fd, parts, index, flags)
            os.close(fd)
            fd = child
        if parts and stat.S_ISLNK(os.fstat(fd).st_mode):
            raise _swapped_for_link(parts, len(parts) - 1)
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
        for index, part in enumerate(parts):
            if index >= MAX_FOLDER_DEPTH and not _exists(fd, part):
                raise BadPath(f"folders may be created at most {MAX_FOLDER_DEPTH} levels deep; "
                              f"this one would be {len(parts)}")
            try:
                os.mkdir(part, 0o777, dir_fd=fd)
                fsync_dir(fd_path(fd))
            except FileExistsError:
                pass
            child = _enter(fd, parts, index, _PATH_FLAGS | os.O_DIRECTORY)
            os.close(fd)
            fd = child
    finally:
        os.close(fd)


def _exists(folder_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True
