"""How one upload by itself goes through the local store (store/base.py's ``Sharing``).

The session holds the folder locks above the target for the whole upload
(treelock.py); the name's lock is waited for a moment (``limits.lock_wait``), and
a resume of the same upload may ask a stalled holder to give way; the room the
upload still needs is promised (space.py); it is published into its folder as
the name stands at the end, walked to again by descriptors, with that folder
fsynced at once; its digest is cached at once.

Giving way: an upload holds, beside its name's lock, a lock standing for its
identity (the same owner's same announced file). A later put that finds the name
held checks that lock: if it is held, the holder is this very upload over a
connection its client gave up on, and the newcomer asks it to give way (a shared
lock on a takeover byte); the holder does, once it has moved no byte for a few
seconds (ops/upload.py). Another writer's upload is never asked: it gets "locked".
"""

from __future__ import annotations

import contextlib
import os

from common.protocol.errors import Locked
from ftserver.store.base import PartialFile, Place, Published, UploadIdentity
from ftserver.store.core import LocalCore
from ftserver.store.localpartial import LocalPartial
from ftserver.store.locks import NameLock, held_elsewhere, key_byte, open_names, try_lock_byte
from ftserver.store.places import LocalPlace, published_from
from ftserver.store.treelock import FolderLocks

TAKEOVER_WAIT = 6.0
"""How long a resume waits for the stalled upload it asked to give way (it gives way once
3 s without a byte have passed, checking every second)."""


class LocalAlone:
    def __init__(self, storage: LocalCore, folder_locks: FolderLocks) -> None:
        self.storage = storage
        self.folder_locks = folder_locks
        self._lock: NameLock | None = None
        self._identity: NameLock | None = None
        """Held while this upload runs: lets a resume of it tell it from another writer."""

    def place(self, name: str) -> LocalPlace:
        names = self.storage.names
        target = names.resolve_held(name, self.folder_locks)
        folder = names.open_parent(target)
        try:
            names.refuse_folder_name(folder, target)
            partials = self.storage.partials_for(target, folder)
        except BaseException:
            os.close(folder.fd)
            raise
        return LocalPlace(target, folder, partials)

    def lock(self, place: Place, identity: UploadIdentity, resumable: bool) -> None:
        assert isinstance(place, LocalPlace)
        self.storage.check_unlocked_upload(place.target.real, place.name)
        locks_dir = self.storage.locks_dir
        lock = NameLock(locks_dir, place.target.key)
        taken = lock.acquire_within(self.storage.lock_wait) or (
            resumable and _ask_to_give_way(locks_dir, place, identity, lock))
        if not taken:
            raise Locked(f"another upload to {place.name!r} is in progress; try again later")
        self._lock = lock
        if resumable:
            self._identity = NameLock(locks_dir, _identity_key(place, identity))
            self._identity.try_acquire()

    def asked_to_give_way(self, place: Place, identity: UploadIdentity) -> bool:
        assert isinstance(place, LocalPlace)
        names = open_names(self.storage.locks_dir)
        try:
            return held_elsewhere(names, _takeover_byte(place, identity))
        finally:
            os.close(names)

    def reserve(self, place: Place, need: int, partial: PartialFile) -> None:
        assert isinstance(place, LocalPlace) and isinstance(partial, LocalPartial)
        self.storage.space.reserve(place.partials, need, place.target.key, partial.name)
        self.storage.space.enforce_cap(incoming=need)

    def publish(self, place: Place, partial: PartialFile, mtime: float) -> Published:
        assert isinstance(place, LocalPlace) and isinstance(partial, LocalPartial)
        # A lock taken while the bytes came is honoured too: checked again at the last step.
        self.storage.check_unlocked_upload(place.target.real, place.name)
        # Into the folder as the name stands now, walked to again by descriptors: a folder
        # swapped for a symlink during the upload is refused, never followed.
        now = self.storage.names.open_parent(place.target, create=False)
        try:
            st = self.storage.publish(partial, place.target, mtime, now, sync_folder=True)
        finally:
            os.close(now.fd)
        return published_from(st)

    def remember(self, place: Place, published: Published, digest: str) -> None:
        assert isinstance(place, LocalPlace)
        self.storage.digests.remember(place.target.real, published.stat, digest)

    def release(self, place: Place | None) -> None:
        if isinstance(place, LocalPlace):
            with contextlib.suppress(OSError):
                os.close(place.folder.fd)
        for held in (self._identity, self._lock):
            if held is not None:
                held.release()
        self._lock = self._identity = None


def _identity_key(place: LocalPlace, identity: UploadIdentity) -> str:
    return f"upload:{place.target.key}:{identity.digest()}"


def _takeover_byte(place: LocalPlace, identity: UploadIdentity) -> int:
    return key_byte(f"takeover:{place.target.key}:{identity.digest()}")


def _ask_to_give_way(locks_dir: str, place: LocalPlace, identity: UploadIdentity,
                     lock: NameLock) -> bool:
    """If the upload holding the name is this same upload (its identity's lock is held), ask
    it to give way (a shared lock on its takeover byte) and wait for the name."""
    names = open_names(locks_dir)
    try:
        if not held_elsewhere(names, key_byte(_identity_key(place, identity))):
            return False
        if not try_lock_byte(names, _takeover_byte(place, identity), shared=True):
            return False
        return lock.acquire_within(TAKEOVER_WAIT)
    finally:
        os.close(names)
