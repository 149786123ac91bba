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
published as a normal upload is, after its SHA-256 is checked. Its answer joins
the session's burst (streamburst.py), which sends it once the folder's fsync is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from typing import Any

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import Writer, receive_file_hashed
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.errors import FtError, IntegrityError, Locked, ProtocolError
from common.protocol.fastpath import parse_put_end
from common.protocol.fields import read_int
from common.protocol.replies import PutDone
from common.protocol.requests import PutEnd, PutRequest
from ftserver.ops.streamburst import Published, StreamBurst
from ftserver.ops.transfers import StreamBroken
from ftserver.store.diskerrors import storage_error
from ftserver.store.names import OpenFolder, Target
from ftserver.store.partialcap import STREAM_SUFFIX
from ftserver.store.storage import Storage

log = logging.getLogger("ftserver.streamput")


def is_streamed_put(frame: dict[str, Any]) -> bool:
    """True for a ``put`` frame asking to stream (its bytes follow whether we accept or not)."""
    return frame.get("op") == "put" and frame.get("stream") is True


def refuse_streamed_put(
    channel: Channel, frame: dict[str, Any], error: FtError, timeout: float,
    burst: StreamBurst, started: float,
) -> None:
    """Consume a refused streamed put's bytes and closing frame; its answer joins the burst.

    A streamed put whose size cannot be read breaks the stream: its answer still
    joins the burst (sent before the connection closes), then StreamBroken.
    """
    try:
        size = read_int(frame, "size")
    except ProtocolError:
        burst.refused(frame, error, started)
        raise StreamBroken(ProtocolError("a streamed put without a valid size; closing")
                           ) from None
    try:
        _receive(channel, size, _discard, timeout, UNLIMITED)
        _expect_end(channel, timeout)
    except FtError as exc:
        raise StreamBroken(exc) from None
    burst.refused(frame, error, started)


def receive_streamed_upload(
    channel: Channel, storage: Storage, request: PutRequest, timeout: float,
    burst: StreamBurst, frame: dict[str, Any], started: float,
    throttle: Throttle = UNLIMITED,
) -> None:
    """Serve one streamed ``put``; its answer joins the burst (an error too, once its bytes
    are consumed).

    Errors before any byte is consumed (name, lock, space) are raised instead, for
    the caller to pass to ``refuse_streamed_put``.
    """
    target, parent = burst.place(storage, request.path)
    burst.check_space(storage, parent, request.size)
    if not burst.lock_name(storage, target):  # held until the burst ends
        raise Locked(f"another upload to {request.path!r} is in progress; try again later")
    partial = os.path.join(storage.partials_dir, target.key + STREAM_SUFFIX)
    try:
        fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise storage_error(exc, "opening the upload's partial") from None
    try:
        outcome = _receive_and_publish(channel, storage, request, target, parent, partial,
                                       fd, timeout, throttle)
    except BaseException:
        _remove(partial)
        raise
    finally:
        os.close(fd)
    if isinstance(outcome, FtError):
        _remove(partial)  # nothing here is ever resumed
        burst.refused(frame, outcome, started)
    else:
        burst.published(frame, outcome, started)


def _receive_and_publish(
    channel: Channel, storage: Storage, request: PutRequest, target: Target,
    parent: OpenFolder, partial: str, fd: int, timeout: float, throttle: Throttle,
) -> Published | FtError:
    """Take in the bytes and the closing frame; rename into place, or return the error."""
    sink = _WriteUntilFailure(fd, request.path)
    try:
        digest = _receive(channel, request.size, sink.write, timeout, throttle)
        end = _expect_end(channel, timeout)
    except FtError as exc:
        raise StreamBroken(exc) from None
    if sink.error is not None:
        return sink.error
    if end.sha256 != digest or (request.sha256 is not None and request.sha256 != digest):
        return IntegrityError(
            f"{request.path!r} arrived with SHA-256 {digest[:16]}..., not the "
            f"{end.sha256[:16]}... announced; nothing was published")
    try:
        published = storage.publish(partial, fd, target, request.mtime, parent)
    except FtError as exc:
        return exc
    return Published(target, os.path.dirname(target.real), published,
                     PutDone(request.size, digest))


class _WriteUntilFailure:
    """Writes an upload into its partial; after a failed write it drops the rest (which
    must still be read, to keep the stream in step) and keeps the error to answer with."""

    def __init__(self, fd: int, name: str) -> None:
        self.fd = fd
        self.name = name
        self.error: FtError | None = None

    def write(self, chunk: memoryview, position: int) -> None:
        if self.error is not None:
            return
        try:
            pwrite_all(self.fd, chunk, position)
        except OSError as exc:
            self.error = storage_error(exc, "writing the upload")
            log.warning("streamed upload of %r failed: %s", self.name, exc)


def _receive(channel: Channel, size: int, write: Writer, timeout: float,
             throttle: Throttle) -> str:
    """Take in a streamed put's ``size`` bytes through ``write``; return their SHA-256.

    A small file whose bytes all arrived with its header (most of a pipelined burst)
    is hashed and written at once: for 4 KiB the receive loop's deadline, buffers and
    pipe cost more than the hash. Bytes still to come, or a throttle to pay, take the loop.
    """
    data = None if throttle.limited else channel.take_raw_buffered(size)
    if data is None:
        return receive_file_hashed(channel, 0, size, hashlib.sha256(), write, timeout,
                                   throttle=throttle)
    if data:
        write(memoryview(data), 0)
    return hashlib.sha256(data).hexdigest()


def _discard(chunk: memoryview, position: int) -> None:
    """The writer for a refused streamed put: its bytes are read and dropped."""


def _remove(partial: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)


def _expect_end(channel: Channel, timeout: float) -> PutEnd:
    request = channel.receive_decoded(parse_put_end, deadline=time.monotonic() + timeout)
    if not isinstance(request, PutEnd):
        raise ProtocolError(f"expected 'put_end' after a streamed put, got {type(request).OP!r}")
    return request
