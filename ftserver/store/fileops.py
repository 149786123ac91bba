"""Server side of mkdir, move, remove and set_mtime: tidying the share (walks: survey.py).

Every name goes through the path rules and is confined under the root like any
other request. Move and remove act on the entry itself, never on what a symlink
points at (only the parent folders are resolved), so a link that leads out of
the share can be removed but is never followed. The root itself can be neither
moved nor removed (nor have its mtime set); the server's partials live in
reserved ``.ft-partials`` folders that no client name can reach, and its other
state (locks, hash cache) outside the share. A file being uploaded cannot be moved or
removed (its name lock is held), nor have a folder made in its place; a folder
is moved or removed only while no upload or mkdir runs at all (treelock.py).

Names are checked by path, but every action is taken relative to a folder
descriptor opened through confine.py (one component at a time from the root,
never following a symlink): mkdirat, renameat, unlinkat, utimensat, rmdir and a
remove of whole trees by descriptors (removetree.py), and a walk that enters each
folder the same way. A folder swapped for a symlink between the check and the
action is refused (or, for a walk, not entered); it never leads the server
outside the share.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator

from common.io.durable import fsync_dir
from common.protocol.errors import (
    AlreadyExists,
    BadPath,
    FtError,
    Locked,
    NotEmpty,
    NotFound,
    ProtocolError,
)
from common.protocol.fields import mtime_ns
from common.protocol.names import is_within
from common.protocol.requests import MakeDir, Move, Remove, SetMtime
from ftserver.store.confine import SWAPPED, fd_path
from ftserver.store.core import LocalCore
from ftserver.store.diskerrors import storage_error
from ftserver.store.locks import NameLock
from ftserver.store.names import Entry
from ftserver.store.removetree import remove_tree


def _lstat_in(folder_fd: int, entry: Entry) -> os.stat_result | None:
    try:
        return os.stat(entry.base, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(exc, repr(entry.name)) from None


@contextlib.contextmanager
def _parent_of(storage: LocalCore, entry: Entry, doing: str,
               missing: str | None = None) -> Iterator[int]:
    """The entry's parent folder, open through confine, closed afterwards.

    NotFound (worded ``missing``, or "does not exist") if that folder is gone.
    """
    try:
        folder_fd = storage.names.open_folder_of(entry)
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound(missing or f"{entry.name!r} does not exist") from None
    except OSError as exc:
        raise storage_error(exc, f"{doing} {entry.name!r}") from None
    try:
        yield folder_fd
    finally:
        os.close(folder_fd)


def _existing(folder_fd: int, entry: Entry) -> os.stat_result:
    """The entry's own lstat; NotFound if it is not there."""
    found = _lstat_in(folder_fd, entry)
    if found is None:
        raise NotFound(f"{entry.name!r} does not exist")
    return found


@contextlib.contextmanager
def _name_locked(storage: LocalCore, entry: Entry, wait: float = 0.0) -> Iterator[None]:
    """Hold the lock an upload to this name takes; Locked if an upload holds it now
    (or still after ``wait`` seconds)."""
    with NameLock(storage.locks_dir, entry.lock_key) as lock:
        if not lock.acquire_within(wait):
            raise Locked(f"{entry.name!r} is being uploaded; try again later")
        yield


def _same_folder(fd_a: int, fd_b: int) -> bool:
    return os.path.samestat(os.fstat(fd_a), os.fstat(fd_b))


