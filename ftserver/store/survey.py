"""Server side of walk: surveying a folder's whole subtree.

A walk lists a folder's whole subtree, parents first, names sorted. Symlinks are
followed only to files inside the share; linked folders are not descended into
(no loops), special files and reserved names are left out. Each folder is entered
from the top by descriptors, never through a symlink, so one swapped in meanwhile
is not entered.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator

from common.protocol.errors import (
    BadPath,
    NotADirectory,
    ProtocolError,
)
from common.protocol.names import check_component, join_path
from common.protocol.replies import WalkEntry
from common.protocol.requests import Walk
from ftserver.store.confine import reopen
from ftserver.store.core import LocalCore

MAX_WALK_ENTRIES = 200_000
"""A walk stops with an error beyond this many entries (the client holds them all)."""


_FOLDER_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def walk(storage: LocalCore, request: Walk) -> Iterator[WalkEntry]:
    """Every file and folder below ``request.path``, parents first, names sorted.

    Symlinks are followed only to files inside the share; linked folders are not
    descended into (no loops), special files and reserved names are left out.
    Each folder is entered from the top by descriptors, never through a symlink,
    so one swapped in meanwhile is not entered (it lists as nothing).
    """
    top = storage.names.resolve(request.path, allow_root=True)
    top_fd = storage.names.open_existing(top)
    try:
        if not stat.S_ISDIR(os.fstat(top_fd).st_mode):
            raise NotADirectory(f"{request.path!r} is not a folder")
        yield from _walk_below(storage, top_fd, top.real, request.path)
    finally:
        os.close(top_fd)


def _walk_below(storage: LocalCore, top_fd: int, top_real: str, name: str
                ) -> Iterator[WalkEntry]:
    count = 0
    pending: list[tuple[str, ...]] = [()]
    while pending:
        relative = pending.pop()
        subfolders = []
        for entry_name, st, real, is_link in _folder_entries(storage, top_fd, top_real,
                                                              relative):
            path = relative + (entry_name,)
            info = storage.entry(entry_name, real, st)
            if info is None:
                continue
            count += 1
            if count > MAX_WALK_ENTRIES:
                raise ProtocolError(f"{name or '/'!r} holds more than {MAX_WALK_ENTRIES} "
                                    "entries; fetch its subfolders one by one")
            yield WalkEntry(join_path(path), info.type, info.size, info.mtime, info.sha256)
            if info.type == "dir" and not is_link:
                subfolders.append(path)
        pending.extend(reversed(subfolders))


def _open_folder_below(top_fd: int, relative: tuple[str, ...]) -> int:
    """A readable descriptor of the folder ``relative`` to ``top_fd``, entered without
    following any symlink (one swapped in meanwhile raises OSError)."""
    fd = os.open(".", _FOLDER_FLAGS, dir_fd=top_fd)
    try:
        for part in relative:
            child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
        return reopen(fd, os.O_RDONLY | os.O_DIRECTORY)
    finally:
        os.close(fd)


def _folder_entries(storage: LocalCore, top_fd: int, top_real: str, relative: tuple[str, ...]
                    ) -> list[tuple[str, os.stat_result, str, bool]]:
    """(name, stat, real path, is a symlink) of what one folder shows, sorted by name."""
    try:
        folder_fd = _open_folder_below(top_fd, relative)
    except OSError:
        return []  # removed, swapped for a symlink or unreadable meanwhile: nothing there
    try:
        names = sorted(os.listdir(folder_fd))
    except OSError:
        os.close(folder_fd)
        return []
    folder_real = os.path.join(top_real, *relative)
    found = []
    try:
        for name in names:
            try:
                check_component(name)
                st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            except (BadPath, OSError):
                continue
            real = os.path.join(folder_real, name)
            is_link = stat.S_ISLNK(st.st_mode)
            if is_link:
                target = storage.names.link_target(real)
                if target is None:
                    continue
                real, st = target
            found.append((name, st, real, is_link))
    finally:
        os.close(folder_fd)
    return found
