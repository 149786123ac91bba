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

Everything goes through the storage seam (store/base.py's ``ReadFile``); front ends
only speak their protocol around it (ft's ``get``, HTTP's GET and Range).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import replace

from common.io.channel import Channel
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.errors import SourceChanged
from common.protocol.replies import EntryInfo
from ftserver.store.base import ReadFile, SentCallback, Share


class Download:
    """An open file of the share to send; use as a context manager."""

    def __init__(self, storage: Share, name: str,
                 given_up: Callable[[], bool] | None = None) -> None:
        """``given_up``: asked while a long hash runs; once it says yes (the receiver
        hung up), the work stops with ConnectionLost."""
        self.file: ReadFile = storage.open_read(name)
        self.given_up = given_up
        self.digest: str | None = self.file.digest
        """The whole file's SHA-256 when known before any byte goes out (the cache's)."""
        self._hasher: hashlib._Hash | None = None

    @property
    def size(self) -> int:
        return self.file.size

    @property
    def mtime(self) -> float:
        return self.file.mtime

    def resume_from(self, offset: int, prefix_sha256: str | None) -> int:
        """Where to start for a receiver holding ``offset`` bytes whose SHA-256 is
        ``prefix_sha256``: there, if the file begins with those very bytes, else 0."""
        if offset <= 0 or offset > self.size or prefix_sha256 is None:
            return 0
        if offset == self.size and self.digest is not None:
            return offset if self.digest == prefix_sha256 else 0  # no read needed
        hasher = self.file.prefix_hasher(offset, self.given_up)
        if offset == self.size:
            # The prefix is the whole file: its digest, once read, need not be read again.
            self.digest = hasher.hexdigest()
            self.file.remember(self.digest)
        if hasher.hexdigest() != prefix_sha256:
            return 0
        self._hasher = hasher
        return offset

    def send(self, channel: Channel, offset: int, timeout: float,
             throttle: Throttle = UNLIMITED, on_sent: SentCallback | None = None) -> str:
        """Send the file from ``offset`` (0, or what ``resume_from`` gave) to its end; return
        the whole file's SHA-256. OSError if the disk fails, ft errors if the link does."""
        if self.digest is not None:
            self.file.send(channel, offset, None, timeout, throttle, on_sent)
            return self.digest
        hasher = self._hasher if offset else hashlib.sha256()
        assert hasher is not None, "resume_from gave this offset"
        self.file.send(channel, offset, hasher, timeout, throttle, on_sent)
        return hasher.hexdigest()

    def send_span(self, channel: Channel, start: int, count: int, timeout: float,
                  throttle: Throttle = UNLIMITED, on_sent: SentCallback | None = None) -> None:
        """Send ``count`` bytes from ``start`` as they are, unhashed (a byte range a
        receiver asked for, or a whole file held back by its last byte)."""
        self.file.send(channel, start, None, timeout, throttle, on_sent, count)

    def chunks(self, size: int = 256 * 1024) -> Iterator[bytes]:
        """The whole file as buffers of ``size`` bytes, for a front end that must see
        the bytes (a ZIP's CRC); the digest computed on the way is cached by ``finish``.
        OSError if the disk fails."""
        hasher = hashlib.sha256()
        position = 0
        while position < self.size:
            data = self.file.read(position, min(size, self.size - position))
            if not data:
                raise SourceChanged(f"{self.file.name!r} got shorter while it was read")
            hasher.update(data)
            position += len(data)
            yield data
        self.finish(hasher.hexdigest())

    def unchanged(self) -> bool:
        """Whether nothing was written into the file since it was opened."""
        return self.file.unchanged()

    def finish(self, digest: str) -> None:
        """After the last byte: SourceChanged if the file was written to meanwhile; else a
        digest computed on the way is cached."""
        if not self.file.unchanged():
            raise SourceChanged(f"{self.file.name!r} changed while it was sent")
        if self.file.digest is None:
            self.file.remember(digest)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Download:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def stat_with_digest(storage: Share, name: str,
                     given_up: Callable[[], bool] | None = None) -> EntryInfo:
    """``stat`` of a file with its SHA-256, computed (and cached) if not known yet."""
    entry = storage.stat(name)
    if entry.type != "file" or entry.sha256 is not None:
        return entry
    with Download(storage, name) as download:
        digest = download.file.prefix_hasher(download.size, given_up).hexdigest()
        if not download.file.unchanged():
            return entry  # written to meanwhile: no digest describes it
        download.file.remember(digest)
        return replace(entry, sha256=digest, size=download.size, mtime=download.mtime)
