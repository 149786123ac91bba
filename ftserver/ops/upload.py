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

How steps 1, 2, 3, 7 and 8 share work with other uploads is the ``sharing`` the
store gives: alone, for one upload (a ``put`` of ft's protocol, an HTTP PUT), or a
burst of pipelined small files, which on a local folder shares folder walks, locks,
one look at free space, one fsync per folder and one cache transaction. Everything
here goes through the storage seam (store/base.py): no path, descriptor or cache of
the share is touched directly. Front ends only speak their protocol around it.

A resumable upload may also come in passes (tus's PATCHes, ftserver/http/tus.py):
each pass is a whole Upload (open, start from what is held, ``receive`` a span of
``count`` bytes, close, which keeps the partial), and the pass that brings the last
byte finishes. A pass may hand the next its hasher (``hasher``, then ``start``), cut
its own span back off (``rewind``), or give the upload up (``drop``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from common.io.channel import Channel
from common.io.filereceive import Writer, receive_file_hashed
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.errors import Busy, FtError, IntegrityError
from common.protocol.fields import mtime_ns
from ftserver.store.base import PartialFile, Place, Published, Share, Sharing, UploadIdentity

log = logging.getLogger("ftserver.upload")

STALL_TAKEOVER = 3.0
"""Seconds without a byte after which an upload gives way to a resume of itself (the same
owner's same file, over a new connection: its client gave up on this one)."""
WATCH_EVERY = 1.0


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

    place: Place
    size: int
    sha256: str
    offset: int
    """Where the sender started (0, or the bytes a resume kept)."""
    published: Published


class Upload:
    """One upload through every step; use as a context manager (``open`` is step 1 to 4)."""

    def __init__(self, storage: Share, plan: UploadPlan, sharing: Sharing) -> None:
        self.storage = storage
        self.plan = plan
        self.sharing = sharing
        self.place: Place | None = None
        self.partial: PartialFile | None = None
        self.held = 0
        """Bytes the partial already holds (a resumable upload cut before)."""
        self.offset = 0
        self._known_prefix: str | None = None
        self._hasher: hashlib._Hash | None = None
        self.error: FtError | None = None
        """A write that failed: the rest of the bytes are read and dropped, then this."""
        self.done = False
        self._dropped = False
        self._there: Published | None = None
        """The published file, when it already holds what this upload announces."""

    # ------------------------------------------------------------ steps 1 to 4

    def open(self) -> Upload:
        """Confine, lock, make room and open the partial; errors here cost no byte."""
        plan = self.plan
        self.place = self.sharing.place(plan.name)
        self.sharing.lock(self.place, plan.identity, plan.resumable)
        if plan.resumable and plan.sha256 is not None:
            self._there = self.storage.already_there(self.place, plan.size, plan.sha256)
        if self._there is not None:
            self.held, self._known_prefix = plan.size, plan.sha256
            return self  # the sender may go on from the end: nothing to receive or store
        self._open_partial()
        return self

    def _open_partial(self) -> None:
        assert self.place is not None
        plan = self.plan
        self.partial = self.storage.open_partial(self.place, plan.identity, plan.sha256,
                                                 plan.resumable)
        self.held, self._known_prefix = self.partial.held, self.partial.known_prefix
        self.sharing.reserve(self.place, plan.size - self.held, self.partial)

    def held_digest(self) -> str | None:
        """The SHA-256 of the bytes held (None when none are): what a resume compares with."""
        if not self.held:
            return None
        if self._known_prefix is None:
            assert self.partial is not None
            self._hasher = self.partial.prefix_hasher()
            self._known_prefix = self._hasher.hexdigest()
        return self._known_prefix

    # ------------------------------------------------------------ step 5

    def start(self, offset: int, hasher: hashlib._Hash | None = None) -> None:
        """Go on from ``offset``: 0 (start over) or ``held`` (the sender holds the same).
        ``hasher``: a SHA-256 a front end kept from this upload's last pass, fed what the
        partial held then; taken (a copy) only if its digest is the one the partial
        recorded for what it holds now, else the held bytes are hashed again."""
        assert offset in (0, self.held)
        if self._there is not None:
            if offset == self.held:
                self.offset = offset
                return
            self._there = None  # the sender starts over after all: a partial, then
            self._open_partial()
        assert self.partial is not None
        if (offset and self._hasher is None and hasher is not None
                and self._known_prefix == hasher.hexdigest()):
            self._hasher = hasher.copy()
        if offset and self._hasher is None:
            self._hasher = self.partial.prefix_hasher()
        if not offset:
            self._hasher = hashlib.sha256()
        self.partial.start(offset)
        self.offset = offset

    def receive(self, channel: Channel, timeout: float, throttle: Throttle = UNLIMITED,
                count: int | None = None, tap: Writer | None = None) -> str:
        """Take the rest of the file's bytes off ``channel`` (they follow at once); return
        their SHA-256. A resumable upload gives way, once stalled, to a resume of itself.

        ``count``: only that many bytes come now, the next span of a resumable upload that
        arrives in several passes (tus's PATCHes); the SHA-256 returned is then that of
        everything from the start of the file to the span's end. ``tap`` is shown every
        byte written, at its position (a per-span checksum)."""
        if self._there is not None:
            assert self.plan.sha256 is not None
            return self.plan.sha256  # all held already, nothing follows
        assert self._hasher is not None
        if count is None:
            count = self.plan.size - self.offset
        else:
            assert self.plan.resumable and 0 <= count <= self.plan.size - self.offset
        write = self.write if tap is None else _tapped(self.write, tap)
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
            return receive_file_hashed(channel, self.offset, count, self._hasher, write,
                                       timeout, throttle=throttle)

    def receive_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """A body whose length nobody said (an HTTP PUT in chunks, ``curl -T -``), taken
        as it comes: written and hashed; return its SHA-256 and its length. Only a new
        upload that never resumes, planned with size 0: no room could be promised for it,
        so a disk that fills fails it with ``no_space`` and publishes nothing."""
        assert self._hasher is not None and not self.plan.resumable and self.offset == 0
        position = 0
        for data in chunks:
            self.write(memoryview(data), position)
            self._hasher.update(data)
            position += len(data)
        return self._hasher.hexdigest(), position

    def hasher(self) -> hashlib._Hash | None:
        """A copy of the SHA-256 fed every byte the partial holds (after a ``receive``), for
        a front end to hand to the next pass's ``start``; None if it is not known."""
        return self._hasher.copy() if self._hasher is not None and self.error is None else None

    def rewind(self) -> None:
        """Drop the bytes this pass received (a span whose checksum failed): the partial is
        cut back to where the pass started, and holds what it held before."""
        assert self.partial is not None and self.plan.resumable
        self.partial.start(self.offset)
        self._hasher = None  # fed the dropped bytes: the next pass hashes what is held

    def received(self) -> int:
        """Bytes of file data taken in since ``start`` (for a log line)."""
        return self.partial.received(self.offset) if self.partial is not None else 0

    def write(self, data: memoryview, position: int) -> None:
        """Write bytes into the partial; after a failed write, only count what comes (the
        sender finishes sending and then hears the error in step, not a reset)."""
        if self.error is not None:
            return
        assert self.partial is not None
        try:
            self.partial.write(data, position)
        except FtError as exc:
            self.error = exc
            log.warning("upload of %r failed: %s", self.plan.name, exc.message)

    def watch_for_takeover(self, channel: Channel) -> contextlib.AbstractContextManager[None]:
        """While waiting for the sender's next frame, give way to a resume of this upload."""
        if not self.plan.resumable:
            return contextlib.nullcontext()
        return channel.watching(self._give_way_if_asked, WATCH_EVERY)

    def _give_way_if_asked(self, idle: float) -> None:
        if idle < STALL_TAKEOVER or self.place is None:
            return
        if self.sharing.asked_to_give_way(self.place, self.plan.identity):
            raise Busy(f"{self.plan.name!r}: this upload stalled and is being resumed over "
                       "another connection")

    # ------------------------------------------------------------ steps 6 to 8

    def finish(self, digest: str, announced: str | None) -> Uploaded:
        """Check the bytes' ``digest`` against what the sender ``announced`` at the end (and
        at the start, if it did), then publish and cache; the upload is done."""
        assert self.place is not None
        if self._there is not None:
            return self._confirm_there(digest, announced)
        assert self.partial is not None
        if self.error is not None:
            raise self.error  # what did reach the disk stays resumable
        expected = {value for value in (announced, self.plan.sha256) if value is not None}
        if expected != {digest}:
            self.partial.discard()
            shown = next(iter(expected - {digest}), None) or "none"
            raise IntegrityError(
                f"{self.plan.name!r} arrived with SHA-256 {digest[:16]}..., not the "
                f"{shown[:16]}... announced; nothing was published")
        published = self.sharing.publish(self.place, self.partial, self.plan.mtime)
        self.done = True
        self.sharing.remember(self.place, published, digest)
        return Uploaded(self.place, self.plan.size, digest, self.offset, published)

    def _confirm_there(self, digest: str, announced: str | None) -> Uploaded:
        """The file was published already with these very bytes: only its mtime may differ."""
        assert self._there is not None and self.place is not None
        if announced != digest:
            raise IntegrityError(f"{self.plan.name!r}: the closing SHA-256 is not the one "
                                 "announced; nothing was changed")
        published = self.storage.confirm(self.place, self._there, self.plan.mtime)
        self.done = True
        return Uploaded(self.place, self.plan.size, digest, self.offset, published)

    def drop(self) -> None:
        """Give this resumable upload up (tus's termination): the partial and what it held
        go now, and ``close`` keeps nothing."""
        assert self.plan.resumable
        if self.partial is not None:
            self.partial.discard()
        self._dropped = True

    def close(self) -> None:
        """End the upload: a cut resumable one keeps what arrived, durably, for its resume;
        anything else leaves no partial. Lets go of the name, and only then makes the
        partials kept fit the cap: while this upload held its name, its own partial counted
        as running, and uploads cut at the same moment would each have spared the others."""
        kept = False
        try:
            if self.partial is not None:
                if not self.done and not self._dropped:
                    kept = self._leave(self.partial)
                self.partial.close()
        finally:
            self.sharing.release(self.place)
        if kept:
            self.storage.after_cut()

    def _leave(self, partial: PartialFile) -> bool:
        """Keep or discard what arrived; True if a partial was kept."""
        if not self.plan.resumable or partial.received(0) == 0:
            partial.discard()
            return False
        # Every byte written went to the hasher too (the receive loop writes, then hashes),
        # so its digest now is that of what the partial holds: the next attempt need not
        # read it again to answer.
        partial.keep(self._hasher if self.error is None else None)
        return True

    def __enter__(self) -> Upload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _tapped(write: Writer, tap: Writer) -> Writer:
    def both(data: memoryview, position: int) -> None:
        write(data, position)
        tap(data, position)
    return both


def upload_chunks(storage: Share, plan: UploadPlan, chunks: Iterable[bytes]) -> Uploaded:
    """A new file that never resumes, from bytes the server itself has (a WebDAV COPY, the
    empty file a LOCK makes): every step of the one upload, alone, in one call. The
    SHA-256 must be ``plan.sha256`` when the plan names one."""
    with storage.folder_locks() as folder_locks:
        upload = Upload(storage, plan, storage.alone(folder_locks))
        try:
            upload.open()
            upload.start(0)
            digest, _ = upload.receive_chunks(chunks)
            return upload.finish(digest, plan.sha256 or digest)
        finally:
            upload.close()
