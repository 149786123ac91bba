"""The shared folder on disk: confinement, listing, and where partial uploads live.

Every name a client sends passes through ``Storage.resolve`` (the one place that
maps protocol names to real paths, as pyftpdlib's validpath does). Partials live
in ``state_dir/partials``, outside the share, named by a digest of the target's
real path, so nobody can list or fetch them and they survive restarts. How a
verified partial becomes visible is publishing.py's job.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import time
from dataclasses import dataclass

from common.errors import (
    BadPath,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotFound,
    PermissionDenied,
    StorageError,
)
from common.hashcache import HashCache
from common.messages import EntryInfo
from common.paths import (
    check_component,
    is_within,
    resolve_under,
    split_path,
)
from ftserver.locks import NameLock
from ftserver.publishing import make_parents, publish, remove_leftover_staging

log = logging.getLogger("ftserver.storage")


@dataclass(frozen=True)
class Target:
    """A client-named path resolved under the root."""

    name: str
    real: str
    key: str
    """Hex digest of ``real``: names the partial and lock files of this target."""


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
    def __init__(self, root: str, state_dir: str, min_free_bytes: int = 0) -> None:
        self.root_real = os.path.realpath(root)
        self.partials_dir = os.path.join(state_dir, "partials")
        self.locks_dir = os.path.join(state_dir, "locks")
        self.staging_dir = os.path.join(state_dir, "staging")
        for folder in (self.partials_dir, self.locks_dir, self.staging_dir):
            os.makedirs(folder, exist_ok=True, mode=0o700)
        self.hashes = HashCache(os.path.join(state_dir, "hashes.sqlite3"))
        self.min_free_bytes = min_free_bytes
        self.same_filesystem = os.stat(self.root_real).st_dev == os.stat(self.partials_dir).st_dev
        """False: every publish copies (see publishing.py); worth a warning at start-up."""

    # ------------------------------------------------------------ names

    def resolve(self, name: str, *, allow_root: bool = False) -> Target:
        parts = split_path(name, allow_root=allow_root)
        real = resolve_under(self.root_real, parts)
        if real != self.root_real:
            # A symlink inside the share may point at a reserved name; refuse that too.
            check_component(os.path.basename(real))
        key = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()
        return Target(name, real, key)

    # ------------------------------------------------------------ reading

    def stat_file(self, target: Target) -> os.stat_result:
        try:
            st = os.stat(target.real)
        except OSError as exc:
            raise storage_error(exc, repr(target.name)) from None
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectory(f"{target.name!r} is a folder")
        if not stat.S_ISREG(st.st_mode):
            raise PermissionDenied(f"{target.name!r} is not a regular file")
        return st

    def open_for_read(self, target: Target) -> tuple[int, os.stat_result]:
        """Open a regular file without blocking on FIFOs; return the fd and its fstat."""
        self.stat_file(target)
        try:
            fd = os.open(target.real, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise storage_error(exc, repr(target.name)) from None
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
        try:
            st = os.stat(target.real)
        except OSError as exc:
            raise storage_error(exc, repr(target.name)) from None
        info = self.entry(os.path.basename(target.real) or "", target.real, st)
        if info is None:
            raise PermissionDenied(f"{target.name!r} is not a regular file or folder")
        return EntryInfo(os.path.basename(target.name), info.type, info.size, info.mtime,
                         info.sha256)

    def list_dir(self, target: Target) -> list[EntryInfo]:
        """Entries of a folder, sorted by name; hidden internals, escapes and specials left out."""
        try:
            with os.scandir(target.real) as scan:
                names = sorted(entry.name for entry in scan)
        except NotADirectoryError:
            raise NotADirectory(f"{target.name!r} is not a folder") from None
        except OSError as exc:
            raise storage_error(exc, repr(target.name or "/")) from None
        entries = []
        for name in names:
            try:
                check_component(name)
            except BadPath:
                continue  # reserved or unrepresentable names are never shown
            path = os.path.join(target.real, name)
            real = os.path.realpath(path)
            if os.path.islink(path) and not is_within(self.root_real, real):
                continue
            try:
                st = os.stat(real)
            except OSError:
                continue
            info = self.entry(name, real, st)
            if info is not None:
                entries.append(info)
        return entries

    # ------------------------------------------------------------ writing

    def prepare_parent(self, target: Target) -> None:
        """Make the target's parent folders (inside the root) exist, durably."""
        parent = os.path.dirname(target.real)
        if os.path.isdir(target.real):
            raise IsADirectory(f"{target.name!r} is a folder")
        try:
            make_parents(parent)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectory(f"a parent of {target.name!r} is not a folder") from None
        except OSError as exc:
            raise storage_error(exc, f"creating the folder for {target.name!r}") from None
        if not is_within(self.root_real, os.path.realpath(parent)):
            raise BadPath("path leaves the shared folder")

    def check_free_space(self, target: Target, size: int, held: int) -> None:
        """Refuse up front an upload that cannot fit (keeping ``min_free_bytes`` spare).

        The partials need ``size - held`` more bytes; if the target folder is on
        another filesystem, publishing copies there, so it needs all ``size`` bytes too.
        """
        self._require(self.partials_dir, size - held)
        folder = os.path.dirname(target.real)
        with contextlib.suppress(OSError):
            if os.stat(folder).st_dev != os.stat(self.partials_dir).st_dev:
                self._require(folder, size)

    def _require(self, folder: str, needed: int) -> None:
        try:
            vfs = os.statvfs(folder)
        except OSError:
            return
        free = vfs.f_bavail * vfs.f_frsize
        if needed + self.min_free_bytes > free:
            raise NoSpace(
                f"the server has {free // (1 << 20)} MiB free, not enough for "
                f"{needed // (1 << 20)} MiB more"
            )

    def partial_path(self, target: Target) -> str:
        return os.path.join(self.partials_dir, target.key + ".part")

    def publish(self, partial: str, fd: int, target: Target, mtime: float) -> os.stat_result:
        """Make the verified partial (open as ``fd``) durable and visible under the target name."""
        try:
            publish(partial, fd, target.real, mtime, self.staging_dir)
            return os.stat(target.real)
        except OSError as exc:
            raise storage_error(exc, f"publishing {target.name!r}") from None

    def remove_stale_partials(self, max_age: float) -> int:
        """Delete partials not touched for ``max_age`` seconds; return how many went.

        A partial whose name is locked belongs to an upload in progress and stays.
        """
        removed = 0
        cutoff = time.time() - max_age
        with os.scandir(self.partials_dir) as scan:
            stale = [entry for entry in scan
                     if entry.name.endswith(".part") and _mtime(entry) < cutoff]
        for entry in stale:
            with NameLock(self.locks_dir, entry.name[: -len(".part")]) as lock:
                if not lock.try_acquire():
                    continue
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def remove_leftovers(self) -> int:
        """At start-up, before any session runs: what earlier runs left behind.

        Staged copies a crash left in the share, lock files (no lock can be held
        yet), and cached digests of files that are gone. Returns staged copies removed.
        """
        with os.scandir(self.locks_dir) as scan:
            names = [entry.name[: -len(".lock")] for entry in scan if entry.name.endswith(".lock")]
        for key in names:
            with contextlib.suppress(OSError):
                NameLock(self.locks_dir, key).remove_if_free()
        self.hashes.prune()
        return remove_leftover_staging(self.staging_dir)


def _mtime(entry: os.DirEntry[str]) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return float("inf")
