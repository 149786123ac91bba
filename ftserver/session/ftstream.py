"""ft's streamed ``put`` (``stream: true``): many small files sharing one round trip.

The client sends the request, then at once all ``size`` raw bytes, then
``put_end``, and reads the single reply later; it may have several such uploads
in flight. So the server must consume exactly those bytes and that closing
frame for every streamed put, whatever happens to it, before it answers, or the
stream would fall out of step. A refused streamed put (bad name, locked, no
permission, no space) is therefore drained and then answered with its error.
Only a streamed put whose ``size`` cannot be read leaves the stream unknowable:
its connection is closed. The order (request, ``size`` raw bytes, ``put_end``) is
the conversation's table's (common/protocol/conversation.py), fed as it goes.

A streamed upload never resumes: it is the one upload (ops/upload.py) with a
partial of its own, in the session's batch (the store's ``Batch``); its answer is
held in the session's burst (ftburst.py) until the batch's folders are durable.
"""

from __future__ import annotations

from typing import Any

from common.io.channel import Channel
from common.io.filereceive import drain_raw
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.conversation import STREAM_PUT, Conversation
from common.protocol.errors import FtError, ProtocolError
from common.protocol.fields import read_int
from common.protocol.requests import PutEnd, PutRequest
from ftserver.ops.upload import Upload, UploadPlan
from ftserver.session.expect import expect_next
from ftserver.session.ftburst import ReplyBurst
from ftserver.session.streambroken import StreamBroken
from ftserver.store.base import Share


def is_streamed_put(frame: dict[str, Any]) -> bool:
    """True for a ``put`` frame asking to stream (its bytes follow whether we accept or not)."""
    return frame.get("op") == "put" and frame.get("stream") is True


def serve_streamed_put(
    channel: Channel, talk: Conversation, storage: Share, request: PutRequest, owner: str,
    timeout: float,
    burst: ReplyBurst, frame: dict[str, Any], started: float,
    throttle: Throttle = UNLIMITED,
) -> None:
    """Serve one streamed ``put``; its answer joins the burst (an error too, once its bytes
    are consumed).

    Errors before any byte is consumed (name, lock, space) are raised instead, for
    the caller to pass to ``refuse_streamed_put``.
    """
    plan = UploadPlan(request.path, request.size, request.mtime, request.sha256, owner,
                      resumable=False)
    with Upload(storage, plan, burst.batch(storage)) as upload:
        upload.open()
        upload.start(0)
        try:
            digest = upload.receive(channel, timeout, throttle)
            talk.client_raw(request.size)
            end = expect_next(channel, talk, PutEnd, timeout)
        except FtError as exc:
            raise StreamBroken(exc) from None
        try:
            done = upload.finish(digest, end.sha256)
        except FtError as exc:
            burst.refused(frame, exc, started)
            return
    burst.published(frame, done, started)


def refuse_streamed_put(
    channel: Channel, talk: Conversation, frame: dict[str, Any], error: FtError,
    timeout: float, burst: ReplyBurst, started: float, heard: bool,
) -> None:
    """Consume a refused streamed put's bytes and closing frame; its answer joins the burst.
    ``heard``: ``talk`` was told of the request already (it was read, then refused).

    A streamed put whose size cannot be read breaks the stream: its answer still
    joins the burst (sent before the connection closes), then StreamBroken.
    """
    try:
        size = read_int(frame, "size")
    except ProtocolError:
        talk.refused()  # answered with its error, and then nothing more is read
        talk.broken()
        burst.refused(frame, error, started)
        raise StreamBroken(ProtocolError("a streamed put without a valid size; closing")
                           ) from None
    if not heard:
        talk.request(STREAM_PUT, size)
    try:
        drain_raw(channel, size, timeout)
        talk.client_raw(size)
        expect_next(channel, talk, PutEnd, timeout)
    except FtError as exc:
        raise StreamBroken(exc) from None
    burst.refused(frame, error, started)
