"""A batch of small uploads that share their work: the local store's ``Sharing`` for a burst.

A client that pipelines many small files (ft's streamed puts) sends them back to
back; while the next is already in our buffer, the uploads of a batch share:

- the folder locks (treelock.py), taken once per folder instead of once per file;
- each target folder's descriptor, walked to from the root (names.py) once, and
  its name resolved once: the batch's later files into it look only at their own
  name there (one fstatat, ``Names.target_in``);
- one open of the name locks' file, whose close lets go of the batch's name locks
  (each still taken per file, and held until the batch is settled);
- the free-space check: one look at the partials folder and statvfs, whose room the
  batch's files then use up; a large file, or one that does not fit that room,
  reserves its own (space.py);
- the folder fsync that makes the batch's renames durable: one per folder, in
  ``settle``, after the last rename into it;
- one transaction for the batch's digest-cache rows, in ``settle``, for the files
  whose folder fsync succeeded.

Nothing here replies: the front end answers each file only after ``settle`` says
its folder is durable. Within a batch a folder's descriptor is reused, so a folder
swapped for a symlink meanwhile is not followed: the rename still lands in the
folder that the walk from the root reached.
"""

from __future__ import annotations

import contextlib
import logging
import os

from common.io.durable import fsync_dir
from common.protocol.errors import FtError, Locked
from ftserver.store.base import PartialFile, Place, Published, UploadIdentity
from ftserver.store.confine import fd_path
from ftserver.store.core import LocalCore
from ftserver.store.diskerrors import storage_error
from ftserver.store.localpartial import LocalPartial
from ftserver.store.locks import KeptNamesOpen
from ftserver.store.names import OpenFolder, Target
from ftserver.store.places import LocalPlace, published_from
from ftserver.store.treelock import FolderLocks

log = logging.getLogger("ftserver.uploadbatch")

RESERVE_ALONE_ABOVE = 4 << 20
"""A file of a batch larger than this reserves its own room (space.py), as a lone upload
does: its bytes may be long on the way, and others must not count on them meanwhile."""


