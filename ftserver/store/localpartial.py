"""One upload's partial on a local disk: the store/base.py ``PartialFile`` of the local store.

A file in the partials folder of the target's own filesystem (partials.py names and
finds it), written at positions, flushed as it grows (partialsync.py) when it may be
resumed, and at a cut kept durably with the digest of what it holds, or removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os

from common.io.durable import pwrite_all
from common.io.hashing import hash_prefix
from ftserver.store.base import UploadIdentity
from ftserver.store.diskerrors import storage_error
from ftserver.store.partials import (
    PartialsFolder,
    open_resumable,
    open_streamed,
    record_held,
    remove_partial,
    remove_sidecar,
)
from ftserver.store.partialsync import PeriodicSync

log = logging.getLogger("ftserver.partials")


class LocalPartial:
    """An open partial: ``folder``'s file ``name``, open as ``fd``."""

    def __init__(self, folder: PartialsFolder, identity: UploadIdentity, key: str,
                 sha256: str | None, resumable: bool) -> None:
        self.folder = folder
        self.resumable = resumable
        self.known_prefix: str | None = None
        try:
            if resumable:
                self.fd, self.name, prefix = open_resumable(folder, key, identity, sha256)
                self.held = os.fstat(self.fd).st_size
                if self.held > identity.size:  # not this upload's bytes after all
                    os.ftruncate(self.fd, 0)
                    self.held, prefix = 0, None
                self.known_prefix = prefix.sha256 if prefix is not None else None
            else:
                self.fd, self.name = open_streamed(folder, key, identity.size)
                self.held = 0
        except OSError as exc:
            raise storage_error(exc, "opening the upload's partial") from None
        self._syncer: PeriodicSync | None = None
        self._open = True

    def prefix_hasher(self) -> hashlib._Hash:
        """SHA-256 fed with the bytes held (read once more from the disk)."""
        try:
            return hash_prefix(self.fd, self.held)
        except OSError as exc:
            raise storage_error(exc, "reading the upload's partial") from None

    def start(self, offset: int) -> None:
        """Bytes come from ``offset`` on: 0 or all held. A resumable partial is flushed as
        it grows, so a crash loses little."""
        if self.resumable:  # a streamed put's partial is new, and empty
            try:
                os.ftruncate(self.fd, offset)
            except OSError as exc:
                raise storage_error(exc, "preparing the upload's partial") from None
            self._syncer = PeriodicSync(self.fd, self.folder.path)

    def write(self, data: memoryview, position: int) -> None:
        try:
            pwrite_all(self.fd, data, position)
            if self._syncer is not None:
                self._syncer.wrote(len(data))
        except OSError as exc:
            raise storage_error(exc, "writing the upload") from None

    def received(self, offset: int) -> int:
        """Bytes the partial holds past ``offset``."""
        try:
            return max(0, os.fstat(self.fd).st_size - offset)
        except OSError:
            return 0

    def keep(self, hasher: hashlib._Hash | None) -> None:
        """A cut: make what arrived durable for the resume, noting its digest if known."""
        try:
            os.fsync(self.fd)
            if hasher is not None:
                record_held(self.folder, self.name, self.fd, hasher.hexdigest())
        except OSError as exc:
            log.warning("could not keep an interrupted partial: %s", exc)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            remove_partial(self.folder, self.name)

    def published(self) -> None:
        """It was renamed into place: only its sidecar is left to remove."""
        if self.resumable:
            remove_sidecar(self.folder, self.name)

    def close(self) -> None:
        if self._open:
            self._open = False
            os.close(self.fd)
