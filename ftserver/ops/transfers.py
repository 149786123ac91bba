"""Server side of uploads and downloads: resume negotiation, streaming, verification.

``receive_upload`` and ``send_download`` each own one transfer on an open
Channel. They raise ft errors; any error after raw bytes started to flow leaves
the stream unusable, which they signal by raising ``StreamBroken`` so the
session closes the connection instead of replying.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import TypeVar

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import receive_file_hashed
from common.io.filesend import send_file, send_file_hashed
from common.io.hashing import content_stamp, hash_prefix, unchanged_while_open
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.errors import FtError, IntegrityError, Locked, ProtocolError, SourceChanged
from common.protocol.replies import GetEnd, GetReady, PutDone, PutReady, error_reply
from common.protocol.requests import GetRequest, PutData, PutEnd, PutRequest, parse_request
from ftserver.store.diskerrors import storage_error
from ftserver.store.locks import NameLock
from ftserver.store.names import Target
from ftserver.store.partialsync import PeriodicSync
from ftserver.store.storage import Storage

log = logging.getLogger("ftserver.transfers")

R = TypeVar("R", PutData, PutEnd)
CLIENT_PREFIX_RATE_FLOOR = 1_000_000
"""Bytes/s a client is assumed to hash its resume prefix at, at worst (slow media)."""


LOCK_WAIT = 2.0
"""Seconds a put waits for its name's lock before answering "locked" (see acquire_within)."""


class StreamBroken(Exception):
    """The byte stream is out of step; the connection must close. Wraps the cause."""

    def __init__(self, cause: FtError, moved: int = 0) -> None:
        super().__init__(cause.message)
        self.cause = cause
        self.moved = moved
        """Bytes of file data that crossed before the break (for the transfer's log line)."""


@dataclass(frozen=True)
class TransferResult:
    """What one transfer did, for the log line."""

    path: str
    size: int
    offset: int
    moved: int


def _expect(channel: Channel, cls: type[R], seconds: float) -> R:
    """The next request, which must be a ``cls``, within ``seconds`` for the whole frame."""
    request = parse_request(channel.receive(deadline=time.monotonic() + seconds))
    if not isinstance(request, cls):
        raise ProtocolError(f"expected {cls.OP!r}, got {type(request).OP!r}")  # type: ignore[attr-defined]
    return request


def receive_upload(
    channel: Channel, storage: Storage, request: PutRequest, timeout: float,
    throttle: Throttle = UNLIMITED,
) -> TransferResult:
    """Serve one ``put``. ``timeout`` bounds each wait: a frame, or each chunk of raw bytes."""
    target = storage.names.resolve(request.path)
    storage.prepare_parent(target)
    lock = NameLock(storage.locks_dir, target.key)
    if not lock.acquire_within(LOCK_WAIT):
        raise Locked(f"another upload to {request.path!r} is in progress; try again later")
    try:
        partial = storage.partial_path(target)
        try:
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise storage_error(exc, "opening the upload's partial") from None
        try:
            result, done = _receive_into(channel, storage, request, target, partial, fd,
                                         timeout, throttle)
        except BaseException:
            if os.path.exists(partial) and os.fstat(fd).st_size == 0:
                os.unlink(partial)  # nothing to resume: leave no empty partial behind
            raise
        finally:
            os.close(fd)
    finally:
        lock.release()
    # Confirm only once the name is free again: a client that goes straight on to
    # another put of it must not be told "locked" by its own finished upload.
    channel.send(done.to_dict())
    return result


def _receive_into(
    channel: Channel, storage: Storage, request: PutRequest, target: Target, partial: str,
    fd: int, timeout: float, throttle: Throttle,
) -> tuple[TransferResult, PutDone]:
    """Receive, verify and publish; return the result and the reply the caller sends."""
    held = os.fstat(fd).st_size
    hasher = hashlib.sha256()
    if held > request.size:
        held = 0
    if held:
        hasher = hash_prefix(fd, held)
    storage.check_free_space(target, request.size, held)
    channel.send(PutReady(held, hasher.hexdigest() if held else None).to_dict())

    try:
        # Meanwhile the client hashes its first `held` bytes, perhaps from a slow USB
        # stick or network drive. Waiting costs us one descriptor, so be generous.
        data = _expect(channel, PutData, timeout + held / CLIENT_PREFIX_RATE_FLOOR)
        if data.offset not in (0, held):
            raise ProtocolError(f"offset must be 0 or {held}")
    except FtError as exc:
        # Raw bytes may already be on their way: the stream cannot be trusted any more.
        _try_reply(channel, exc)
        raise StreamBroken(exc) from None
    if data.offset == 0 and held:
        hasher = hashlib.sha256()
    os.ftruncate(fd, data.offset)
    writer = _UploadWriter(fd, request.path, PeriodicSync(fd, os.path.dirname(partial)))
    try:
        digest = receive_file_hashed(channel, data.offset, request.size - data.offset, hasher,
                                     writer.write, timeout, throttle=throttle)
    except FtError as exc:
        _keep_partial(fd)
        raise StreamBroken(exc, moved=max(0, os.fstat(fd).st_size - data.offset)) from None
    if writer.error is not None:
        _keep_partial(fd)

    end = _expect(channel, PutEnd, timeout)
    if writer.error is not None:
        raise writer.error  # what did reach the disk stays resumable
    if end.sha256 != digest or (request.sha256 is not None and request.sha256 != digest):
        os.unlink(partial)
        raise IntegrityError(
            f"{request.path!r} arrived with SHA-256 {digest[:16]}..., not the "
            f"{end.sha256[:16]}... announced; nothing was published"
        )
    published = storage.publish(partial, fd, target, request.mtime)
    storage.digests.remember(target.real, published, digest)
    result = TransferResult(request.path, request.size, data.offset, request.size - data.offset)
    return result, PutDone(request.size, digest)


