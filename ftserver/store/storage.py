"""The shared folder on disk: listing, free space, partial uploads and their publishing.

Every name a client sends is turned into a file by ``self.names`` (names.py, the
one place that maps protocol names to real paths and descriptors, as pyftpdlib's
validpath does). Partials live in ``state_dir/partials``, outside the share,
named by a digest of the target's real path, so nobody can list or fetch them and
they survive restarts. How a verified partial becomes visible is publishing.py's job.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import stat
import sys
import time

from common.io.hashcache import HashCache
from common.protocol.errors import (
    BadPath,
    NoSpace,
    NotADirectory,
    PermissionDenied,
)
from common.protocol.names import check_component, is_within
from common.protocol.replies import EntryInfo
from ftserver.store.confine import fd_path, make_dirs_beneath, reopen
from ftserver.store.digests import Digests
from ftserver.store.diskerrors import storage_error
from ftserver.store.locks import NameLock, remove_unused_lock_files
from ftserver.store.names import Names, OpenFolder, Target
from ftserver.store.partialcap import evict_over_cap, partials
from ftserver.store.publishing import publish, remove_leftover_staging
from ftserver.store.treelock import TreeLock

log = logging.getLogger("ftserver.storage")


class Storage:
    def __init__(self, root: str, state_dir: str, min_free_bytes: int = 0,
                 partial_max_bytes: int = 0) -> None:
        self.root_real = os.path.realpath(root)
        self.names = Names(self.root_real)
        """The one owner of this share's names (names.py)."""
        self.partials_dir = os.path.join(state_dir, "partials")
        self.locks_dir = os.path.join(state_dir, "locks")
        self.staging_dir = os.path.join(state_dir, "staging")
        for folder in (self.partials_dir, self.locks_dir, self.staging_dir):
            os.makedirs(folder, exist_ok=True, mode=0o700)
        self.digests = Digests(HashCache(os.path.join(state_dir, "hashes.sqlite3")))
        """The files' cached SHA-256 (digests.py, the one writer of the cache)."""
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
        target = self.names.resolve(home)
        try:
            make_dirs_beneath(self.root_real, target.real)
        except OSError as exc:
            raise storage_error(exc, "creating your home folder") from None
        if not os.path.isdir(target.real):
            raise NotADirectory("your home folder is not a folder; ask the administrator")
        confined = copy.copy(self)
        confined.root_real = os.path.realpath(target.real)
        confined.names = Names(confined.root_real)
        if not is_within(self.root_real, confined.root_real):
            raise BadPath("your home folder leaves the share; ask the administrator")
        return confined

    # ------------------------------------------------------------ names

    # ------------------------------------------------------------ reading

    def entry(self, name: str, real: str, st: os.stat_result) -> EntryInfo | None:
        if stat.S_ISDIR(st.st_mode):
            return EntryInfo(name, "dir", 0, st.st_mtime)
        if stat.S_ISREG(st.st_mode):
            return EntryInfo(name, "file", st.st_size, st.st_mtime, self.digests.known(real, st))
        return None

    def stat_entry(self, target: Target) -> EntryInfo:
        path_fd = self.names.open_path(target)
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
        path_fd = self.names.open_path(target)
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
        except OSError:  # gone meanwhile: not shown
            return None
        real = os.path.join(folder_real, name)
        if stat.S_ISLNK(st.st_mode):
            found = self.names.link_target(real)
            if found is None:
                return None  # it leads outside the share, or it changed meanwhile
            real, st = found
        return self.entry(name, real, st)

    # ------------------------------------------------------------ writing

    def prepare_parent(self, target: Target) -> None:
        """Make the target's parent folders (inside the root) exist, durably."""
        parent = self.names.open_parent(target)
        try:
            self.names.refuse_folder_name(parent, target)
        finally:
            os.close(parent.fd)

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
            parent = self.names.open_parent(target, create=False)
        try:
            # The partial was made in partials_dir, so its filesystem is known.
            return publish(partial, fd, target.real, mtime, self.staging_dir, parent.fd,
                           sync_folder=owned, across=parent.dev != self.partials_dev)
        except OSError as exc:
            raise storage_error(exc, f"publishing {target.name!r}") from None
        finally:
            if owned:
                os.close(parent.fd)

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
        self.digests.prune()
        return remove_leftover_staging(self.staging_dir)

