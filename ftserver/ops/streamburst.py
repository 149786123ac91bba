"""A burst of streamed puts: the work several pipelined small uploads can share.

A client that pipelines streamed puts (streamput.py) sends many files back to back
and reads the replies later. While the next one is already in our buffer, its
reply may wait a moment, so a burst of them shares:

- the folder locks (treelock.py), taken once per folder instead of once per file;
- each target folder's descriptor, walked to from the root (confine.py) once, and
  its name resolved once: the burst's later files into it look only at their own
  name there (one fstatat, see ``place``);
- the folder fsync that makes the burst's renames durable: one per folder,
  after the last rename into it and before any reply of the burst is sent;
- one open of the name locks' file, whose close lets go of the burst's name locks
  (each still taken per file, and held until the burst's replies are settled);
- one send for all the replies, and one transaction for their digest-cache rows;
- the free-space check: one statvfs, whose spare bytes the burst's files then use up
  (a folder on another filesystem than the partials is still checked per file).

No success reply leaves before the fsync that covers its file: if a folder's
fsync fails, every file of the burst published into it is answered with an
error instead (the file is complete and verified, but not known durable: the same
answer a single put gives when its folder fsync fails). A burst ends when no
whole request is buffered, when a request other than a streamed put comes, when
it holds MAX_FILES files or is MAX_SECONDS old, or when the connection ends; the
session ends it. Within a burst a folder's descriptor is reused, so a folder
swapped for a symlink meanwhile is not followed: the rename still lands in the
folder that the walk from the root reached.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from common.io.durable import fsync_dir
from common.protocol.errors import FtError
from common.protocol.fastpath import encode_put_done
from common.protocol.frames import encode_frame
from common.protocol.replies import PutDone, error_reply
from ftserver.ops.transfers import TransferResult
from ftserver.store.confine import fd_path
from ftserver.store.diskerrors import storage_error
from ftserver.store.locks import KeptNamesOpen
from ftserver.store.names import OpenFolder, Target
from ftserver.store.storage import Storage
from ftserver.store.treelock import FolderLocks

log = logging.getLogger("ftserver.streamburst")

MAX_FILES = 64
"""Replies held back at most: bounds what a burst holds open."""
MAX_SECONDS = 0.25
"""A burst older than this ends after its current file: bounds how long its first reply
waits, and how long it holds its folder locks (a folder move waits for them, see treelock.py)."""


@dataclass(frozen=True)
class Published:
    """A streamed put that is renamed into place; its success waits for its folder's fsync."""

    target: Target
    folder: str
    """The real path of the folder it was renamed into (the key of that folder's fsync)."""
    stat: os.stat_result
    done: PutDone


@dataclass(frozen=True)
class Answered:
    """One streamed put's outcome as the session logs it: a result, or the error it got."""

    frame: dict[str, Any]
    outcome: TransferResult | FtError
    started: float


