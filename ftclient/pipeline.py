"""Many small files over one connection without a round trip each: pipelined puts and gets.

Uploads use streamed puts (``put`` with ``stream: true``): request, raw bytes and
``put_end`` go out back to back, and the replies, one per file, are read later,
in order, keeping at most WINDOW files unanswered. Downloads send up to WINDOW
``get`` requests ahead of the replies; the server answers them in order. A
refused file costs only its own reply: the stream stays in step, because the
server consumes a refused streamed put's bytes before it answers. Each run feeds
the conversation's table (common/protocol/conversation.py) what it queues and reads:
it holds the order, and counts each file's raw bytes against the size announced.

Each file's result goes to the caller's ``answered`` callback the moment its reply
is in, with the file's position, so that when the connection is cut (the call
raises) the caller knows which files were answered and which must be sent
again. A send that finds the connection lost ends the sending, not the reading:
the replies that arrived before the loss are still read and answered, and only
then does the call raise. This module works on a Channel that ``Client`` hands
it and never opens or closes one; on ConnectionLost, Timeout or a malformed
reply the caller drops the connection and decides whether to retry
(``Client._pipelined``). Like the rest of the library it prints nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import receive_file_hashed
from common.io.hashing import unchanged_while_open
from common.io.ratelimit import UNLIMITED, Throttle
from common.protocol.conversation import (
    CLIENT,
    ERROR,
    GET,
    GET_END,
    GET_READY,
    PUT_DONE,
    PUT_END,
    STREAM_PUT,
    Conversation,
)
from common.protocol.errors import (
    Busy,
    ConnectionLost,
    FtError,
    IntegrityError,
    InternalError,
    NotFound,
    PermissionDenied,
    ProtocolError,
    SourceChanged,
)
from common.protocol.frames import encode_frame
from common.protocol.replies import GetEnd, GetReady, PutDone, check_reply
from common.protocol.requests import GetRequest, PutEnd, PutRequest
from ftclient.localfiles import HeldPartial, local_error, lock_partial, spot_for

WINDOW = 128
"""Files in flight: small replies only, so both sides' socket buffers hold them all.
Twice the server's burst (streamburst.MAX_FILES, 64), so that the next burst's files
are arriving while one settles: 2000 files of 4 KiB over loopback went at about 3300-3700
files/s with 32 in flight and 3700-4500 with 64 to 256 (adjacent runs, one machine)."""
FLUSH_FILES = 8
"""Files queued before a send at most, so that the server works while we read more."""
PIPELINE_MAX_SIZE = 1 << 20
"""Larger files go one by one through the resumable put and get instead."""
CHUNK = 256 * 1024
ABANDONED_SHA256 = "0" * 64
"""Sent as put_end's digest for a file that changed while it was sent: it cannot match,
so the server publishes nothing (the stream must still carry all announced bytes)."""


@dataclass(frozen=True)
class PipedFile:
    """One file of a pipelined transfer: its local path and remote name.

    ``within``: for a download, the folder the user named, below which ``local``'s
    folders are reached without following symlinks (``localfiles.open_folder``);
    None: ``local``'s own folder is taken as it is."""

    local: str
    remote: str
    within: str | None = None


@dataclass(frozen=True)
class PipedResult:
    """What happened to one file: its size and digest, or the error that stopped it."""

    local: str
    remote: str
    size: int
    sha256: str | None
    error: FtError | None = None
    resumed_from: int = 0
    """Bytes the other side held already (a resumed file): moved were ``size`` less these."""


@dataclass(frozen=True)
class _Sent:
    """A file whose streamed put went out (or was given up before it was announced)."""

    item: PipedFile
    size: int
    digest: str | None
    """Its SHA-256 as sent; None if it was never announced, so no reply will come."""
    problem: FtError | None


BytesCallback = Callable[[str, int], None]
"""Called with a remote name and a count of bytes that just moved (0 when a file starts).
``Client.put_many``/``get_many`` give none to this module: they report each file's size
once it is answered, so that a file sent again after a cut never counts twice."""
AnsweredCallback = Callable[[int, "PipedResult"], None]
"""Called with a file's position in the list given and its result, once it is answered."""


