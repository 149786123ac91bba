"""One upload, for every front end: the only code that turns received bytes into a file.

Each upload goes through the same steps, in this order:

1. confinement: the name becomes a target under the root, its folder made if missing
   (names.py, through the ``sharing``'s ``place``);
2. the name's lock: one writer per name, across threads and processes (``lock``);
3. space: what it still needs is promised on the target's filesystem (space.py);
4. a partial at an offset: a resumable upload reopens the partial of the same
   upload, the same owner's same announced file, on the target's own filesystem
   (partials.py), and the sender chooses to go on from what it holds or start over;
5. write and hash: every byte is written into the partial and fed to SHA-256
   (common/io/filereceive.py hashes on a thread for big files);
6. the digest check: the bytes' SHA-256 must equal what the sender announced, before
   and after the bytes; otherwise nothing is published;
7. fsync and publish: the partial is renamed over the name, the folder fsynced
   (publishing.py), so the name shows either the previous version or all of this one;
8. the digest cache, for the next download (digests.py).

How steps 1, 2, 3, 7 and 8 share work with other uploads is the ``sharing``: ``Alone``
for one upload (a ``put`` of ft's protocol, an HTTP PUT), or a burst of pipelined
small files (uploadbatch.py) that shares folder walks, locks, one statvfs, one fsync
per folder and one cache transaction. Front ends only speak their protocol around it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from dataclasses import dataclass
from typing import Protocol

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import receive_file_hashed
from common.io.hashing import hash_prefix
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.errors import Busy, FtError, IntegrityError, Locked
from common.protocol.fields import mtime_ns
from ftserver.store.diskerrors import storage_error
from ftserver.store.locks import NameLock, held_elsewhere, key_byte, open_names, try_lock_byte
from ftserver.store.names import OpenFolder, Target
from ftserver.store.partials import (
    PartialsFolder,
    UploadIdentity,
    open_resumable,
    open_streamed,
    record_held,
    remove_partial,
    remove_sidecar,
)
from ftserver.store.partialsync import PeriodicSync
from ftserver.store.storage import Storage
from ftserver.store.treelock import FolderLocks

log = logging.getLogger("ftserver.upload")

STALL_TAKEOVER = 3.0
"""Seconds without a byte after which an upload gives way to a resume of itself (the same
owner's same file, over a new connection: its client gave up on this one)."""
WATCH_EVERY = 1.0
TAKEOVER_WAIT = STALL_TAKEOVER + 2 * WATCH_EVERY + 1.0
"""How long a resume waits for the stalled upload it asked to give way."""


@dataclass(frozen=True)
class UploadPlan:
    """What a front end announces about one upload."""

    name: str
    size: int
    mtime: float
    sha256: str | None = None
    """The SHA-256 the sender announced up front, if it knew it."""
    owner: str = ""
    """Who sends it: a user name, "" for anonymous."""
    resumable: bool = True
    """False: a new file that never resumes (a streamed put, an HTTP PUT)."""

    @property
    def identity(self) -> UploadIdentity:
        return UploadIdentity(self.owner, self.size, mtime_ns(self.mtime))


@dataclass(frozen=True)
class Uploaded:
    """A published upload."""

    target: Target
    size: int
    sha256: str
    offset: int
    """Where the sender started (0, or the bytes a resume kept)."""
    stat: os.stat_result


class Sharing(Protocol):
    """How an upload's confinement, lock, space, publish and cache share work with others."""

    def place(self, storage: Storage, name: str) -> tuple[Target, OpenFolder]: ...
    def lock(self, storage: Storage, target: Target, plan: UploadPlan) -> None: ...
    def reserve(self, storage: Storage, folder: PartialsFolder, need: int, target: Target,
                partial: str) -> None: ...
    def publish(self, storage: Storage, partial: PartialsFolder, name: str, fd: int,
                target: Target, mtime: float, folder: OpenFolder) -> os.stat_result: ...
    def remember(self, storage: Storage, target: Target, stat: os.stat_result,
                 digest: str) -> None: ...
    def release(self, storage: Storage, target: Target | None,
                folder: OpenFolder | None) -> None: ...


class Upload:
    """One upload through every step; use as a context manager (``open`` is step 1 to 4)."""

    def __init__(self, storage: Storage, plan: UploadPlan, sharing: Sharing) -> None:
        self.storage = storage
        self.plan = plan
        self.sharing = sharing
        self.target: Target | None = None
        self.folder: OpenFolder | None = None
        self.partials: PartialsFolder | None = None
        self.partial = ""
        self.fd: int | None = None
        self.held = 0
        """Bytes the partial already holds (a resumable upload cut before)."""
        self.offset = 0
        self._known_prefix: str | None = None
        self._hasher: hashlib._Hash | None = None
        self._syncer: PeriodicSync | None = None
        self.error: FtError | None = None
        """A write that failed: the rest of the bytes are read and dropped, then this."""
        self.done = False
        self._there: os.stat_result | None = None
        """The published file, when it already holds what this upload announces."""

    # ------------------------------------------------------------ steps 1 to 4

    def open(self) -> Upload:
        """Confine, lock, make room and open the partial; errors here cost no byte."""
        storage, plan = self.storage, self.plan
        self.target, self.folder = self.sharing.place(storage, plan.name)
        self.sharing.lock(storage, self.target, plan)
        try:
            self.partials = storage.partials.folder_for(self.target.folder, self.folder.dev)
        except OSError as exc:
            raise storage_error(exc, "opening the partials folder") from None
        self._there = self._already_there()
        if self._there is not None:
            self.held, self._known_prefix = plan.size, plan.sha256
            return self  # the sender may go on from the end: nothing to receive or store
        self._open_partial()
        return self

    def _already_there(self) -> os.stat_result | None:
        """The published file, if it already holds exactly what a resumable upload announces
        (its size, and a SHA-256 equal to the cached digest): then no byte need travel."""
        if not self.plan.resumable or self.plan.sha256 is None:
            return None
        assert self.target is not None and self.folder is not None
        try:
            st = os.stat(os.path.basename(self.target.real), dir_fd=self.folder.fd,
                         follow_symlinks=False)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_size != self.plan.size:
            return None
        known = self.storage.digests.known(self.target.real, st)
        return st if known == self.plan.sha256 else None

    def _open_partial(self) -> None:
        storage, plan = self.storage, self.plan
        assert self.target is not None and self.partials is not None
        try:
            if plan.resumable:
                self.fd, self.partial, prefix = open_resumable(
                    self.partials, self.target.key, plan.identity, plan.sha256)
                self.held = os.fstat(self.fd).st_size
                if self.held > plan.size:
                    os.ftruncate(self.fd, 0)
                    self.held, prefix = 0, None
                self._known_prefix = prefix.sha256 if prefix is not None else None
            else:
                self.fd, self.partial = open_streamed(self.partials, self.target.key, plan.size)
        except OSError as exc:
            raise storage_error(exc, "opening the upload's partial") from None
        self.sharing.reserve(storage, self.partials, plan.size - self.held, self.target,
                             self.partial)

    def held_digest(self) -> str | None:
        """The SHA-256 of the bytes held (None when none are): what a resume compares with."""
        if not self.held:
            return None
        if self._known_prefix is None:
            assert self.fd is not None
            self._hasher = hash_prefix(self.fd, self.held)
            self._known_prefix = self._hasher.hexdigest()
        return self._known_prefix

    # ------------------------------------------------------------ step 5

    def start(self, offset: int) -> None:
        """Go on from ``offset``: 0 (start over) or ``held`` (the sender holds the same)."""
        assert offset in (0, self.held)
        if self._there is not None:
            if offset == self.held:
                self.offset = offset
                return
            self._there = None  # the sender starts over after all: a partial, then
            self.held = 0
            self._open_partial()
        assert self.fd is not None
        if offset and self._hasher is None:
            self._hasher = hash_prefix(self.fd, offset)
        if not offset:
            self._hasher = hashlib.sha256()
        if self.plan.resumable:  # a streamed put's partial is new, and empty
            os.ftruncate(self.fd, offset)
        self.offset = offset
        if self.plan.resumable and self.partials is not None:
            self._syncer = PeriodicSync(self.fd, self.partials.path)

    def receive(self, channel: Channel, timeout: float, throttle: Throttle = UNLIMITED) -> str:
        """Take the rest of the file's bytes off ``channel`` (they follow at once); return
        their SHA-256. A resumable upload gives way, once stalled, to a resume of itself."""
        if self._there is not None:
            assert self.plan.sha256 is not None
            return self.plan.sha256  # all held already, nothing follows
        assert self._hasher is not None
        count = self.plan.size - self.offset
        if not self.plan.resumable:
            # A small file whose bytes all came with its header (most of a pipelined burst):
            # for 4 KiB, the receive loop's deadline, buffers and pipe cost more than the hash.
            data = None if throttle.limited else channel.take_raw_buffered(count)
            if data is not None:
                if data:
                    self.write(memoryview(data), 0)
                return hashlib.sha256(data).hexdigest()
            return receive_file_hashed(channel, 0, count, self._hasher, self.write, timeout,
                                       throttle=throttle)
        with channel.watching(self._give_way_if_asked, WATCH_EVERY):
            return receive_file_hashed(channel, self.offset, count, self._hasher, self.write,
                                       timeout, throttle=throttle)

    def received(self) -> int:
        """Bytes of file data taken in since ``start`` (for a log line)."""
        if self.fd is None:
            return 0
        try:
            return max(0, os.fstat(self.fd).st_size - self.offset)
        except OSError:
            return 0

    def write(self, data: memoryview, position: int) -> None:
        """Write bytes into the partial; after a failed write, only count what comes (the
        sender finishes sending and then hears the error in step, not a reset)."""
        if self.error is not None:
            return
        assert self.fd is not None
        try:
            pwrite_all(self.fd, data, position)
            if self._syncer is not None:
                self._syncer.wrote(len(data))
        except OSError as exc:
            self.error = storage_error(exc, "writing the upload")
            log.warning("upload of %r failed: %s", self.plan.name, exc)

    def watch_for_takeover(self, channel: Channel) -> contextlib.AbstractContextManager[None]:
        """While waiting for the sender's next frame, give way to a resume of this upload."""
        if not self.plan.resumable:
            return contextlib.nullcontext()
        return channel.watching(self._give_way_if_asked, WATCH_EVERY)

    def _give_way_if_asked(self, idle: float) -> None:
        if idle < STALL_TAKEOVER or self.target is None:
            return
        names = open_names(self.storage.locks_dir)
        try:
            asked = held_elsewhere(names, _takeover_byte(self.target, self.plan))
        finally:
            os.close(names)
        if asked:
            raise Busy(f"{self.plan.name!r}: this upload stalled and is being resumed over "
                       "another connection")

    # ------------------------------------------------------------ steps 6 to 8

    def finish(self, digest: str, announced: str | None) -> Uploaded:
        """Check the bytes' ``digest`` against what the sender ``announced`` at the end (and
        at the start, if it did), then publish and cache; the upload is done."""
        if self._there is not None:
            return self._confirm_there(digest, announced)
        assert self.fd is not None and self.target is not None and self.partials is not None
        if self.error is not None:
            raise self.error  # what did reach the disk stays resumable
        expected = {value for value in (announced, self.plan.sha256) if value is not None}
        if expected != {digest}:
            self._discard()
            shown = next(iter(expected - {digest}), None) or "none"
            raise IntegrityError(
                f"{self.plan.name!r} arrived with SHA-256 {digest[:16]}..., not the "
                f"{shown[:16]}... announced; nothing was published")
        assert self.folder is not None
        published = self.sharing.publish(self.storage, self.partials, self.partial, self.fd,
                                         self.target, self.plan.mtime, self.folder)
        self.done = True
        if self.plan.resumable:
            remove_sidecar(self.partials, self.partial)
        self.sharing.remember(self.storage, self.target, published, digest)
        return Uploaded(self.target, self.plan.size, digest, self.offset, published)

    def _confirm_there(self, digest: str, announced: str | None) -> Uploaded:
        """The file was published already with these very bytes: only its mtime may differ."""
        assert self._there is not None and self.target is not None and self.folder is not None
        if announced != digest:
            raise IntegrityError(f"{self.plan.name!r}: the closing SHA-256 is not the one "
                                 "announced; nothing was changed")
        before, name = self._there, os.path.basename(self.target.real)
        after = before
        if before.st_mtime_ns != mtime_ns(self.plan.mtime):
            try:
                os.utime(name, ns=(before.st_atime_ns, mtime_ns(self.plan.mtime)),
                         dir_fd=self.folder.fd, follow_symlinks=False)
                after = os.stat(name, dir_fd=self.folder.fd, follow_symlinks=False)
            except OSError as exc:
                raise storage_error(exc, f"setting the mtime of {self.plan.name!r}") from None
            self.storage.digests.refile(self.target.real, before, self.target.real, after)
        self.done = True
        return Uploaded(self.target, self.plan.size, digest, self.offset, after)

    def close(self) -> None:
        """End the upload: a cut resumable one keeps what arrived, durably, for its resume;
        anything else leaves no partial. Lets go of the name."""
        try:
            if self.fd is not None and not self.done:
                self._leave()
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self.sharing.release(self.storage, self.target, self.folder)

    def _leave(self) -> None:
        assert self.fd is not None and self.partials is not None
        kept = 0
        with contextlib.suppress(OSError):
            kept = os.fstat(self.fd).st_size
        if not self.plan.resumable or kept == 0:
            self._discard()
            return
        try:
            os.fsync(self.fd)
            if self._hasher is not None and self.error is None and self._syncer is not None:
                # Every byte written went to the hasher too (the receive loop writes, then
                # hashes), so its digest now is that of what the partial holds.
                record_held(self.partials, self.partial, self.fd, self._hasher.hexdigest())
        except OSError as exc:
            log.warning("could not keep an interrupted partial: %s", exc)
        self.storage.space.enforce_cap()

    def _discard(self) -> None:
        if self.partials is not None and self.partial:
            with contextlib.suppress(OSError):
                remove_partial(self.partials, self.partial)

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- one upload alone


class Alone:
    """The sharing of one upload by itself: the session holds its folder locks, the name's
    lock is waited for a moment, space is reserved, the folder fsynced at once."""

    def __init__(self, folder_locks: FolderLocks, lock_wait: float) -> None:
        self.folder_locks = folder_locks
        self.lock_wait = lock_wait
        self._lock: NameLock | None = None
        self._identity: NameLock | None = None
        """Held while this upload runs: lets a resume of it tell it from another writer."""

    def place(self, storage: Storage, name: str) -> tuple[Target, OpenFolder]:
        target = storage.names.resolve_held(name, self.folder_locks)
        folder = storage.names.open_parent(target)
        try:
            storage.names.refuse_folder_name(folder, target)
        except BaseException:
            os.close(folder.fd)
            raise
        return target, folder

    def lock(self, storage: Storage, target: Target, plan: UploadPlan) -> None:
        lock = NameLock(storage.locks_dir, target.key)
        taken = lock.acquire_within(self.lock_wait) or (
            plan.resumable and _ask_to_give_way(storage, target, plan, lock))
        if not taken:
            raise Locked(f"another upload to {plan.name!r} is in progress; try again later")
        self._lock = lock
        if plan.resumable:
            self._identity = NameLock(storage.locks_dir, _identity_key(target, plan))
            self._identity.try_acquire()

    def reserve(self, storage: Storage, folder: PartialsFolder, need: int, target: Target,
                partial: str) -> None:
        storage.space.reserve(folder, need, target.key, partial)
        storage.space.enforce_cap(incoming=need)

    def publish(self, storage: Storage, partial: PartialsFolder, name: str, fd: int,
                target: Target, mtime: float, folder: OpenFolder) -> os.stat_result:
        # Into the folder as the name stands now, walked to again by descriptors: a folder
        # swapped for a symlink during the upload is refused, never followed.
        now = storage.names.open_parent(target, create=False)
        try:
            return storage.publish(partial, name, fd, target, mtime, now, sync_folder=True)
        finally:
            os.close(now.fd)

    def remember(self, storage: Storage, target: Target, stat: os.stat_result,
                 digest: str) -> None:
        storage.digests.remember(target.real, stat, digest)

    def release(self, storage: Storage, target: Target | None,
                folder: OpenFolder | None) -> None:
        if folder is not None:
            with contextlib.suppress(OSError):
                os.close(folder.fd)
        for held in (self._identity, self._lock):
            if held is not None:
                held.release()
        self._lock = self._identity = None


def _identity_key(target: Target, plan: UploadPlan) -> str:
    return f"upload:{target.key}:{plan.identity.digest()}"


def _takeover_byte(target: Target, plan: UploadPlan) -> int:
    return key_byte(f"takeover:{target.key}:{plan.identity.digest()}")


def _ask_to_give_way(storage: Storage, target: Target, plan: UploadPlan,
                     lock: NameLock) -> bool:
    """If the upload holding the name is this same upload (its identity's lock is held), ask
    it to give way (a shared lock on its takeover byte: it gives way once stalled), and
    wait for the name. Another writer's upload is never asked."""
    names = open_names(storage.locks_dir)
    try:
        if not held_elsewhere(names, key_byte(_identity_key(target, plan))):
            return False
        if not try_lock_byte(names, _takeover_byte(target, plan), shared=True):
            return False
        return lock.acquire_within(TAKEOVER_WAIT)
    finally:
        os.close(names)
