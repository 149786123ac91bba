"""ft's resumable ``put`` over a Channel: the protocol's frames around the one upload.

``put`` (name, size, mtime, maybe the SHA-256) → ``put_ready`` (the offset this
upload's partial holds, with the digest of those bytes) → ``put_data`` (the
sender's choice: go on from there, or 0) and the raw bytes → ``put_end`` (the
SHA-256 of the whole file) → ``put_done``, sent once the file is published and its
name's lock let go. The steps themselves are ops/upload.py's. A failure once raw
bytes may be flowing leaves the stream out of step: StreamBroken, and the session
closes; what arrived stays in the partial for the next attempt. The order, and the
offsets put_data may take, are the conversation's table's (common/protocol/conversation.py).
"""

from __future__ import annotations

from common.io.channel import Channel
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.conversation import PUT_DONE, PUT_READY, Conversation
from common.protocol.errors import FtError
from common.protocol.replies import PutDone, PutReady, error_reply
from common.protocol.requests import PutData, PutEnd, PutRequest
from ftserver.ops.outcome import TransferResult
from ftserver.ops.upload import Upload, UploadPlan
from ftserver.session.expect import expect_next
from ftserver.session.streambroken import StreamBroken
from ftserver.store.base import Share, Sharing

CLIENT_PREFIX_RATE_FLOOR = 1_000_000
"""Bytes/s a client is assumed to hash its resume prefix at, at worst (slow media)."""


def serve_put(channel: Channel, talk: Conversation, storage: Share, request: PutRequest, owner: str,
              timeout: float, throttle: Throttle = UNLIMITED) -> TransferResult:
    """Serve one resumable ``put``. ``timeout`` bounds each wait: a frame, or each span of
    raw bytes. The folders above the target stay put until the reply is sent."""
    with storage.folder_locks() as folder_locks:
        return _serve_put(channel, talk, storage, request, owner,
                          storage.alone(folder_locks), timeout, throttle)


def _serve_put(channel: Channel, talk: Conversation, storage: Share, request: PutRequest,
               owner: str, sharing: Sharing, timeout: float, throttle: Throttle
               ) -> TransferResult:
    plan = UploadPlan(request.path, request.size, request.mtime, request.sha256, owner)
    upload = Upload(storage, plan, sharing)
    try:
        upload.open()
        channel.send(PutReady(upload.held, upload.held_digest()).to_dict())
        talk.reply(PUT_READY, upload.held)
        try:
            # Meanwhile the client hashes its first `held` bytes, perhaps from a slow USB
            # stick or network drive. Waiting costs us one descriptor, so be generous.
            with upload.watch_for_takeover(channel):
                data = expect_next(channel, talk, PutData,
                               timeout + upload.held / CLIENT_PREFIX_RATE_FLOOR)
        except FtError as exc:
            # Raw bytes may already be on their way: the stream cannot be trusted any more.
            _try_reply(channel, exc)
            raise StreamBroken(exc) from None
        upload.start(data.offset)
        try:
            digest = upload.receive(channel, timeout, throttle)
            talk.client_raw(request.size - data.offset)
        except FtError as exc:
            raise StreamBroken(exc, moved=upload.received()) from None
        end = expect_next(channel, talk, PutEnd, timeout)
        done = upload.finish(digest, end.sha256)
    finally:
        upload.close()
    # Confirm only once the name is free again: a client that goes straight on to
    # another put of it must not be told "locked" by its own finished upload.
    channel.send(PutDone(done.size, done.sha256).to_dict())
    talk.reply(PUT_DONE)
    return TransferResult(request.path, request.size, done.offset, request.size - done.offset)


def _try_reply(channel: Channel, error: FtError) -> None:
    try:
        channel.send(error_reply(error))
    except FtError:
        pass
