"""Streamed uploads: ``put`` with ``stream: true``, so many small files share one round trip.

The client sends the request, then at once all ``size`` raw bytes, then
``put_end``, and reads the single reply later; it may have several such uploads
in flight. So the server must consume exactly those bytes and that closing
frame for every streamed put, whatever happens to it, before it answers, or the
stream would fall out of step. A refused streamed put (bad name, locked, no
permission, no space) is therefore drained and then answered with its error.
Only a streamed put whose ``size`` cannot be read leaves the stream unknowable:
its connection is closed.

A streamed upload never resumes: it writes to a partial of its own (so it
cannot disturb a resumable partial of a normal ``put`` of the same name) and is
published exactly as a normal upload is, after its SHA-256 is checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from typing import Any

from common.channel import Channel
from common.durable import pwrite_all
from common.errors import FtError, IntegrityError, Locked, ProtocolError
from common.messages import (
    PutDone,
    PutEnd,
    PutRequest,
    error_reply,
    parse_request,
    read_int,
)
from common.ratelimit import UNLIMITED, Throttle
from ftserver.locks import NameLock
from ftserver.partialcap import STREAM_SUFFIX
from ftserver.storage import Storage, Target, storage_error
from ftserver.transfers import StreamBroken, TransferResult
from ftserver.treelock import TreeLock

log = logging.getLogger("ftserver.streamput")

CHUNK = 256 * 1024


def is_streamed_put(frame: dict[str, Any]) -> bool:
    """True for a ``put`` frame asking to stream (its bytes follow whether we accept or not)."""
    return frame.get("op") == "put" and frame.get("stream") is True


def refuse_streamed_put(
    channel: Channel, frame: dict[str, Any], error: FtError, timeout: float
) -> None:
    """Consume a refused streamed put's bytes and closing frame, then answer ``error``."""
    try:
        size = read_int(frame, "size")
    except ProtocolError:
        _try_send(channel, error_reply(error))
        raise StreamBroken(ProtocolError("a streamed put without a valid size; closing")) from None
    try:
        _drain(channel, size, timeout)
        _expect_end(channel, timeout)
    except FtError as exc:
        raise StreamBroken(exc) from None
    channel.send(error_reply(error))


def receive_streamed_upload(
    channel: Channel, storage: Storage, request: PutRequest, timeout: float,
    throttle: Throttle = UNLIMITED,
) -> TransferResult | FtError:
    """Serve one streamed ``put`` and answer it; return what happened (an error: answered).

    Errors before any byte is consumed (name, lock, space) are raised instead, for
    the caller to pass to ``refuse_streamed_put``.
    """
    target = storage.resolve(request.path)
    # Held from before the folders are made: a folder removal cannot slip in between.
    with TreeLock(storage.locks_dir).shared(), NameLock(storage.locks_dir, target.key) as lock:
        storage.prepare_parent(target)
        storage.check_free_space(target, request.size, 0)
        if not lock.try_acquire():
            raise Locked(f"another upload to {request.path!r} is in progress; try again later")
        partial = os.path.join(storage.partials_dir, target.key + STREAM_SUFFIX)
        try:
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise storage_error(exc, "opening the upload's partial") from None
        try:
            reply = _receive_and_publish(channel, storage, request, target, partial, fd,
                                         timeout, throttle)
        finally:
            os.close(fd)
            if os.path.exists(partial):
                os.unlink(partial)  # nothing here is ever resumed
    if isinstance(reply, FtError):
        channel.send(error_reply(reply))
        return reply
    channel.send(reply.to_dict())
    return TransferResult(request.path, request.size, 0, request.size)


def _receive_and_publish(
    channel: Channel, storage: Storage, request: PutRequest, target: Target, partial: str,
    fd: int, timeout: float, throttle: Throttle,
) -> PutDone | FtError:
    """Take in the bytes and the closing frame; return the reply to send (success or error)."""
    hasher = hashlib.sha256()
    write_error: FtError | None = None

    def write(chunk: memoryview, position: int) -> None:
        nonlocal write_error
        hasher.update(chunk)
        if write_error is None:
            try:
                pwrite_all(fd, chunk, position)
            except OSError as exc:
                write_error = storage_error(exc, "writing the upload")
                log.warning("streamed upload of %r failed: %s", request.path, exc)

    try:
        _drain(channel, request.size, timeout, write, throttle)
        end = _expect_end(channel, timeout)
    except FtError as exc:
        raise StreamBroken(exc) from None
    if write_error is not None:
        return write_error
    digest = hasher.hexdigest()
    if end.sha256 != digest or (request.sha256 is not None and request.sha256 != digest):
        return IntegrityError(
            f"{request.path!r} arrived with SHA-256 {digest[:16]}..., not the "
            f"{end.sha256[:16]}... announced; nothing was published")
    try:
        published = storage.publish(partial, fd, target, request.mtime)
    except FtError as exc:
        return exc
    storage.hashes.put(target.real, published, digest)
    return PutDone(request.size, digest)


def _drain(channel: Channel, count: int, timeout: float, sink: Any = None,
           throttle: Throttle = UNLIMITED) -> None:
    """Read ``count`` raw bytes, handing each chunk and its offset to ``sink`` (if any)."""
    channel.expect_raw(count)
    buffer = bytearray(min(throttle.chunk_size(CHUNK), max(count, 1)))
    view = memoryview(buffer)
    position = 0
    while position < count:
        chunk = view[: min(count - position, len(buffer))]
        channel.recv_raw_exactly(chunk, deadline=time.monotonic() + timeout)
        if sink is not None:
            sink(chunk, position)
        position += len(chunk)
        throttle.wait(len(chunk))


def _expect_end(channel: Channel, timeout: float) -> PutEnd:
    request = parse_request(channel.receive(deadline=time.monotonic() + timeout))
    if not isinstance(request, PutEnd):
        raise ProtocolError(f"expected 'put_end' after a streamed put, got {type(request).OP!r}")
    return request


def _try_send(channel: Channel, reply: dict[str, Any]) -> None:
    try:
        channel.send(reply)
    except FtError:
        pass
