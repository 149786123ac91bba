"""One download, for every front end: the only code that sends a file of the share.

Each download goes through the same steps:

1. resolve and open: the name becomes a regular file of the share, opened through a
   descriptor walk that never follows a symlink swapped in (names.py);
2. the digest: from the cache (digests.py) when it still describes the file, else
   computed while the bytes go out and cached afterwards;
3. a byte range: from an offset the receiver holds, if the file's first bytes have
   the digest the receiver gave for its own (a resume never splices two versions);
4. send: sendfile(2) on plain TCP when the digest is known, else one read, hash
   and send per buffer (common/io/filesend.py), within the transfer's deadlines;
5. the check that the file did not change while it was sent: a rename over the
   name is harmless (the old file went out whole), a write into it is not.

Front ends only speak their protocol around it (ft's ``get``, HTTP's GET and Range).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace

from common.io.channel import Channel
from common.io.filesend import SentCallback, send_file, send_file_hashed
from common.io.hashing import content_stamp, hash_prefix, unchanged_while_open
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.errors import SourceChanged
from common.protocol.replies import EntryInfo
from ftserver.store.diskerrors import storage_error
from ftserver.store.names import Target
from ftserver.store.storage import Storage


class Download:
    """An open file of the share to send; use as a context manager."""

    def __init__(self, storage: Storage, name: str) -> None:
        self.storage = storage
        self.target: Target = storage.names.resolve(name)
        self.fd, self.before = storage.names.open_for_read(self.target)
        self.digest: str | None = storage.digests.known(self.target.real, self.before)
        """The whole file's SHA-256 when known before any byte goes out (the cache's)."""
        self._hasher: hashlib._Hash | None = None

    @property
    def size(self) -> int:
        return self.before.st_size

    @property
    def mtime(self) -> float:
        return self.before.st_mtime

    def resume_from(self, offset: int, prefix_sha256: str | None) -> int:
        """Where to start for a receiver holding ``offset`` bytes whose SHA-256 is
        ``prefix_sha256``: there, if the file begins with those very bytes, else 0."""
        if offset <= 0 or offset > self.size or prefix_sha256 is None:
            return 0
        if offset == self.size and self.digest is not None:
            return offset if self.digest == prefix_sha256 else 0  # no read needed
        try:
            hasher = hash_prefix(self.fd, offset)
        except OSError as exc:
            raise storage_error(exc, f"reading {self.target.name!r}") from None
        if offset == self.size and self._still_named():
            # The prefix is the whole file: its digest, once read, need not be read again.
            self.digest = hasher.hexdigest()
            self.storage.digests.remember(self.target.real, self.before, self.digest)
        if hasher.hexdigest() != prefix_sha256:
            return 0
        self._hasher = hasher
        return offset

    def send(self, channel: Channel, offset: int, timeout: float,
             throttle: Throttle = UNLIMITED, on_sent: SentCallback | None = None) -> str:
        """Send the file from ``offset`` (0, or what ``resume_from`` gave) to its end; return
        the whole file's SHA-256. OSError if the disk fails, ft errors if the link does."""
        count = self.size - offset
        if self.digest is not None:
            send_file(channel, self.fd, offset, count, timeout, on_sent, throttle=throttle)
            return self.digest
        hasher = self._hasher if offset else hashlib.sha256()
        assert hasher is not None, "resume_from gave this offset"
        return send_file_hashed(channel, self.fd, offset, count, hasher, timeout, on_sent,
                                throttle=throttle)

    def finish(self, digest: str) -> None:
        """After the last byte: SourceChanged if the file was written to meanwhile; else a
        digest computed on the way is cached (while the name still holds this file)."""
        now = os.fstat(self.fd)
        if not unchanged_while_open(self.before, now):
            raise SourceChanged(f"{self.target.name!r} changed while it was sent")
        if self.digest is None and self._still_named():
            self.storage.digests.remember(self.target.real, self.before, digest)

    def _still_named(self) -> bool:
        """True while the name holds the file we read (a newer version's entry stays)."""
        try:
            now = os.stat(self.target.real)
        except OSError:
            return False
        return (now.st_ino == self.before.st_ino
                and content_stamp(now) == content_stamp(self.before))

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stat_with_digest(storage: Storage, name: str) -> EntryInfo:
    """``stat`` of a file with its SHA-256, computed (and cached) if not known yet."""
    target = storage.names.resolve(name)
    entry = storage.stat_entry(target)
    if entry.type != "file" or entry.sha256 is not None:
        return entry
    with Download(storage, name) as download:
        try:
            digest = hash_prefix(download.fd, download.size).hexdigest()
            after = os.fstat(download.fd)
        except OSError as exc:
            raise storage_error(exc, f"reading {name!r}") from None
        if content_stamp(after) != content_stamp(download.before):
            return entry  # written to meanwhile: no digest describes it
        storage.digests.remember(download.target.real, download.before, digest)
        return replace(entry, sha256=digest, size=download.size, mtime=download.mtime)