class LocalBatch:
    """The shared work of one batch of uploads (store/base.py's ``Sharing``); ``settle``
    ends it."""

    def __init__(self, storage: LocalCore) -> None:
        self.storage = storage
        self._folder_locks: FolderLocks | None = None
        """The folder locks above the batch's folders, held until it ends (one open)."""
        self._folders: dict[str, OpenFolder] = {}
        self._folder_names: dict[tuple[str, str], str] = {}
        """(root, a folder as the client names it) -> its real path, resolved this batch."""
        self._names: KeptNamesOpen | None = None
        """The batch's own open of the name locks' file, for its files' locks one by one."""
        self._room: int | None = None
        """Bytes the partials' filesystem had to spare at the batch's last look, less what
        the batch's files since then took."""
        self._rows: list[tuple[Target, str, object, str]] = []
        """Published files: target, folder (real path), stat, digest, to settle."""

    @property
    def idle(self) -> bool:
        """True when the batch holds nothing (nothing to settle or let go)."""
        return not self._folders and self._folder_locks is None and not self._rows

    # ------------------------------------------------------------ upload.Sharing

    def place(self, name: str) -> LocalPlace:
        """Where an upload of ``name`` goes: its target, and its folder (made if missing).
        IsADirectory if the name is a folder.

        The first file into a folder resolves its whole path from the root and walks to
        the folder; the batch's later files into the same folder look only at their own
        name in it. The folder locks above the folder, held from the first such file
        until the batch ends, keep clients from moving or removing those folders
        meanwhile (a folder whose locks the batch does not hold takes the whole way); a
        name that is a symlink still takes the whole way, which follows it.
        """
        storage = self.storage
        named = (storage.root_real, name.rpartition("/")[0])
        folder_real = self._folder_names.get(named)
        folder = self._folders.get(folder_real) if folder_real is not None else None
        if (folder is not None and folder_real is not None and self._folder_locks is not None
                and self._folder_locks.holds(folder_real)):
            target = storage.names.target_in(folder, folder_real, name)
            if target is not None:
                return LocalPlace(target, folder, storage.partials_for(target, folder))
        # Held from before the folders are made: a folder removal cannot slip in between.
        if self._folder_locks is None:
            self._folder_locks = storage.tree_lock.holder()
        target = storage.names.resolve_held(name, self._folder_locks)
        folder = self._folder(target)
        storage.names.refuse_folder_name(folder, target)
        if folder_real is None:  # the folder exists now: resolve its name for later files
            with contextlib.suppress(FtError):  # (only a shortcut; its errors are not ours)
                self._folder_names[named] = storage.names.resolve(named[1],
                                                                  allow_root=True).real
        return LocalPlace(target, folder, storage.partials_for(target, folder))

    def lock(self, place: Place, identity: UploadIdentity, resumable: bool) -> None:
        """Take the target's name lock through the batch's one open of the locks file, held
        until the batch is settled; Locked if another upload holds it. A name the batch
        takes twice is its own already: its files are published one after another."""
        assert isinstance(place, LocalPlace)
        self.storage.check_unlocked_upload(place.target.real, place.name)
        if self._names is None:
            self._names = KeptNamesOpen(self.storage.locks_dir)
        if not self._names.try_lock(place.target.key):
            raise Locked(f"another upload to {place.name!r} is in progress; try again later")

    def asked_to_give_way(self, place: Place, identity: UploadIdentity) -> bool:
        return False  # a burst's files never resume, so nothing asks them to give way

    def reserve(self, place: Place, need: int, partial: PartialFile) -> None:
        """Promise ``need`` bytes, asking the filesystem again only once the batch's files
        have used up the room it had; a large file reserves alone. The writes are still
        checked one by one: this only refuses early."""
        assert isinstance(place, LocalPlace) and isinstance(partial, LocalPartial)
        space = self.storage.space
        if need <= RESERVE_ALONE_ABOVE:
            if self._room is None:
                self._room = space.room(place.partials)
            if need <= self._room:
                self._room -= need
                return
        self._room = None  # and so it stays if this refuses
        space.reserve(place.partials, need, place.target.key, partial.name)

    def publish(self, place: Place, partial: PartialFile, mtime: float) -> Published:
        assert isinstance(place, LocalPlace) and isinstance(partial, LocalPartial)
        self.storage.check_unlocked_upload(place.target.real, place.name)  # (taken meanwhile)
        st = self.storage.publish(partial, place.target, mtime, place.folder, sync_folder=False)
        return published_from(st)

    def remember(self, place: Place, published: Published, digest: str) -> None:
        assert isinstance(place, LocalPlace)
        target = place.target
        self._rows.append((target, os.path.dirname(target.real), published.stat, digest))

    def release(self, place: Place | None) -> None:
        """Nothing per file: the batch keeps its folders and locks until it is settled."""

    # ------------------------------------------------------------ the end of a batch

    def _folder(self, target: Target) -> OpenFolder:
        """The target's folder, made if missing and walked to once per batch."""
        key = os.path.dirname(target.real)
        folder = self._folders.get(key)
        if folder is None:
            folder = self.storage.names.open_parent(target)
            self._folders[key] = folder
        return folder

    def settle(self) -> dict[str, FtError]:
        """Fsync each folder the batch published into and file the digests of what is now
        durable; return, by the name a client gave, the error of each published file whose
        folder's fsync failed (complete and verified, but not known durable). Lets go of all."""
        try:
            used = {folder for _, folder, _, _ in self._rows}
            unsynced = sync_folders({key: folder.fd for key, folder in self._folders.items()
                                     if key in used})
            self.storage.digests.remember_many([(target.real, stat, digest)
                                                for target, folder, stat, digest in self._rows
                                                if folder not in unsynced])
            failed = {target.name: storage_error(unsynced[folder],
                                                 f"making {target.name!r} durable")
                      for target, folder, _, _ in self._rows if folder in unsynced}
        finally:
            self.close()
        return failed

    def close(self) -> None:
        """Let go of what the batch holds (locks, descriptors), settled or not."""
        for folder in self._folders.values():
            with contextlib.suppress(OSError):
                os.close(folder.fd)
        self._folders = {}
        self._folder_names = {}
        self._rows = []
        if self._names is not None:
            with contextlib.suppress(OSError):
                self._names.close()
            self._names = None
        self._room = None
        if self._folder_locks is not None:
            self._folder_locks.close()
            self._folder_locks = None


def sync_folders(folders: dict[str, int]) -> dict[str, OSError]:
    """Fsync each folder (key: real path, value: an O_PATH fd); return those that failed."""
    failed: dict[str, OSError] = {}
    for key, fd in folders.items():
        try:
            fsync_dir(fd_path(fd))
        except OSError as exc:
            log.warning("fsync of a folder after a batch of uploads failed: %s", exc)
            failed[key] = exc
    return failed
