"""ft's ``get`` over a Channel: the protocol's frames around the one download (ops/download.py).

``get`` → ``get_ready`` (size, mtime, the offset it goes on from, the SHA-256 when
known) → the raw bytes → ``get_end`` with the whole file's SHA-256, or a
``changed`` error if the file was written to meanwhile. Once raw bytes flow, any
failure leaves the stream out of step: StreamBroken, and the session closes. The order
is the conversation's table's (common/protocol/conversation.py), fed as it goes.
"""

from __future__ import annotations

from common.io.channel import Channel
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.conversation import ERROR, GET_END, GET_READY, Conversation
from common.protocol.errors import FtError, SourceChanged
from common.protocol.replies import GetEnd, GetReady, error_reply
from common.protocol.requests import GetRequest
from ftserver.ops.download import Download
from ftserver.ops.outcome import TransferResult
from ftserver.session.streambroken import StreamBroken
from ftserver.store.base import Share
from ftserver.store.diskerrors import storage_error


def serve_get(channel: Channel, talk: Conversation, storage: Share, request: GetRequest,
              timeout: float, throttle: Throttle = UNLIMITED) -> TransferResult:
    """Serve one ``get``. ``timeout`` bounds the sending of each span of raw bytes."""
    with Download(storage, request.path, channel.peer_hung_up) as download:
        offset = download.resume_from(request.offset, request.prefix_sha256)
        size = download.size
        channel.send(GetReady(size, download.mtime, offset, download.digest).to_dict())
        talk.reply(GET_READY, size - offset)
        reached = offset

        def sent(position: int) -> None:
            nonlocal reached
            reached = position

        try:
            digest = download.send(channel, offset, timeout, throttle, sent)
        except OSError as exc:
            raise StreamBroken(storage_error(exc, f"reading {request.path!r}"),
                               moved=reached - offset) from None
        except FtError as exc:
            raise StreamBroken(exc, moved=reached - offset) from None
        talk.server_raw(size - offset)
        result = TransferResult(request.path, size, offset, size - offset)
        try:
            download.finish(digest)
        except SourceChanged as exc:
            channel.send(error_reply(exc))
            talk.reply(ERROR)
            return result
        channel.send(GetEnd(digest).to_dict())
        talk.reply(GET_END)
        return result