class _UploadWriter:
    """Writes an upload into its partial; after a failed write, only counts what comes.

    The loop keeps reading (and discarding) so the client finishes sending and then
    reads the error in step, instead of seeing a reset.
    """

    def __init__(self, fd: int, path: str, syncer: PeriodicSync) -> None:
        self.fd = fd
        self.path = path
        self.syncer = syncer
        self.error: Exception | None = None

    def write(self, data: memoryview, position: int) -> None:
        if self.error is None:
            try:
                pwrite_all(self.fd, data, position)
                self.syncer.wrote(len(data))
            except OSError as exc:
                self.error = storage_error(exc, "writing the upload")
                log.warning("upload of %r failed: %s", self.path, exc)


def _try_reply(channel: Channel, error: FtError) -> None:
    try:
        channel.send(error_reply(error))
    except FtError:
        pass


def _keep_partial(fd: int) -> None:
    """Make what arrived durable so a later ``put`` can resume from it."""
    try:
        os.fsync(fd)
    except OSError as exc:
        log.warning("could not fsync an interrupted partial: %s", exc)


def send_download(
    channel: Channel, storage: Storage, request: GetRequest, timeout: float,
    throttle: Throttle = UNLIMITED,
) -> TransferResult:
    """Serve one ``get``. ``timeout`` bounds the sending of each chunk of raw bytes."""
    target = storage.names.resolve(request.path)
    fd, before = storage.names.open_for_read(target)
    try:
        return _send_from(channel, storage, request, target, fd, before, timeout, throttle)
    finally:
        os.close(fd)


def _send_from(
    channel: Channel,
    storage: Storage,
    request: GetRequest,
    target: Target,
    fd: int,
    before: os.stat_result,
    timeout: float,
    throttle: Throttle,
) -> TransferResult:
    size = before.st_size
    cached = storage.digests.known(target.real, before)
    offset = request.offset
    hasher = hashlib.sha256()
    if offset > size:
        offset = 0
    elif offset:
        hasher = hash_prefix(fd, offset)
        if hasher.hexdigest() != request.prefix_sha256:
            offset, hasher = 0, hashlib.sha256()
    channel.send(GetReady(size, before.st_mtime, offset, cached).to_dict())

    reached = offset

    def sent(position: int) -> None:
        nonlocal reached
        reached = position

    try:
        if cached is not None:
            send_file(channel, fd, offset, size - offset, timeout, sent, throttle=throttle)
            digest = cached
        else:
            # No digest cached: hash alongside the send.
            digest = send_file_hashed(channel, fd, offset, size - offset, hasher, timeout,
                                      sent, throttle=throttle)
    except OSError as exc:
        raise StreamBroken(storage_error(exc, f"reading {request.path!r}"),
                           moved=reached - offset) from None
    except FtError as exc:
        raise StreamBroken(exc, moved=reached - offset) from None

    # A rename over the name is harmless (we sent the old file whole); a write into
    # the file we were reading is not.
    now = os.fstat(fd)
    if not unchanged_while_open(before, now):
        channel.send(error_reply(SourceChanged(f"{request.path!r} changed while it was sent")))
        return TransferResult(request.path, size, offset, size - offset)
    if cached is None and _same_file(target.real, before):
        # Only while the name still holds what we read: a newer version's entry stays.
        storage.digests.remember(target.real, before, digest)
    channel.send(GetEnd(digest).to_dict())
    return TransferResult(request.path, size, offset, size - offset)


def _same_file(path: str, before: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    return now.st_ino == before.st_ino and content_stamp(now) == content_stamp(before)