def make_dir(storage: LocalCore, request: MakeDir) -> None:
    """Create a folder (``parents``: and what is missing above it), holding what an upload holds.

    A folder is a writer of its name as much as an upload is: without the name
    lock, a mkdir landing while an upload of that name runs would make the upload
    fail only at publishing, after every byte was sent (and a mkdir could slip
    into the name a move has just checked is free). So it takes the name lock of
    the folder it creates (``locked`` while an upload or move holds it) and, as
    uploads do, the folder locks above it shared (treelock.py), so that a folder
    move or ``rm -r`` never runs while a mkdir is creating folders inside the tree
    it moves or removes. Two ``mkdir -p`` of one folder at once are both fine: the
    second waits for the first (``limits.lock_wait``). It waits for the name lock before
    it takes the folder locks, so that wait never holds off a folder move or
    ``rm -r`` (those take folder locks first and name locks without waiting: no
    deadlock either way round). Parents made by ``parents`` are not locked one by
    one: an upload to one of those names is refused when it publishes
    (``is_a_directory``), and nothing already there is lost.
    """
    entry = storage.names.locate(request.path)
    storage.check_unlocked(entry.path, request.path, members=True)
    with (_name_locked(storage, entry, wait=storage.lock_wait),
          storage.tree_lock.shared(entry.folder)):
        if not request.parents:
            _make_one_dir(storage, entry)
            return
        target = storage.names.resolve(request.path)
        try:
            # Creates what is missing with mkdirat, entering each step with O_NOFOLLOW.
            storage.names.make_dirs(target)
        except (FileExistsError, NotADirectoryError):
            raise AlreadyExists(f"{request.path!r} or one of its parents exists and is not "
                                "a folder") from None
        except OSError as exc:
            raise storage_error(exc, f"creating {request.path!r}") from None


def _make_one_dir(storage: LocalCore, entry: Entry) -> None:
    missing = (f"the folder that would hold {entry.name!r} does not exist "
               "(use -p to create it too)")
    with _parent_of(storage, entry, "creating", missing) as folder_fd:
        try:
            os.mkdir(entry.base, dir_fd=folder_fd)
        except FileExistsError:
            raise AlreadyExists(f"{entry.name!r} already exists") from None
        except OSError as exc:
            raise storage_error(exc, f"creating {entry.name!r}") from None
        fsync_dir(fd_path(folder_fd))


def move(storage: LocalCore, request: Move) -> None:
    source = storage.names.locate(request.src)
    destination = storage.names.locate(request.dst)
    storage.check_unlocked(source.path, request.src, members=True, beneath=True)
    storage.check_unlocked(destination.path, request.dst, members=True, beneath=True)
    with contextlib.ExitStack() as held:
        source_fd = held.enter_context(_parent_of(storage, source, "moving"))
        source_stat = _existing(source_fd, source)
        destination_fd = held.enter_context(_parent_of(
            storage, destination, "moving into",
            missing=f"the folder that would hold {request.dst!r} does not exist"))
        if _lstat_in(destination_fd, destination) is not None:
            raise AlreadyExists(f"{request.dst!r} already exists; remove it first or choose "
                                "another name")
        is_folder = stat.S_ISDIR(source_stat.st_mode)
        if is_folder and is_within(source.real(), destination.folder):
            # The kernel refuses this too (EINVAL); this check only words it better.
            raise ProtocolError(f"cannot move the folder {request.src!r} into itself")
        # The folders it leaves and enters stay put; a folder moved is held exclusively.
        folders = held.enter_context(storage.tree_lock.holder())
        folders.share(destination.folder)
        folders.share(source.folder)
        if is_folder:
            folders.exclude(source.path)
        for entry in (source, destination):
            held.enter_context(_name_locked(storage, entry))
        # Checked again under the locks: the name may have been taken meanwhile. Python
        # has no renameat2(RENAME_NOREPLACE), so this stays a check: the locks keep
        # uploads, moves and mkdirs of that name off it, but a local writer (or a
        # client's mkdir -p creating it as a parent, an empty folder a moved folder
        # may replace) can still slip in before the rename.
        if _lstat_in(destination_fd, destination) is not None:
            raise AlreadyExists(f"{request.dst!r} already exists")
        try:
            os.rename(source.base, destination.base,
                      src_dir_fd=source_fd, dst_dir_fd=destination_fd)
        except OSError as exc:
            raise _move_error(exc, request) from None
        fsync_dir(fd_path(destination_fd))
        if not _same_folder(source_fd, destination_fd):
            fsync_dir(fd_path(source_fd))
        storage.write_locks.forget(source.path)  # a lock stays with its name, not the file
        storage.dead_props.moved(source.path, destination.path)
        if not is_folder:
            with contextlib.suppress(OSError):  # a rename changes ctime: re-file the digest
                moved = os.stat(destination.base, dir_fd=destination_fd, follow_symlinks=False)
                storage.digests.refile(source.path, source_stat, destination.path, moved)


