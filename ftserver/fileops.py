"""Server side of mkdir, move, remove, walk and stat-with-digest: tidying and surveying the share.

Every name goes through the path rules and is confined under the root like any
other request. Move and remove act on the entry itself, never on what a symlink
points at (only the parent folders are resolved), so a link that leads out of
the share can be removed but is never followed. The root itself can be neither
moved nor removed, and the server's own state (partials, locks, hash cache)
lives outside the share, out of reach. A file being uploaded cannot be moved or
removed (its name lock is held); a folder is moved or removed only while no
upload runs at all (treelock.py).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, replace

from common.durable import fsync_dir
from common.errors import (
    AlreadyExists,
    BadPath,
    FtError,
    Locked,
    NotADirectory,
    NotEmpty,
    NotFound,
    ProtocolError,
)
from common.hashing import content_stamp, hash_prefix
from common.messages import EntryInfo, MakeDir, Move, Remove, Walk, WalkEntry
from common.paths import check_component, is_within, join_path, resolve_under, split_path
from ftserver.locks import NameLock
from ftserver.publishing import make_parents
from ftserver.storage import Storage, Target, storage_error
from ftserver.treelock import TreeLock

MAX_WALK_ENTRIES = 200_000
"""A walk stops with an error beyond this many entries (the client holds them all)."""


@dataclass(frozen=True)
class Entry:
    """A client-named entry, its parent folder resolved (symlinks followed), itself not."""

    name: str
    path: str
    """Absolute path of the entry itself: the real parent folder joined with the last name."""

    @property
    def lock_key(self) -> str:
        """The key an upload to this name locks (storage.Target.key for the same name)."""
        real = os.path.realpath(self.path)
        return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()


def locate(storage: Storage, name: str) -> Entry:
    parts = split_path(name)
    parent = resolve_under(storage.root_real, parts[:-1])
    return Entry(name, os.path.join(parent, parts[-1]))


def _lstat(entry: Entry) -> os.stat_result | None:
    try:
        return os.lstat(entry.path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise storage_error(exc, repr(entry.name)) from None


# ---------------------------------------------------------------- mkdir


def make_dir(storage: Storage, request: MakeDir) -> None:
    entry = locate(storage, request.path) if not request.parents else None
    if entry is not None:
        parent = os.path.dirname(entry.path)
        if not os.path.isdir(parent):
            raise NotFound(f"the folder that would hold {request.path!r} does not exist "
                           "(use -p to create it too)")
        try:
            os.mkdir(entry.path)
        except FileExistsError:
            raise AlreadyExists(f"{request.path!r} already exists") from None
        except OSError as exc:
            raise storage_error(exc, f"creating {request.path!r}") from None
        fsync_dir(parent)
        return
    target = storage.resolve(request.path)
    if os.path.isdir(target.real):
        return
    try:
        make_parents(target.real)
    except (FileExistsError, NotADirectoryError):
        raise AlreadyExists(f"{request.path!r} or one of its parents exists and is not "
                            "a folder") from None
    except OSError as exc:
        raise storage_error(exc, f"creating {request.path!r}") from None
    if not is_within(storage.root_real, os.path.realpath(target.real)):
        raise BadPath("path leaves the shared folder")


# ---------------------------------------------------------------- move


def move(storage: Storage, request: Move) -> None:
    source = locate(storage, request.src)
    destination = locate(storage, request.dst)
    source_stat = _lstat(source)
    if source_stat is None:
        raise NotFound(f"{request.src!r} does not exist")
    if _lstat(destination) is not None:
        raise AlreadyExists(f"{request.dst!r} already exists; remove it first or choose "
                            "another name")
    destination_folder = os.path.dirname(destination.path)
    if not os.path.isdir(destination_folder):
        raise NotFound(f"the folder that would hold {request.dst!r} does not exist")
    is_folder = stat.S_ISDIR(source_stat.st_mode)
    if is_folder and is_within(os.path.realpath(source.path), destination_folder):
        raise ProtocolError(f"cannot move the folder {request.src!r} into itself")
    with contextlib.ExitStack() as held:
        if is_folder:
            held.enter_context(TreeLock(storage.locks_dir).exclusive())
        for entry in (source, destination):
            lock = held.enter_context(NameLock(storage.locks_dir, entry.lock_key))
            if not lock.try_acquire():
                raise Locked(f"{entry.name!r} is being uploaded; try again later")
        # Checked again under the locks: the name may have been taken meanwhile.
        if _lstat(destination) is not None:
            raise AlreadyExists(f"{request.dst!r} already exists")
        digest = storage.hashes.get(source.path, source_stat) if not is_folder else None
        try:
            os.rename(source.path, destination.path)
        except OSError as exc:
            raise _move_error(exc, request) from None
        fsync_dir(destination_folder)
        if os.path.dirname(source.path) != destination_folder:
            fsync_dir(os.path.dirname(source.path))
    if digest is not None:
        with contextlib.suppress(OSError):  # a rename changes ctime: re-file the digest
            storage.hashes.put(destination.path, os.lstat(destination.path), digest)


def _move_error(exc: OSError, request: Move) -> FtError:
    if exc.errno == errno.EXDEV:
        return ProtocolError(f"cannot move {request.src!r} to {request.dst!r}: they are on "
                             "different disks of the server")
    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
        return AlreadyExists(f"{request.dst!r} already exists")
    return storage_error(exc, f"moving {request.src!r}")


# ---------------------------------------------------------------- remove


def remove(storage: Storage, request: Remove) -> None:
    entry = locate(storage, request.path)
    entry_stat = _lstat(entry)
    if entry_stat is None:
        raise NotFound(f"{request.path!r} does not exist")
    folder = os.path.dirname(entry.path)
    if stat.S_ISDIR(entry_stat.st_mode):
        with TreeLock(storage.locks_dir).exclusive():
            _remove_folder(entry, request.recursive)
    else:
        with NameLock(storage.locks_dir, entry.lock_key) as lock:
            if not lock.try_acquire():
                raise Locked(f"{request.path!r} is being uploaded; try again later")
            try:
                os.unlink(entry.path)  # a symlink goes itself; its target stays
            except FileNotFoundError:
                raise NotFound(f"{request.path!r} does not exist") from None
            except OSError as exc:
                raise storage_error(exc, f"removing {request.path!r}") from None
    fsync_dir(folder)


def _remove_folder(entry: Entry, recursive: bool) -> None:
    try:
        os.rmdir(entry.path)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise storage_error(exc, f"removing {entry.name!r}") from None
    if not recursive:
        raise NotEmpty(f"the folder {entry.name!r} is not empty (remove it recursively, "
                       "with -r)")
    failures: list[OSError] = []
    # rmtree works by file descriptors here (Linux): it removes symlinks inside the
    # folder as links and never follows one out of it, even if one is swapped in.
    shutil.rmtree(entry.path, onerror=lambda _func, _path, info: failures.append(info[1]))
    if failures:
        raise storage_error(failures[0], f"removing {entry.name!r} (part of it was removed)")


# ---------------------------------------------------------------- stat with digest


def stat_with_digest(storage: Storage, target: Target) -> EntryInfo:
    """``stat`` of a file, computing (and caching) its SHA-256 if it is not known yet."""
    entry = storage.stat_entry(target)
    if entry.type != "file" or entry.sha256 is not None:
        return entry
    fd, before = storage.open_for_read(target)
    try:
        digest = hash_prefix(fd, before.st_size).hexdigest()
        after = os.fstat(fd)
    except OSError as exc:
        raise storage_error(exc, f"reading {target.name!r}") from None
    finally:
        os.close(fd)
    if content_stamp(after) != content_stamp(before):
        return entry  # written to meanwhile: no digest describes it
    storage.hashes.put(target.real, before, digest)
    return replace(entry, sha256=digest, size=before.st_size, mtime=before.st_mtime)


# ---------------------------------------------------------------- walk


def walk(storage: Storage, request: Walk) -> Iterator[WalkEntry]:
    """Every file and folder below ``request.path``, parents first, names sorted.

    Symlinks are followed only to files inside the share; linked folders are not
    descended into (no loops), special files and reserved names are left out.
    """
    top = storage.resolve(request.path, allow_root=True)
    if not os.path.isdir(top.real):
        if os.path.exists(top.real):
            raise NotADirectory(f"{request.path!r} is not a folder")
        raise NotFound(f"{request.path!r} does not exist")
    count = 0
    pending: list[tuple[str, ...]] = [()]
    while pending:
        relative = pending.pop()
        folder = os.path.join(top.real, *relative)
        subfolders = []
        for name, st, real in _folder_entries(storage, folder):
            path = relative + (name,)
            info = storage.entry(name, real, st)
            if info is None:
                continue
            count += 1
            if count > MAX_WALK_ENTRIES:
                raise ProtocolError(f"{request.path or '/'!r} holds more than "
                                    f"{MAX_WALK_ENTRIES} entries; fetch its subfolders one "
                                    "by one")
            yield WalkEntry(join_path(path), info.type, info.size, info.mtime, info.sha256)
            if info.type == "dir" and real == os.path.join(folder, name):
                subfolders.append(path)
        pending.extend(reversed(subfolders))


def _folder_entries(storage: Storage, folder: str) -> Iterator[tuple[str, os.stat_result, str]]:
    try:
        with os.scandir(folder) as scan:
            names = sorted(entry.name for entry in scan)
    except OSError:
        return  # removed or unreadable meanwhile: nothing to list there
    for name in names:
        try:
            check_component(name)
        except BadPath:
            continue
        path = os.path.join(folder, name)
        real = os.path.realpath(path)
        if not is_within(storage.root_real, real):
            continue
        try:
            st = os.stat(real)
        except OSError:
            continue
        yield name, st, real
