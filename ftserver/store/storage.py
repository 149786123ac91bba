"""The shared folder on disk: confinement, listing, and where partial uploads live.

Every name a client sends passes through ``Storage.resolve`` (the one place that
maps protocol names to real paths, as pyftpdlib's validpath does). Partials live
in ``state_dir/partials``, outside the share, named by a digest of the target's
real path, so nobody can list or fetch them and they survive restarts. How a
verified partial becomes visible is publishing.py's job.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import hashlib
import logging
import os
import stat
import sys
import time
from dataclasses import dataclass

from common.io.hashcache import HashCache
from common.protocol.errors import (
    BadPath,
    IsADirectory,
    Locked,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
    StorageError,
)
from common.protocol.names import check_component, is_within, split_path
from common.protocol.replies import EntryInfo
from ftserver.store.confine import SWAPPED, fd_path, make_dirs_beneath, open_path_beneath, reopen
from ftserver.store.locks import NameLock, remove_unused_lock_files
from ftserver.store.names import resolve_under
from ftserver.store.partialcap import evict_over_cap, partials
from ftserver.store.publishing import publish, remove_leftover_staging
from ftserver.store.treelock import FolderLocks, TreeLock

log = logging.getLogger("ftserver.storage")


@dataclass(frozen=True)
class OpenFolder:
    """An O_PATH descriptor of a folder in the share, and the filesystem it is on."""

    fd: int
    dev: int


@dataclass(frozen=True)
class Target:
    """A client-named path resolved under the root."""

    name: str
    real: str
    key: str
    """Hex digest of ``real``: names the partial and the name lock of this target."""

    @property
    def folder(self) -> str:
        """The real path of the folder it is (or would be) in."""
        return os.path.dirname(self.real)


def storage_error(exc: OSError, what: str) -> Exception:
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


class Storage:
    def __init__(self, root: str, state_dir: str, min_free_bytes: int = 0,
                 partial_max_bytes: int = 0) -> None:
        self.root_real = os.path.realpath(root)
        self.partials_dir = os.path.join(state_dir, "partials")
        self.locks_dir = os.path.join(state_dir, "locks")
        self.staging_dir = os.path.join(state_dir, "staging")
        for folder in (self.partials_dir, self.locks_dir, self.staging_dir):
            os.makedirs(folder, exist_ok=True, mode=0o700)
        self.hashes = HashCache(os.path.join(state_dir, "hashes.sqlite3"))
        self.tree_lock = TreeLock(self.locks_dir, self.root_real)
        """Folder locks over the whole share (kept by ``confined_to``: homes share them)."""
        self.min_free_bytes = min_free_bytes
        self.partial_max_bytes = partial_max_bytes
        """Cap on all partials together (0: none); see partialcap.py."""
        self.partials_dev = os.stat(self.partials_dir).st_dev
        self.same_filesystem = os.stat(self.root_real).st_dev == self.partials_dev
        """False: every publish copies (see publishing.py); worth a warning at start-up."""

    def confined_to(self, home: str) -> Storage:
        """This storage with ``home`` (a protocol name, "" for none) as its root.

        Creates the folder if it is missing. Everything else (partials, locks,
        hash cache) is shared with the whole share's storage.
        """
        if not home:
            return self
        target = self.resolve(home)
        try:
            make_dirs_beneath(self.root_real, target.real)
        except OSError as exc:
            raise storage_error(exc, "creating your home folder") from None
        if not os.path.isdir(target.real):
            raise NotADirectory("your home folder is not a folder; ask the administrator")
        confined = copy.copy(self)
        confined.root_real = os.path.realpath(target.real)
        if not is_within(self.root_real, confined.root_real):
            raise BadPath("your home folder leaves the share; ask the administrator")
        return confined

    # ------------------------------------------------------------ names

    def resolve(self, name: str, *, allow_root: bool = False) -> Target:
        parts = split_path(name, allow_root=allow_root)
        try:
            real = resolve_under(self.root_real, parts)
        except OSError as exc:  # a link swapped for a file mid-way makes readlink fail
            if exc.errno == errno.EINVAL:
                raise BadPath(SWAPPED) from None
            raise storage_error(exc, repr(name)) from None
        if real != self.root_real:
            # A symlink inside the share may point at a reserved name; refuse that too.
            check_component(os.path.basename(real))
        key = lock_key(real)
        return Target(name, real, key)

    def target_in(self, folder: OpenFolder, folder_real: str, name: str) -> Target | None:
        """``resolve(name)`` for a name whose folder is already open as ``folder`` (walked to
        from the root, at ``folder_real``) and whose last part is missing there or a regular
        file: one fstatat instead of a walk from the root. A folder there raises
        IsADirectory; anything else (a symlink, to be followed) gives None, for ``resolve``.
        """
        leaf = name.rpartition("/")[2]
        check_component(leaf)
        try:
            st = os.stat(leaf, dir_fd=folder.fd, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        except OSError:
            return None
        if st is not None:
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectory(f"{name!r} is a folder")
            if not stat.S_ISREG(st.st_mode):
                return None
        real = os.path.join(folder_real, leaf)
        return Target(name, real, lock_key(real))

    def resolve_held(self, name: str, folders: FolderLocks) -> Target:
        """``resolve``, holding the folder locks above the target shared in ``folders``.

        Resolved again once its folder is locked, so that a folder moved between the
        look-up and the lock (through a symlink, say) is not missed.
        """
        for _ in range(3):
            target = self.resolve(name)
            if folders.holds(target.folder):
                return target
            folders.share(target.folder)
        raise Locked(f"the folders on the way to {name!r} keep moving; try again")

    # ------------------------------------------------------------ reading

    def open_path(self, target: Target) -> int:
        """An O_PATH fd of the target, reached without following a symlink swapped in since
        ``resolve`` (see confine.py); the caller closes it."""
        try:
            return open_path_beneath(self.root_real, target.real)
        except OSError as exc:
            raise storage_error(exc, repr(target.name)) from None

    def open_for_read(self, target: Target) -> tuple[int, os.stat_result]:
        """Open a regular file, never opening a FIFO or device; return the fd and its fstat."""
        path_fd = self.open_path(target)
        try:
            st = os.fstat(path_fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectory(f"{target.name!r} is a folder")
            if not stat.S_ISREG(st.st_mode):
                raise PermissionDenied(f"{target.name!r} is not a regular file")
            try:
                fd = reopen(path_fd, os.O_RDONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise storage_error(exc, repr(target.name)) from None
        finally:
            os.close(path_fd)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise PermissionDenied(f"{target.name!r} is not a regular file")
        os.set_blocking(fd, True)
        return fd, st

    def entry(self, name: str, real: str, st: os.stat_result) -> EntryInfo | None:
        if stat.S_ISDIR(st.st_mode):
            return EntryInfo(name, "dir", 0, st.st_mtime)
        if stat.S_ISREG(st.st_mode):
            return EntryInfo(name, "file", st.st_size, st.st_mtime, self.hashes.get(real, st))
        return None

    def stat_entry(self, target: Target) -> EntryInfo:
        path_fd = self.open_path(target)
        try:
            st = os.fstat(path_fd)
        finally:
            os.close(path_fd)
        info = self.entry(os.path.basename(target.real) or "", target.real, st)
        if info is None:
            raise PermissionDenied(f"{target.name!r} is not a regular file or folder")
        return EntryInfo(os.path.basename(target.name), info.type, info.size, info.mtime,
                         info.sha256)

    def list_dir(self, target: Target) -> list[EntryInfo]:
        """Entries of a folder, sorted by name; hidden internals, escapes and specials left out."""
        path_fd = self.open_path(target)
        try:
            folder_fd = reopen(path_fd, os.O_RDONLY | os.O_DIRECTORY)
        except NotADirectoryError:
            raise NotADirectory(f"{target.name!r} is not a folder") from None
        except OSError as exc:
            raise storage_error(exc, repr(target.name or "/")) from None
        finally:
            os.close(path_fd)
        try:
            names = sorted(os.listdir(folder_fd))
            entries = []
            for name in names:
                info = self._list_entry(folder_fd, target.real, name)
                if info is not None:
                    entries.append(info)
        except OSError as exc:
            raise storage_error(exc, repr(target.name or "/")) from None
        finally:
            os.close(folder_fd)
        return entries

    def _list_entry(self, folder_fd: int, folder_real: str, name: str) -> EntryInfo | None:
        """One entry of a listing, or None for what is never shown (escapes, specials...)."""
        try:
            check_component(name)
        except BadPath:
            return None  # reserved or unrepresentable names are never shown
        try:
            st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
            real = os.path.join(folder_real, name)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(real)
                if not is_within(self.root_real, real):
                    return None
                # Reached from the root without following links: a link swapped in
                # after realpath cannot make us show an outside file's size or time.
                target_fd = open_path_beneath(self.root_real, real)
                try:
                    st = os.fstat(target_fd)
                finally:
                    os.close(target_fd)
        except (OSError, BadPath):  # gone, or a link swapped in meanwhile: not shown
            return None
        return self.entry(name, real, st)

    # ------------------------------------------------------------ writing

    def prepare_parent(self, target: Target) -> None:
        """Make the target's parent folders (inside the root) exist, durably."""
        parent = self.open_parent(target)
        try:
            self.refuse_folder_name(parent, target)
        finally:
            os.close(parent.fd)

    def refuse_folder_name(self, parent: OpenFolder, target: Target) -> None:
        """IsADirectory if the target names a folder (in ``parent``, from ``open_parent``)."""
        try:
            st = os.stat(os.path.basename(target.real), dir_fd=parent.fd)
        except OSError:
            return  # a new name (or one the rename will answer for)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectory(f"{target.name!r} is a folder")

    def check_free_space(self, target: Target, size: int, held: int) -> None:
        """Refuse up front an upload that cannot fit (keeping ``min_free_bytes`` spare).

        The partials need ``size - held`` more bytes; if the target folder is on
        another filesystem, publishing copies there, so it needs all ``size`` bytes too.
        Partials over the cap are evicted first (they may be what fills the disk).
        """
        self.evict_partials(size - held)
        self._require(self.partials_dir, size - held)
        folder = os.path.dirname(target.real)
        with contextlib.suppress(OSError):
            if os.stat(folder).st_dev != self.partials_dev:
                self._require(folder, size)

    def _require(self, folder: str, needed: int) -> int:
        """Refuse (NoSpace) unless ``needed`` bytes fit in ``folder``'s filesystem with
        ``min_free_bytes`` to spare; return the bytes still spare beyond both."""
        try:
            vfs = os.statvfs(folder)
        except OSError:
            return sys.maxsize  # nothing to go by: the writes themselves will tell
        free = vfs.f_bavail * vfs.f_frsize
        if needed + self.min_free_bytes > free:
            raise NoSpace(
                f"the server has {free // (1 << 20)} MiB free, not enough for "
                f"{needed // (1 << 20)} MiB more"
            )
        return free - needed - self.min_free_bytes

    def evict_partials(self, incoming: int = 0) -> int:
        """Make room under ``partial_max_bytes`` for ``incoming`` more bytes; return bytes freed."""
        return evict_over_cap(self.partials_dir, self.locks_dir, self.partial_max_bytes,
                              incoming)

    def partial_path(self, target: Target) -> str:
        return os.path.join(self.partials_dir, target.key + ".part")

    def publish(self, partial: str, fd: int, target: Target, mtime: float,
                parent: OpenFolder | None = None) -> os.stat_result:
        """Make the verified partial (open as ``fd``) durable and visible under the target name.

        Without ``parent`` the folder is walked to now and fsynced here. With one
        (from ``open_parent``, walked to within this burst of uploads) the folder's
        fsync is the caller's, before it reports success.
        """
        owned = parent is None
        if parent is None:
            # Rename into the folder checked now, by descriptor: a folder swapped for a
            # symlink during the upload is refused, never followed out of the share.
            parent = self.open_parent(target, create=False)
        try:
            # The partial was made in partials_dir, so its filesystem is known.
            return publish(partial, fd, target.real, mtime, self.staging_dir, parent.fd,
                           sync_folder=owned, across=parent.dev != self.partials_dev)
        except OSError as exc:
            raise storage_error(exc, f"publishing {target.name!r}") from None
        finally:
            if owned:
                os.close(parent.fd)

    def open_parent(self, target: Target, *, create: bool = True) -> OpenFolder:
        """The target's folder, reached from the root without following a symlink (confine.py).

        With ``create``, missing folders are made first (durably); mkdir is only
        tried when the walk finds one missing. The caller closes the descriptor.
        """
        folder = os.path.dirname(target.real)
        try:
            try:
                fd = open_path_beneath(self.root_real, folder)
            except FileNotFoundError:
                if not create:
                    raise
                make_dirs_beneath(self.root_real, folder)
                fd = open_path_beneath(self.root_real, folder)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectory(f"a parent of {target.name!r} is not a folder") from None
        except OSError as exc:
            raise storage_error(exc, f"the folder of {target.name!r}") from None
        st = os.fstat(fd)
        if not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise NotADirectory(f"a parent of {target.name!r} is not a folder")
        return OpenFolder(fd, st.st_dev)

    def check_stream_space(self, parent: OpenFolder, size: int) -> int:
        """``check_free_space`` for a streamed put, without scanning the partials each time.

        A streamed put's partial never outlives its request, so it never adds to the
        abandoned partials that the cap is about: they are only evicted (a scan of
        them all) when the disk is too full for this upload otherwise. Returns the
        bytes the partials' filesystem still has spare after this upload.
        """
        try:
            room = self._require(self.partials_dir, size)
        except NoSpace:
            self.evict_partials(size)
            room = self._require(self.partials_dir, size)
        if parent.dev != self.partials_dev:
            self._require(fd_path(parent.fd), size)
        return room

    def remove_stale_partials(self, max_age: float) -> int:
        """Delete partials not touched for ``max_age`` seconds; return how many went.

        A partial whose name is locked belongs to an upload in progress and stays.
        """
        removed = 0
        cutoff = time.time() - max_age
        for partial in partials(self.partials_dir):
            if partial.mtime >= cutoff:
                continue
            with NameLock(self.locks_dir, partial.key) as lock:
                if not lock.try_acquire():
                    continue
                with contextlib.suppress(OSError):
                    os.unlink(partial.path)
                    removed += 1
        return removed

    def remove_leftovers(self) -> int:
        """At start-up, before any session runs: what earlier runs left behind.

        Staged copies a crash left in the share, lock files (no lock can be held
        yet), and cached digests of files that are gone. Returns staged copies removed.
        """
        remove_unused_lock_files(self.locks_dir)
        self.hashes.prune()
        return remove_leftover_staging(self.staging_dir)


def lock_key(real: str) -> str:
    """The key naming the partial and the name lock of an upload to the real path ``real``."""
    return hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()
