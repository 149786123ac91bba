"""Server side of walk: surveying a folder's whole subtree.

A walk lists a folder's whole subtree, parents first, names sorted. Symlinks are
followed only to files inside the share; linked folders are not descended into
(no loops), special files and reserved names are left out. Each folder is entered
from its parent's descriptor, never through a symlink, so one swapped in meanwhile
is not entered, and a walk costs one open per folder however deep the tree.
"""

from __future__ import annotations

import itertools
import os
import stat
import threading
from collections.abc import Iterator

from common.protocol.errors import (
    BadPath,
    NotADirectory,
    ProtocolError,
)
from common.protocol.names import check_component, join_path
from common.protocol.replies import WalkEntry
from common.protocol.requests import Walk
from ftserver.store.core import LocalCore

MAX_WALK_ENTRIES = 200_000
"""A walk stops with an error beyond this many entries (the client holds them all)."""


_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def walk(storage: LocalCore, request: Walk) -> Iterator[WalkEntry]:
    """Every file and folder below ``request.path``, parents first, names sorted.

    Symlinks are followed only to files inside the share; linked folders are not
    descended into (no loops), special files and reserved names are left out.
    Each folder is entered from its parent by descriptor, never through a symlink,
    so one swapped in meanwhile is not entered (it lists as nothing).
    """
    top = storage.names.resolve(request.path, allow_root=True)
    top_fd = storage.names.open_existing(top)
    try:
        if not stat.S_ISDIR(os.fstat(top_fd).st_mode):
            raise NotADirectory(f"{request.path!r} is not a folder")
        yield from read_in_turns(_walk_below(storage, top_fd, top.real, request.path))
    finally:
        os.close(top_fd)


WALKS_AT_ONCE = 2
"""Walks of one process that may be reading the disk at the same moment (2 cores' worth)."""
TURN_ENTRIES = 256
"""Entries one walk reads in a turn, before it lets the next waiting walk have a go."""
_turns = threading.BoundedSemaphore(WALKS_AT_ONCE)


def read_in_turns(entries: Iterator[WalkEntry]) -> Iterator[WalkEntry]:
    """``entries``, read TURN_ENTRIES at a time while holding one of WALKS_AT_ONCE turns
    (never while they are sent): 32 connections walking a 20k-entry tree at once take
    two cores' worth of the server, not all of it, so other clients are still served."""
    while True:
        with _turns:
            batch = list(itertools.islice(entries, TURN_ENTRIES))
        if not batch:
            return
        yield from batch


def _walk_below(storage: LocalCore, top_fd: int, top_real: str, name: str
                ) -> Iterator[WalkEntry]:
    count = 0
    chain = _FolderChain(top_fd)
    try:
        # One list of subfolders still to enter per folder on the chain, deepest last.
        to_enter: list[list[str]] = []
        while True:
            subfolders = []
            for entry_name, st, real, is_link in _folder_entries(storage, chain, top_real):
                path = chain.relative + (entry_name,)
                info = storage.entry(entry_name, real, st)
                if info is None:
                    continue
                count += 1
                if count > MAX_WALK_ENTRIES:
                    raise ProtocolError(f"{name or '/'!r} holds more than {MAX_WALK_ENTRIES} "
                                        "entries; fetch its subfolders one by one")
                yield WalkEntry(join_path(path), info.type, info.size, info.mtime,
                                info.sha256)
                if info.type == "dir" and not is_link:
                    subfolders.append(entry_name)
            to_enter.append(subfolders[::-1])
            while to_enter and not _enter_next(chain, to_enter[-1]):
                to_enter.pop()
                if to_enter:
                    chain.leave()
            if not to_enter:
                return
    finally:
        chain.close()


def _enter_next(chain: _FolderChain, waiting: list[str]) -> bool:
    """Enter the next folder of ``waiting`` that can still be entered; False if none."""
    while waiting:
        if chain.enter(waiting.pop()):
            return True
    return False


KEPT_WINDOW = 8
"""The deepest folders whose descriptors a walk keeps open on its way down."""
CHECKPOINT_EVERY = 16
"""Beyond the window, a walk keeps one descriptor every this many levels (a checkpoint)."""


class _FolderChain:
    """The folders from the walk's top down to the one being listed, by descriptor.

    Each folder is entered from its parent's descriptor (one ``openat`` with
    O_NOFOLLOW), so a walk costs about one open per folder however deep the tree,
    where reopening every folder from the top cost O(depth²) (24 s of CPU for a tree
    2,000 deep). The deepest KEPT_WINDOW descriptors are held, and a checkpoint every
    CHECKPOINT_EVERY levels above them: a folder let go is reopened when the walk
    climbs back to it, from the checkpoint above, by the same O_NOFOLLOW steps, with
    the folders between kept for the climb. A tree 2,000 deep holds ~130 descriptors.
    """

    def __init__(self, top_fd: int) -> None:
        self._fds: list[int | None] = [os.open(".", _FOLDER_FLAGS, dir_fd=top_fd)]
        self.relative: tuple[str, ...] = ()

    def current(self) -> int:
        """The descriptor of the deepest folder on the chain (reopened if let go)."""
        depth = len(self._fds) - 1
        if self._fds[depth] is None:
            held = max(i for i in range(depth) if self._fds[i] is not None)
            for level in range(held + 1, depth + 1):
                parent = self._fds[level - 1]
                assert parent is not None
                self._fds[level] = os.open(self.relative[level - 1], _FOLDER_FLAGS,
                                           dir_fd=parent)
        fd = self._fds[depth]
        assert fd is not None
        return fd

    def enter(self, name: str) -> bool:
        """Go down into ``name``; False if it cannot be entered (gone, or a symlink now)."""
        try:
            fd = os.open(name, _FOLDER_FLAGS, dir_fd=self.current())
        except OSError:
            return False
        self._fds.append(fd)
        self.relative += (name,)
        past = len(self._fds) - 1 - KEPT_WINDOW  # just left the window
        if past > 0 and past % CHECKPOINT_EVERY and self._fds[past] is not None:
            os.close(self._fds[past])  # type: ignore[arg-type]
            self._fds[past] = None
        return True

    def leave(self) -> None:
        """Climb back up to the parent."""
        fd = self._fds.pop()
        if fd is not None:
            os.close(fd)
        self.relative = self.relative[:-1]

    def close(self) -> None:
        for fd in self._fds:
            if fd is not None:
                os.close(fd)
        self._fds = []


def _folder_entries(storage: LocalCore, chain: _FolderChain, top_real: str
                    ) -> list[tuple[str, os.stat_result, str, bool]]:
    """(name, stat, real path, is a symlink) of what the chain's deepest folder shows,
    sorted by name."""
    try:
        folder_fd = chain.current()
        names = sorted(os.listdir(folder_fd))
    except OSError:
        return []  # unreadable, or removed or swapped meanwhile: nothing there
    folder_real = os.path.join(top_real, *chain.relative)
    found = []
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
    return found