def _reply_error(frame: dict[str, Any]) -> FtError | None:
    """The FtError an error reply carries (a refusal of one file), or None for success."""
    if frame.get("ok") is not False:
        return None
    try:
        check_reply(frame)
    except FtError as exc:
        return exc
    raise ProtocolError("an error reply that is not one")


# ---------------------------------------------------------------- uploads


def put_pipelined(
    channel: Channel, files: Sequence[PipedFile], timeout: float,
    answered: AnsweredCallback, throttle: Throttle = UNLIMITED,
) -> None:
    """Upload ``files`` (each at most PIPELINE_MAX_SIZE) as streamed puts; ``answered`` hears
    each file's result. A cut raises; the files not yet answered may or may not be published."""
    outbox = _Outbox(channel)
    try:
        _put_all(outbox, files, timeout, answered, throttle)
    except ConnectionLost as exc:
        if outbox.goodbye is None:
            raise
        # The server said why before it closed (it is shutting down): that is the cause.
        raise ConnectionLost(outbox.goodbye.message) from exc


def _put_all(outbox: _Outbox, files: Sequence[PipedFile], timeout: float,
             answered: AnsweredCallback, throttle: Throttle) -> None:
    waiting: deque[tuple[int, _Sent]] = deque()
    for index, item in enumerate(files):
        if outbox.lost is not None:
            break  # the files from here on were never sent: the caller sends them again
        if len(waiting) >= WINDOW:
            outbox.flush()  # the server may be waiting for the rest of a file
            # One reply, then every reply already here: the server answers in bursts,
            # and the files that take their places then go out together.
            _take_replies(outbox, waiting, answered, timeout)
        try:
            fd = os.open(item.local, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            answered(index, PipedResult(item.local, item.remote, 0, None,
                                        _unreadable(item, exc)))
            continue
        try:
            waiting.append((index, _stream_one(outbox, fd, item, throttle)))
        finally:
            os.close(fd)
        if outbox.files >= FLUSH_FILES:
            outbox.flush()  # let the server start on these while we read the next ones
    outbox.flush()
    while waiting:  # after a lost send, up to the first file whose reply never came
        _take_replies(outbox, waiting, answered, timeout)
    if outbox.lost is not None:
        raise outbox.lost
    outbox.settled()


def _take_replies(outbox: _Outbox, waiting: deque[tuple[int, _Sent]],
                  answered: AnsweredCallback, timeout: float) -> None:
    """Match replies to the oldest files sent: wait for one, then take every one that has
    already arrived whole."""
    channel, talk = outbox.channel, outbox.talk
    wait = True
    while waiting:
        index, sent = waiting[0]
        frame = None
        if sent.digest is not None:  # announced: it has a reply coming
            if wait:
                frame = channel.receive(deadline=time.monotonic() + timeout)
                wait = False
            else:
                frame = channel.receive_buffered()
                if frame is None:
                    return
            talk.reply(ERROR if frame.get("ok") is False else PUT_DONE)
        waiting.popleft()
        outcome = _put_outcome(sent, frame)
        if isinstance(outcome.error, Busy):  # sent only by a server shutting down
            outbox.goodbye = outcome.error
        answered(index, outcome)


class _Outbox:
    """Gathers frames and raw bytes of several small files into few large sends.

    A send that finds the connection lost is kept in ``lost`` instead of raised, and
    whatever is queued after it is dropped: the replies that arrived before the loss
    (the other side may have reset the connection long after sending them, while we
    were still reading) can then still be read.
    """

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.talk = Conversation(CLIENT, greeted=True)  # a run starts on a settled connection
        """The run's conversation, fed each frame as it is queued and each reply read."""
        self.pending = bytearray()
        self.files = 0
        """Streamed puts queued since the last send."""
        self.lost: ConnectionLost | None = None
        self.goodbye: Busy | None = None
        """A reply saying the server is going away: why the connection will close."""

    def frame(self, obj: dict[str, Any]) -> None:
        if self.lost is None:
            self.pending += encode_frame(obj, self.channel.max_frame)
            self._maybe_flush()

    def raw(self, data: bytes | memoryview) -> None:
        if self.lost is None:
            self.pending += data
            self._maybe_flush()

    def _maybe_flush(self) -> None:
        if len(self.pending) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            try:
                self.channel.send_raw(self.pending)
            except ConnectionLost as exc:
                self.lost = exc
            self.pending = bytearray()
        self.files = 0

    def settled(self) -> None:
        """Check that the run left nothing unsent or unanswered: the connection is back
        between requests, so the next request may use it."""
        if self.pending or not self.talk.settled:
            raise InternalError("a pipelined run ended with answers still owed")


def _unreadable(item: PipedFile, exc: OSError) -> FtError:
    if isinstance(exc, FileNotFoundError):
        return NotFound(f"local file {item.local!r} does not exist")
    return PermissionDenied(f"cannot read {item.local!r}: {exc.strerror or exc}")


def _stream_one(outbox: _Outbox, fd: int, item: PipedFile, throttle: Throttle) -> _Sent:
    """Queue request, bytes and put_end for one file; return what to match its reply with."""
    before = os.fstat(fd)
    if not stat.S_ISREG(before.st_mode):
        return _Sent(item, 0, None, PermissionDenied(f"{item.local!r} is not a regular file"))
    size = before.st_size
    talk = outbox.talk
    talk.request(STREAM_PUT, size)
    outbox.frame(PutRequest(item.remote, size, before.st_mtime, stream=True).to_dict())
    hasher = hashlib.sha256()
    problem: FtError | None = None
    step = throttle.chunk_size(CHUNK)
    position = 0
    while position < size and outbox.lost is None:  # once lost, no byte more goes out
        want = min(size - position, step)
        chunk = b""
        if problem is None:
            try:  # pread's own bytes: for a small file, cheaper than filling a buffer
                chunk = os.pread(fd, want, position)
            except OSError as exc:
                problem = PermissionDenied(f"cannot read {item.local!r}: {exc.strerror or exc}")
            if not chunk and problem is None:
                problem = SourceChanged(f"{item.local!r} shrank while it was sent")
        if problem is not None:  # the announced bytes must still go out
            chunk = bytes(want)
        hasher.update(chunk)
        talk.client_raw(len(chunk))
        outbox.raw(chunk)
        throttle.wait(len(chunk))
        position += len(chunk)
    if problem is None and not unchanged_while_open(before, os.fstat(fd)):
        problem = SourceChanged(f"{item.local!r} changed while it was sent; "
                                "nothing was published")
    digest = hasher.hexdigest()
    if outbox.lost is not None:  # nothing more goes out; its reply will never come
        return _Sent(item, size, digest, problem)
    talk.request(PUT_END)
    outbox.frame(PutEnd(ABANDONED_SHA256 if problem else digest).to_dict())
    outbox.files += 1
    return _Sent(item, size, digest, problem)


def _put_outcome(sent: _Sent, frame: dict[str, Any] | None) -> PipedResult:
    """The result of one file sent, from its reply (None: it was never announced)."""
    item, size, digest, problem = sent.item, sent.size, sent.digest, sent.problem
    if frame is None or digest is None:
        return PipedResult(item.local, item.remote, size, None, problem)
    error = _reply_error(frame)
    if problem is not None:
        return PipedResult(item.local, item.remote, size, None, problem)
    if error is not None:
        return PipedResult(item.local, item.remote, size, None, error)
    done = PutDone.from_dict(frame)
    if done.sha256 != digest or done.size != size:
        return PipedResult(item.local, item.remote, size, None, IntegrityError(
            f"{item.remote!r}: the server confirmed different content"))
    return PipedResult(item.local, item.remote, size, digest)


# ---------------------------------------------------------------- downloads


def get_pipelined(
    channel: Channel, files: Sequence[PipedFile], timeout: float,
    answered: AnsweredCallback, throttle: Throttle = UNLIMITED,
) -> None:
    """Download ``files`` (remote to local path) with pipelined gets; ``answered`` hears
    each file's result. A cut raises, and the file then arriving is left unpublished.

    Each destination's folder must exist. A file arrives in a hidden partial
    beside it, is checked against the server's SHA-256 and only then renamed
    into place with the server's mtime. Pipelined gets never resume: a file is
    fetched from its first byte, so one cut short is simply asked for again.
    """
    asked = 0
    outbox = _Outbox(channel)
    for index, item in enumerate(files):
        while outbox.lost is None and asked < len(files) and asked - index < WINDOW:
            outbox.talk.request(GET)
            outbox.frame(GetRequest(files[asked].remote).to_dict())
            asked += 1
        outbox.flush()
        if outbox.lost is not None and index >= asked:
            raise outbox.lost  # never asked: the caller asks again
        answered(index, _receive_one(channel, outbox.talk, item, timeout, throttle))
    outbox.settled()


def _receive_one(
    channel: Channel, talk: Conversation, item: PipedFile, timeout: float, throttle: Throttle,
) -> PipedResult:
    frame = channel.receive(deadline=time.monotonic() + timeout)
    error = _reply_error(frame)
    if error is not None:
        talk.reply(ERROR)
        return PipedResult(item.local, item.remote, 0, None, error)
    ready = GetReady.from_dict(frame)
    if ready.offset != 0:
        raise ProtocolError(f"server offered offset {ready.offset} for a fresh download")
    talk.reply(GET_READY, ready.size)
    partial, problem = _open_partial(item)
    fd = None if partial is None else partial.fd
    try:
        sink = _DiscardAfterFailure(fd, item.local, problem)
        digest = receive_file_hashed(channel, 0, ready.size, hashlib.sha256(), sink.write,
                                     timeout, None, throttle)
        talk.server_raw(ready.size)
        problem = sink.problem
        frame = channel.receive(deadline=time.monotonic() + timeout)
        error = _reply_error(frame)
        end = None if error is not None else GetEnd.from_dict(frame)
        talk.reply(GET_END if end is not None else ERROR)
        if error is None and problem is None and end is not None and (
                digest != end.sha256 or (ready.sha256 is not None and digest != ready.sha256)):
            error = IntegrityError(f"{item.remote!r} arrived with a different SHA-256 than "
                                   "the server announced; it was discarded")
        if error is None and problem is None and partial is not None:
            try:
                partial.publish(ready.mtime)
            except OSError as exc:
                problem = _write_error(exc, item.local)
            else:
                return PipedResult(item.local, item.remote, ready.size, digest)
        if partial is not None:
            with contextlib.suppress(OSError):
                partial.discard()
        return PipedResult(item.local, item.remote, ready.size, None, error or problem)
    finally:
        if partial is not None:
            partial.close()


class _DiscardAfterFailure:
    """Writes a download into its partial until a write fails; after that, drops the bytes
    (they must still be read off the stream to keep it in step)."""

    def __init__(self, fd: int | None, destination: str, problem: FtError | None) -> None:
        self.fd = fd
        self.destination = destination
        self.problem = problem

    def write(self, chunk: memoryview, position: int) -> None:
        if self.fd is None or self.problem is not None:
            return
        try:
            pwrite_all(self.fd, chunk, position)
        except OSError as exc:
            self.problem = _write_error(exc, self.destination)


def _open_partial(item: PipedFile) -> tuple[HeldPartial | None, FtError | None]:
    """Open, lock and empty the partial for a fresh download (its bytes arrive regardless)."""
    try:
        partial = lock_partial(spot_for(item.local, item.within))
    except FtError as exc:  # Locked, or a symlink in the way (PermissionDenied)
        return None, exc
    except OSError as exc:
        return None, _write_error(exc, item.local)
    try:
        os.ftruncate(partial.fd, 0)
    except OSError as exc:
        partial.close()
        return None, _write_error(exc, item.local)
    return partial, None


def _write_error(exc: OSError, path: str) -> FtError:
    """The error for a failed local write: no_space, permission or io_error, as ``get`` says."""
    return local_error(exc, f"cannot write {path!r}")
