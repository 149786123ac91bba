"""Remove a folder and everything in it by descriptors, without recursion, with one open folder.

``shutil.rmtree(dir_fd=...)`` is safe against symlink swaps but recursive, and
keeps a descriptor open per level: a tree 2,000 folders deep (one ``mkdir -p``
could make it before depth was bounded) failed with RecursionError, so no client
could ever remove it. Here the walk is a loop: it holds the descriptor of the
folder it is emptying and, for each level above it, only the folder's identity
(device and inode) and the names of its subfolders still to visit. It climbs
back through ``..`` and checks that it arrives in the folder it left: a folder
moved away meanwhile stops the removal (``bad_path``), and nothing outside the
tree it started in is touched. Symlinks inside are removed as links and never
followed; a folder swapped for a symlink while the walk runs is refused.
"""

from __future__ import annotations

import contextlib
import errno
import os
from dataclasses import dataclass, field

from common.protocol.errors import BadPath
from ftserver.store.confine import SWAPPED

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass
class _Level:
    """A folder on the way down: its name in its parent, who it is, what is left in it."""

    name: str
    identity: tuple[int, int]
    subfolders: list[str] = field(default_factory=list)


def remove_tree(parent_fd: int, name: str) -> None:
    """Remove folder ``name`` in ``parent_fd`` and all it holds; OSError or BadPath on failure.

    Whatever was removed before a failure stays removed (as with ``rm -r``)."""
    top_identity = _identity(parent_fd)
    fd = _enter(parent_fd, name)
    levels = [_Level(name, _identity(fd))]
    try:
        levels[-1].subfolders = _clear_files(fd)
        while levels:
            here = levels[-1]
            if here.subfolders:
                sub = here.subfolders.pop()
                child = _enter(fd, sub)
                os.close(fd)
                fd = child
                levels.append(_Level(sub, _identity(fd)))
                levels[-1].subfolders = _clear_files(fd)
                continue
            levels.pop()
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = up
            expected = levels[-1].identity if levels else top_identity
            if _identity(fd) != expected:  # moved while we were inside it
                raise BadPath(SWAPPED)
            os.rmdir(here.name, dir_fd=fd)
    finally:
        os.close(fd)


def _enter(folder_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # no longer the folder it was
            raise BadPath(SWAPPED) from None
        raise


def _clear_files(fd: int) -> list[str]:
    """Unlink everything in the folder but its subfolders; return the subfolders' names."""
    subfolders = []
    with os.scandir(fd) as scan:
        entries = list(scan)
    for entry in entries:
        is_dir = False
        with contextlib.suppress(OSError):
            is_dir = entry.is_dir(follow_symlinks=False)
        if is_dir:
            subfolders.append(entry.name)
            continue
        try:
            os.unlink(entry.name, dir_fd=fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:  # became a folder since the listing
            subfolders.append(entry.name)
    return subfolders


def _identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino
