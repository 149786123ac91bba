"""The local folder behind the storage seam: store/base.py's ``Share``, on a disk.

Every name a client sends is turned into a file by the core's names (names.py,
the one place that maps protocol names to real paths and descriptors, as
pyftpdlib's validpath does). Uploads keep their bytes in partials on each
target's own filesystem (partials.py, localpartial.py), are promised room before
they start (space.py), and become visible by one rename (publishing.py);
downloads read through localread.py; listings, walks and file operations are
listing's, survey.py's and fileops.py's. The steps of an upload and a download
are ftserver/ops' (upload.py, download.py): they see only this seam.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import AbstractContextManager

from common.protocol.errors import IntegrityError
from common.protocol.fields import mtime_ns
from common.protocol.replies import EntryInfo, WalkEntry
from common.protocol.requests import MakeDir, Move, Remove, SetMtime, Walk
from ftserver.store import fileops, survey
from ftserver.store.alone import LocalAlone
from ftserver.store.base import Place, Published, UploadIdentity
from ftserver.store.batch import LocalBatch
from ftserver.store.core import LocalCore
from ftserver.store.diskerrors import storage_error
from ftserver.store.localpartial import LocalPartial
from ftserver.store.localread import LocalReadFile, version_of
from ftserver.store.places import LocalPlace, published_from
from ftserver.store.treelock import FolderLocks


class LocalStorage(LocalCore):
    """The share of one server (or one user's home in it) in a local folder."""

    def confined_to(self, home: str) -> LocalStorage:
        confined = super().confined_to(home)
        assert isinstance(confined, LocalStorage)
        return confined

    def holding(self, tokens: frozenset[str], user: str) -> LocalStorage:
        holder = super().holding(tokens, user)
        assert isinstance(holder, LocalStorage)
        return holder

    def disk_usage(self) -> tuple[int, int]:
        """Bytes free for uploads and bytes used, on the share's own filesystem (what
        WebDAV's quota properties tell Explorer)."""
        try:
            fs = os.statvfs(self.root_real)
        except OSError:
            return 0, 0
        free = fs.f_bavail * fs.f_frsize
        return free, (fs.f_blocks - fs.f_bfree) * fs.f_frsize

    # ------------------------------------------------------------ reading

    def stat(self, name: str) -> EntryInfo:
        return self.stat_entry(self.names.resolve(name))

    def list_folder(self, name: str) -> list[EntryInfo]:
        return self.list_dir(self.names.resolve(name, allow_root=True))

    def walk(self, name: str) -> Iterator[WalkEntry]:
        return survey.walk(self, Walk(name))

    def open_read(self, name: str) -> LocalReadFile:
        return LocalReadFile(self, name)

    def file_versions(self, name: str) -> dict[str, str]:
        """The version (as ``open_read(...).version`` gives it) of each regular file
        right in folder ``name``, from one pass over it; links are left out (their
        target's version is the one a download sends: ask ``open_read``)."""
        folder_fd = self.open_folder(self.names.resolve(name, allow_root=True))
        versions = {}
        try:
            with os.scandir(folder_fd) as entries:
                for entry in entries:
                    with contextlib.suppress(OSError):
                        st = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            versions[entry.name] = version_of(st)
        except OSError as exc:
            raise storage_error(exc, repr(name or "/")) from None
        finally:
            os.close(folder_fd)
        return versions

    # ------------------------------------------------------------ uploads

    def folder_locks(self) -> AbstractContextManager[FolderLocks]:
        """Held by a session around an upload: the folders above it stay put meanwhile."""
        return self.tree_lock.holder()

    def alone(self, folder_locks: FolderLocks) -> LocalAlone:
        return LocalAlone(self, folder_locks)

    def batch(self) -> LocalBatch:
        return LocalBatch(self)

    def open_partial(self, place: Place, identity: UploadIdentity, sha256: str | None,
                     resumable: bool) -> LocalPartial:
        assert isinstance(place, LocalPlace)
        return LocalPartial(place.partials, identity, place.target.key, sha256, resumable)

    def already_there(self, place: Place, size: int, sha256: str) -> Published | None:
        """The published file, if it holds exactly that size and SHA-256 (cached digest)."""
        assert isinstance(place, LocalPlace)
        try:
            st = os.stat(place.base, dir_fd=place.folder.fd, follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            return None
        if self.digests.known(place.target.real, st) != sha256:
            return None
        return published_from(st)

    def confirm(self, place: Place, there: Published, mtime: float) -> Published:
        """A file already there is this upload's: only its mtime is set (digest refiled)."""
        assert isinstance(place, LocalPlace) and isinstance(there.stat, os.stat_result)
        before = there.stat
        if before.st_mtime_ns == mtime_ns(mtime):
            return there
        try:
            os.utime(place.base, ns=(before.st_atime_ns, mtime_ns(mtime)),
                     dir_fd=place.folder.fd, follow_symlinks=False)
            after = os.stat(place.base, dir_fd=place.folder.fd, follow_symlinks=False)
        except OSError as exc:
            raise storage_error(exc, f"setting the mtime of {place.name!r}") from None
        if (after.st_ino, after.st_size) != (before.st_ino, before.st_size):
            raise IntegrityError(f"{place.name!r} was replaced meanwhile; send it again")
        self.digests.refile(place.target.real, before, place.target.real, after)
        return published_from(after)

    def after_cut(self) -> None:
        """An upload was cut and kept its partial: the partials kept must fit the cap."""
        self.space.enforce_cap()

    def expire(self, partial_ttl: float) -> int:
        """The hourly sweep: partials older than ``partial_ttl`` go, the rest fit the cap;
        returns how many went for their age."""
        removed = self.space.remove_stale(partial_ttl)
        self.space.enforce_cap()
        return removed

    # ------------------------------------------------------------ file operations

    def make_dir(self, name: str, parents: bool) -> None:
        fileops.make_dir(self, MakeDir(name, parents))

    def move(self, src: str, dst: str) -> None:
        fileops.move(self, Move(src, dst))

    def remove(self, name: str, recursive: bool) -> None:
        fileops.remove(self, Remove(name, recursive))

    def set_mtime(self, name: str, mtime: float) -> None:
        fileops.set_mtime(self, SetMtime(name, mtime))