def _move_error(exc: OSError, request: Move) -> FtError:
    if exc.errno == errno.EXDEV:
        return ProtocolError(f"cannot move {request.src!r} to {request.dst!r}: they are on "
                             "different disks of the server")
    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
        return AlreadyExists(f"{request.dst!r} already exists")
    if exc.errno == errno.EINVAL:
        return ProtocolError(f"cannot move the folder {request.src!r} into itself")
    return storage_error(exc, f"moving {request.src!r}")


def remove(storage: LocalCore, request: Remove) -> None:
    entry = storage.names.locate(request.path)
    storage.check_unlocked(entry.path, request.path, members=True, beneath=True)
    with _parent_of(storage, entry, "removing") as folder_fd:
        if stat.S_ISDIR(_existing(folder_fd, entry).st_mode):
            with storage.tree_lock.exclusive(entry.path):
                _remove_folder(folder_fd, entry, request.recursive)
        else:
            with _name_locked(storage, entry):
                try:
                    os.unlink(entry.base, dir_fd=folder_fd)  # a symlink goes; its target stays
                    storage.digests.forget(entry.path)
                except FileNotFoundError:
                    raise NotFound(f"{request.path!r} does not exist") from None
                except OSError as exc:
                    raise storage_error(exc, f"removing {request.path!r}") from None
        fsync_dir(fd_path(folder_fd))
    storage.write_locks.forget(entry.path)
    storage.dead_props.forget(entry.path)


def _remove_folder(folder_fd: int, entry: Entry, recursive: bool) -> None:
    try:
        os.rmdir(entry.base, dir_fd=folder_fd)
        return
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:  # no longer the folder it was a moment ago
            raise BadPath(SWAPPED) from None
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise storage_error(exc, f"removing {entry.name!r}") from None
    if not recursive:
        raise NotEmpty(f"the folder {entry.name!r} is not empty (remove it recursively, "
                       "with -r)")
    # By file descriptors from the checked parent folder, in a loop (removetree.py):
    # symlinks inside are removed as links, one swapped in for a folder is never
    # followed, and no depth is too deep.
    try:
        remove_tree(folder_fd, entry.base)
    except OSError as exc:
        raise storage_error(exc, f"removing {entry.name!r} (part of it was removed)") from None


def set_mtime(storage: LocalCore, request: SetMtime) -> None:
    """Set the mtime of an existing file or folder, keeping its atime.

    A symlink gets its own mtime, never its target's. A file's name lock is taken
    so this cannot race an upload of that name, and a cached digest is filed again
    under the new stamp (setting the mtime changes ctime too), so the file still
    counts as unchanged to the next ``put -r``.
    """
    entry = storage.names.locate(request.path)
    storage.check_unlocked(entry.path, request.path)
    with _parent_of(storage, entry, "setting the mtime of") as folder_fd:
        before = _existing(folder_fd, entry)
        if not stat.S_ISREG(before.st_mode):
            _utime_in(folder_fd, entry, before, request.mtime)
            return
        with _name_locked(storage, entry):
            before = _existing(folder_fd, entry)  # again, under the lock
            _utime_in(folder_fd, entry, before, request.mtime)
            if stat.S_ISREG(before.st_mode):
                with contextlib.suppress(OSError):  # utime changes ctime: re-file the digest
                    after = os.stat(entry.base, dir_fd=folder_fd, follow_symlinks=False)
                    storage.digests.refile(entry.path, before, entry.path, after)


def _utime_in(folder_fd: int, entry: Entry, before: os.stat_result, mtime: float) -> None:
    try:
        os.utime(entry.base, ns=(before.st_atime_ns, mtime_ns(mtime)), dir_fd=folder_fd,
                 follow_symlinks=False)
    except FileNotFoundError:
        raise NotFound(f"{entry.name!r} does not exist") from None
    except OSError as exc:
        raise storage_error(exc, f"setting the mtime of {entry.name!r}") from None