class StreamBurst:
    """Held by a session; collects streamed puts' replies until ``finish`` sends them."""

    def __init__(self) -> None:
        self._folder_locks: FolderLocks | None = None
        """The folder locks above the burst's folders, held until it ends (one open)."""
        self._folders: dict[str, OpenFolder] = {}
        self._folder_names: dict[tuple[str, str], str] = {}
        """(root, a folder as the client names it) -> its real path, resolved this burst."""
        self._entries: list[tuple[dict[str, Any], Published | FtError, float]] = []
        self._began = 0.0
        self._room: int | None = None
        """Bytes the partials' filesystem had spare at the burst's last statvfs, less
        what the burst's files since then took."""
        self._names: KeptNamesOpen | None = None
        """The burst's own open of the name locks' file, for its files' locks one by one."""

    @property
    def pending(self) -> int:
        """Streamed puts whose replies are held."""
        return len(self._entries)

    @property
    def full(self) -> bool:
        """True when the burst must end before it takes another file."""
        return (len(self._entries) >= MAX_FILES
                or (bool(self._entries) and time.monotonic() - self._began > MAX_SECONDS))


    def place(self, storage: Storage, name: str) -> tuple[Target, OpenFolder]:
        """Where a streamed put of ``name`` goes: its target, and its folder (made if
        missing). IsADirectory if the name is a folder.

        The first file into a folder resolves its whole path from the root and walks to
        the folder; the burst's later files into the same folder look only at their own
        name in it (``Names.target_in``). The folder locks above the folder, held from
        the first such file until the burst ends, keep clients from moving or removing
        those folders meanwhile (a folder whose locks the burst does not hold takes the
        whole way); a name that is a symlink still takes the whole way, which follows it.
        """
        named = (storage.root_real, name.rpartition("/")[0])
        folder_real = self._folder_names.get(named)
        folder = self._folders.get(folder_real) if folder_real is not None else None
        if (folder is not None and self._folder_locks is not None
                and self._folder_locks.holds(folder_real)):
            target = storage.names.target_in(folder, folder_real, name)
            if target is not None:
                return target, folder
        # Held from before the folders are made: a folder removal cannot slip in between.
        if self._folder_locks is None:
            self._folder_locks = storage.tree_lock.holder()
        target = storage.names.resolve_held(name, self._folder_locks)
        folder = self.folder(storage, target)
        storage.names.refuse_folder_name(folder, target)
        if folder_real is None:  # the folder exists now: resolve its name for later files
            with contextlib.suppress(FtError):  # (only a shortcut; its errors are not ours)
                self._folder_names[named] = storage.names.resolve(named[1], allow_root=True).real
        return target, folder

    def lock_name(self, storage: Storage, target: Target) -> bool:
        """Take the target's name lock through the burst's one open of the locks file,
        held until the burst ends (its replies are settled); False if another upload
        holds it. A name the burst takes twice is its own already: its files are
        published one after another, in order."""
        if self._names is None:
            self._names = KeptNamesOpen(storage.locks_dir)
        return self._names.try_lock(target.key)

    def folder(self, storage: Storage, target: Target) -> OpenFolder:
        """The target's folder, made if missing and walked to once per burst."""
        key = os.path.dirname(target.real)
        folder = self._folders.get(key)
        if folder is None:
            folder = storage.names.open_parent(target)
            self._folders[key] = folder
        return folder

    def check_space(self, storage: Storage, parent: OpenFolder, size: int) -> None:
        """NoSpace unless ``size`` more bytes fit (``Storage.check_stream_space``), asking
        the filesystem again only once the burst's files have used up what it had spare.
        The writes are still checked one by one: this only refuses early."""
        if (self._room is not None and size <= self._room
                and parent.dev == storage.partials_dev):
            self._room -= size
            return
        self._room = None  # and so it stays if this refuses
        self._room = storage.check_stream_space(parent, size)

    def published(self, frame: dict[str, Any], item: Published, started: float) -> None:
        """A file renamed into place: answered ok once its folder's fsync is done."""
        self._add(frame, item, started)

    def refused(self, frame: dict[str, Any], error: FtError, started: float) -> None:
        """A file answered with ``error`` (its bytes already consumed)."""
        self._add(frame, error, started)

    def _add(self, frame: dict[str, Any], item: Published | FtError, started: float) -> None:
        if not self._entries:
            self._began = started
        self._entries.append((frame, item, started))

    def finish(self, storage: Storage) -> tuple[list[Answered], bytes]:
        """End the burst: fsync its folders and store its digests; return what to log and
        the replies to send, in order. A disk failure never raises: it becomes the
        answers of the files it concerns."""
        if not self._entries and not self._folders and self._folder_locks is None:
            return [], b""
        # Taken at once: should anything below raise, no later finish may answer these
        # files "ok" without the fsync of their folder, which is closed on the way out.
        entries, self._entries = self._entries, []
        try:
            used = {item.folder for _, item, _ in entries if isinstance(item, Published)}
            unsynced = sync_folders({key: folder.fd for key, folder in self._folders.items()
                                     if key in used})
            answers, replies = settle(entries, unsynced)
            storage.digests.remember_many([(item.target.real, item.stat, item.done.sha256)
                                     for _, item, _ in entries
                                     if isinstance(item, Published)
                                     and item.folder not in unsynced])
        finally:
            self._close()
        return answers, b"".join(replies)

    def abandon(self) -> None:
        """Let go of what a burst that could not finish still holds (locks, descriptors)."""
        self._entries = []
        self._close()

    def _close(self) -> None:
        for folder in self._folders.values():
            with contextlib.suppress(OSError):
                os.close(folder.fd)
        self._folders = {}
        self._folder_names = {}
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
            log.warning("fsync of a folder after streamed puts failed: %s", exc)
            failed[key] = exc
    return failed


def settle(entries: list[tuple[dict[str, Any], Published | FtError, float]],
           unsynced: dict[str, OSError]) -> tuple[list[Answered], list[bytes]]:
    """The answers and encoded replies of a burst, in order, given the folders whose fsync
    failed: a file published into one of those is answered with the error, never ok."""
    answers: list[Answered] = []
    replies: list[bytes] = []
    for frame, item, started in entries:
        outcome: TransferResult | FtError
        if isinstance(item, FtError):
            outcome, reply = item, encode_frame(error_reply(item))
        elif item.folder in unsynced:
            outcome = storage_error(unsynced[item.folder], f"making {item.target.name!r} durable")
            reply = encode_frame(error_reply(outcome))
        else:
            outcome = TransferResult(item.target.name, item.done.size, 0, item.done.size)
            reply = encode_put_done(item.done)
        replies.append(reply)
        answers.append(Answered(frame, outcome, started))
    return answers, replies
