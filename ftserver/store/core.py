"""The local store's state and its shared steps: what its operations all stand on.

One share's root and names (names.py), its folder locks (treelock.py), its uploads'
partials and their free space (partials.py, space.py), its digest cache
(digests.py), the mode of published files, and publishing itself (publishing.py).
A user's home is the same core with another root (``confined_to``): partials,
locks and the cache stay the whole share's. The operations on it live beside it:
listing.py, survey.py (walks), fileops.py, localread.py, localpartial.py,
alone.py and batch.py (uploads); storage.py puts them behind the storage seam.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import stat

from common.io.hashcache import HashCache
from common.protocol.errors import (
    BadPath,
    FtError,
    NotADirectory,
    PermissionDenied,
)
from common.protocol.names import check_component, is_within
from common.protocol.replies import EntryInfo
from ftserver.store.confine import reopen
from ftserver.store.davdb import DavDatabase
from ftserver.store.deadprops import DeadProps
from ftserver.store.digests import Digests
from ftserver.store.diskerrors import storage_error
from ftserver.store.localpartial import LocalPartial
from ftserver.store.locks import remove_unused_lock_files
from ftserver.store.names import Names, OpenFolder, Target
from ftserver.store.partials import PartialFolders, PartialsFolder
from ftserver.store.publishing import publish, remove_leftover_staging
from ftserver.store.space import Space
from ftserver.store.treelock import TreeLock
from ftserver.store.writelocks import WriteLocks

log = logging.getLogger("ftserver.storage")


class LocalCore:
    """One share (or one user's home in it) on the local disk."""

    def __init__(self, root: str, state_dir: str, min_free_bytes: int = 0,
                 partial_max_bytes: int = 0, *, lock_wait: float = 2.0,
                 folder_wait: float = 10.0, folder_busy_wait: float = 2.0) -> None:
        self.root_real = os.path.realpath(root)
        self.names = Names(self.root_real)
        """The one owner of this share's names (names.py)."""
        self.locks_dir = os.path.join(state_dir, "locks")
        self.staging_dir = os.path.join(state_dir, "staging")
        os.makedirs(self.locks_dir, exist_ok=True, mode=0o700)
        self.digests = Digests(HashCache(os.path.join(state_dir, "hashes.sqlite3")))
        """The files' cached SHA-256 (digests.py, the one writer of the cache)."""
        self.tree_lock = TreeLock(self.locks_dir, self.root_real, folder_wait, folder_busy_wait)
        """Folder locks over the whole share (kept by ``confined_to``: homes share them)."""
        self.partials = PartialFolders(self.root_real, state_dir)
        """Where uploads in progress keep their bytes: on each target's own filesystem."""
        self.space = Space(self.partials, self.locks_dir, min_free_bytes, partial_max_bytes)
        """Free space promised to uploads, and the partials' cap and expiry (space.py)."""
        self.lock_wait = lock_wait
        """Seconds a writer waits for a name another upload holds before "locked"."""
        self.file_mode = 0o666 & ~current_umask()
        """The mode of a published file: what the server's umask leaves, as cp would."""
        self.dav_database = DavDatabase(state_dir)
        self.write_locks = WriteLocks(self.dav_database)
        """WebDAV's locks, which every writer of this store honours (writelocks.py)."""
        self.dead_props = DeadProps(self.dav_database)
        """What WebDAV clients set with PROPPATCH, following each name (deadprops.py)."""
        self.lock_tokens: frozenset[str] = frozenset()
        """The lock tokens this view's writer holds (``holding``): none for ft's protocol."""
        self.lock_user = ""
        """Who holds them: a token is good only for the user who took its lock."""

    def confined_to(self, home: str) -> LocalCore:
        """This storage with ``home`` (a protocol name, "" for none) as its root.

        Creates the folder if it is missing. Everything else (partials, locks,
        hash cache) is shared with the whole share's storage.
        """
        if not home:
            return self
        target = self.names.resolve(home)
        try:
            self.names.make_dirs(target)
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

    def holding(self, tokens: frozenset[str], user: str) -> LocalCore:
        """This storage for ``user`` writing with these WebDAV lock tokens."""
        if not tokens:
            return self
        holder = copy.copy(self)
        holder.lock_tokens = tokens
        holder.lock_user = user
        return holder

    def lock_path(self, name: str) -> str:
        """What WebDAV's locks call ``name`` (writelocks.py): its real path, a link in the
        share followed as an upload through it would be (a name not there yet: its
        folder's real path and its own name)."""
        if not name:
            return self.root_real
        try:
            return self.names.resolve(name).real
        except FtError:
            return self.names.locate(name).path

    def check_unlocked(self, path: str, name: str, *, members: bool = False,
                       beneath: bool = False) -> None:
        """Locked if a WebDAV lock whose token this writer lacks covers ``path``."""
        self.write_locks.check(path, self.lock_tokens, self.lock_user, members=members,
                               beneath=beneath, name=name)

    def check_unlocked_upload(self, path: str, name: str) -> None:
        """An upload to ``path``: a new name changes its folder's members (so a lock on
        the folder covers it); a file already there is covered by its own locks and
        those of folders locked with depth infinity."""
        if not self.write_locks.any():
            return
        self.check_unlocked(path, name, members=not os.path.lexists(path))

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
        folder_fd = self.open_folder(target)
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

    def open_folder(self, target: Target) -> int:
        """A descriptor of the folder ``target`` names, reached as names.py reaches it."""
        path_fd = self.names.open_path(target)
        try:
            return reopen(path_fd, os.O_RDONLY | os.O_DIRECTORY)
        except NotADirectoryError:
            raise NotADirectory(f"{target.name!r} is not a folder") from None
        except OSError as exc:
            raise storage_error(exc, repr(target.name or "/")) from None
        finally:
            os.close(path_fd)

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

    def partials_for(self, target: Target, folder: OpenFolder) -> PartialsFolder:
        """The partials folder for uploads into ``folder`` (on its own filesystem)."""
        try:
            return self.partials.folder_for(target.folder, folder.dev)
        except OSError as exc:
            raise storage_error(exc, "opening the partials folder") from None

    def publish(self, partial: LocalPartial, target: Target, mtime: float,
                folder: OpenFolder, *, sync_folder: bool) -> os.stat_result:
        """Make the verified partial (renamed from its partials folder) durable and visible
        under the target's name in ``folder`` (walked to by names.py). Without
        ``sync_folder`` the folder's fsync is the caller's, before it reports success."""
        try:
            published = publish(partial.folder.fd, partial.name, partial.fd, folder.fd,
                                os.path.basename(target.real), mtime,
                                file_mode=self.file_mode, sync_folder=sync_folder)
        except OSError as exc:
            raise storage_error(exc, f"publishing {target.name!r}") from None
        partial.published()
        return published

    def remove_leftovers(self) -> int:
        """At start-up, before any session runs: what earlier runs left behind.

        Staged copies a crash of version 0.1 left in the share, lock files (no lock
        can be held yet), and cached digests of files that are gone. Returns staged
        copies removed.
        """
        remove_unused_lock_files(self.locks_dir)
        self.digests.prune()
        return remove_leftover_staging(self.staging_dir)


def current_umask() -> int:
    """The process's umask, read without changing it (/proc; else set and put back at once)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
