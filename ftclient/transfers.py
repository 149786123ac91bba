"""One file up or down over a Connection, resuming from what the other side provably holds.

``put_once`` and ``get_once`` each make one attempt; ``Client.put`` and
``Client.get`` run them under the retry policy. A download waits in a hidden
partial beside its destination and is published only once its SHA-256 matches.
The order of each exchange is the conversation's table's
(common/protocol/conversation.py): each attempt feeds it what it sends and reads.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import shlex
import stat
from dataclasses import replace
from typing import Protocol

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import receive_file_hashed
from common.io.filesend import send_file_hashed
from common.io.hashing import hash_prefix, unchanged_while_open
from common.protocol.conversation import (
    CLIENT,
    GET,
    GET_END,
    GET_READY,
    PUT,
    PUT_DATA,
    PUT_DONE,
    PUT_END,
    PUT_READY,
    Conversation,
)
from common.protocol.errors import (
    ConnectionLost,
    FtError,
    IntegrityError,
    IsADirectory,
    NotFound,
    PermissionDenied,
    ProtocolError,
    SourceChanged,
    StreamCut,
    Timeout,
)
from common.protocol.replies import GetEnd, GetReady, PutDone, PutReady, carried_error
from common.protocol.requests import GetRequest, PutData, PutEnd, PutRequest
from ftclient.connection import Connection
from ftclient.digests import SentDigests, file_version
from ftclient.localfiles import (
    HeldPartial,
    choose_destination,
    local_error,
    lock_partial,
    partial_path_for,
    spot_for,
)
from ftclient.names import normalize_remote
from ftclient.results import GetResult, Progress, ProgressCallback, PutResult
from ftclient.sendqueue import wait_until_sent


def put_once(
    conn: Connection, local: str | os.PathLike[str], remote: str | None,
    progress: ProgressCallback | None, sent: SentDigests | None = None,
) -> PutResult:
    """One attempt at a put. ``sent``: digests of files an earlier attempt sent whole; a
    retry announces the digest, so if the server has the file (the reply was lost) it
    confirms it without a byte being sent again."""
    local = os.fspath(local)
    name = os.path.basename(local)
    if remote is None or remote == "":
        remote = name
    elif remote.endswith("/"):
        remote = remote + name
    remote = normalize_remote(remote)
    try:
        fd = os.open(local, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"local file {local!r} does not exist") from None
    except IsADirectoryError:
        raise IsADirectory(f"{local!r} is a folder: use put -r to upload it with all it "
                           "holds") from None
    except OSError as exc:
        raise PermissionDenied(f"cannot read {local!r}: {exc.strerror or exc}") from None
    try:
        before = os.fstat(fd)
        if stat.S_ISDIR(before.st_mode):
            raise IsADirectory(f"{local!r} is a folder: use put -r to upload it with all it "
                               "holds")
        if not stat.S_ISREG(before.st_mode):
            raise PermissionDenied(f"{local!r} is not a regular file")
        return _put_fd(conn, fd, before, remote, progress, sent)
    except OSError as exc:  # the network's errors arrive as FtErrors; this is the local disk
        raise local_error(exc, f"cannot read {local!r}") from None
    finally:
        os.close(fd)


def _put_fd(
    conn: Connection, fd: int, before: os.stat_result, remote: str,
    progress: ProgressCallback | None, sent: SentDigests | None,
) -> PutResult:
    size = before.st_size
    version = file_version(before)
    known = None if sent is None else sent.get(version)
    channel = conn.channel()
    talk = Conversation(CLIENT, greeted=True)  # a request starts on a settled connection
    talk.request(PUT, size)
    channel.send(PutRequest(remote, size, before.st_mtime, known).to_dict())
    # The server hashes what it holds of this upload (at most about size bytes) first.
    ready = conn.reply(PutReady, channel, conn.deadline_after(size))
    try:  # from here until put_end, only a closed connection tells the server to stop
        talk.reply(PUT_READY, ready.offset)
        offset, hasher = 0, hashlib.sha256()
        # The server holds the very file we announced: nothing to send, nor to re-read.
        whole = known is not None and ready.offset == size and ready.prefix_sha256 == known
        if whole:
            offset = size
        elif 0 < ready.offset <= size:
            prefix = hash_prefix(fd, ready.offset)
            if prefix.hexdigest() == ready.prefix_sha256:
                offset, hasher = ready.offset, prefix
        talk.request(PUT_DATA, offset)
        channel.send(PutData(offset).to_dict())
        digest = known if whole and known is not None else _send_file(
            conn, channel, fd, remote, offset, size, hasher, progress)
        talk.client_raw(size - offset)
        after = os.fstat(fd)
        if not unchanged_while_open(before, after):
            # without a closing header the server publishes nothing
            raise SourceChanged(f"{remote!r}: the local file changed while it was sent; "
                                "nothing was published")
        if sent is not None:  # a retry of this put can now tell the server what it sent
            sent[version] = digest
        talk.request(PUT_END)
        channel.send(PutEnd(digest).to_dict())
        # The server's answer can only come once our last bytes have reached it: on
        # a slow link the kernel may still hold megabytes of them.
        wait_until_sent(channel.sock, conn.timeout)
    except BaseException as exc:
        said = _last_word(channel) if isinstance(exc, ConnectionLost) else None
        conn.drop()
        if said is not None:
            raise said from None
        raise
    # The server verifies, fsyncs and renames the whole file before it answers.
    unknown = (f"so whether it was published is unknown; check with "
               f"`ftclient stat {shlex.quote(remote)}`")
    try:
        done = conn.reply(PutDone, channel, conn.deadline_after(size))
    except Timeout:
        raise Timeout(f"{remote!r}: the server did not confirm the upload in time, "
                      f"{unknown}") from None
    except ConnectionLost:
        raise ConnectionLost(f"{remote!r}: the connection dropped before the server "
                             f"confirmed the upload, {unknown}") from None
    except ProtocolError:
        # put_data refused: raw bytes were on their way, so the server hung up after it.
        conn.drop()
        raise
    talk.reply(PUT_DONE)
    if done.sha256 != digest or done.size != size:
        raise IntegrityError(f"{remote!r}: the server confirmed different content")
    return PutResult(remote, size, done.sha256, offset)


def _last_word(channel: Channel) -> FtError | None:
    """The error a server sent before it cut us off mid-upload (a shutdown says so)."""
    frame = channel.last_frame()
    if frame is None:
        return None
    try:
        return carried_error(frame)
    except ProtocolError:
        return None


def _send_file(
    conn: Connection, channel: Channel, fd: int, remote: str, offset: int, size: int,
    hasher: hashlib._Hash, progress: ProgressCallback | None,
) -> str:
    """Send the file from ``offset``; return the SHA-256 of all of it."""
    if progress:
        progress(Progress(remote, size, offset, offset))

    def sent(position: int) -> None:
        if progress:
            progress(Progress(remote, size, position, offset))

    try:
        return send_file_hashed(channel, fd, offset, size - offset, hasher, conn.timeout,
                                sent, throttle=conn.throttle)
    except SourceChanged:
        raise SourceChanged(f"{remote!r}: the local file shrank while it was sent") from None


def get_once(
    conn: Connection, remote: str, local: str | os.PathLike[str] | None,
    progress: ProgressCallback | None, within: str | None = None,
) -> GetResult:
    remote = normalize_remote(remote)
    destination = choose_destination(remote, None if local is None else os.fspath(local))
    if os.path.isdir(destination):
        raise IsADirectory(f"{destination!r} is a folder")
    if within is None and _written_through(destination):
        return _get_through(conn, remote, destination, progress)
    spot = spot_for(destination, within)
    try:
        partial = lock_partial(spot)
    except OSError as exc:
        raise local_error(exc, f"cannot write {partial_path_for(destination)!r}") from None
    try:
        return _get_into(conn, partial, remote, destination, progress)
    except BaseException as exc:
        kept = 0
        with contextlib.suppress(OSError):
            kept = os.fstat(partial.fd).st_size
        if kept == 0:  # nothing to resume: leave no litter behind
            with contextlib.suppress(OSError):
                partial.discard()
        if isinstance(exc, OSError):  # the network's errors arrive as FtErrors
            note = (f"; the {kept} bytes received are kept, and the same get resumes"
                    if kept else "")
            raise local_error(exc, f"cannot write {destination!r}", note) from None
        raise
    finally:
        partial.close()


class StreamSink(Protocol):
    """Where a streamed download goes: anything with a binary ``write`` (sys.stdout.buffer,
    an open file, a pipe)."""

    def write(self, data: bytes, /) -> int | None: ...


def _written_through(destination: str) -> bool:
    """Whether ``destination`` exists as a symlink or as something other than a regular
    file (``/dev/stdout``, a FIFO, a device): then it is written through, never replaced."""
    try:
        st = os.lstat(destination)
    except OSError:
        return False
    return not stat.S_ISREG(st.st_mode)


def _get_through(conn: Connection, remote: str, destination: str,
                 progress: ProgressCallback | None) -> GetResult:
    """``get_stream_once`` into the file ``destination`` leads to (a regular file there is
    truncated first, as ``cp`` does)."""
    try:
        target = os.stat(destination)
        flags = os.O_WRONLY | os.O_CLOEXEC | (os.O_TRUNC if stat.S_ISREG(target.st_mode) else 0)
        fd = os.open(destination, flags)
    except OSError as exc:
        raise local_error(exc, f"cannot write {destination!r}") from None
    with open(fd, "wb", buffering=0) as sink:
        result = get_stream_once(conn, remote, sink, repr(destination), progress)
    return replace(result, local=destination)


def get_stream_once(
    conn: Connection, remote: str, sink: StreamSink, name: str,
    progress: ProgressCallback | None,
) -> GetResult:
    """Download ``remote`` into ``sink`` from its first byte, in order, with no partial.

    The SHA-256 is checked at the end, as always, but what was written cannot be taken
    back: a mismatch or a cut after the first byte raises (a cut as StreamCut, which is
    not retried), and nothing resumes. ``name`` says where it went, for messages.
    """
    remote = normalize_remote(remote)
    channel, talk, ready = _ask_for(conn, remote, 0, None)
    written = 0

    def write(chunk: memoryview, _position: int) -> None:
        nonlocal written
        view = memoryview(chunk)
        while view:  # a raw file object may take part of it
            taken = sink.write(view)
            taken = len(view) if taken is None else taken
            view = view[taken:]
            written += taken

    try:
        if ready.offset != 0:
            raise ProtocolError(f"server offered offset {ready.offset}, not 0")
        talk.reply(GET_READY, ready.size)
        if progress:
            progress(Progress(remote, ready.size, 0, 0))
        digest = receive_file_hashed(
            channel, 0, ready.size, hashlib.sha256(), write, throttle=conn.throttle,
            on_received=None if progress is None else (
                lambda position: progress(Progress(remote, ready.size, position, 0))))
        talk.server_raw(ready.size)
        end = conn.reply(GetEnd, channel)
        talk.reply(GET_END)
    except BaseException as exc:
        conn.drop()
        if isinstance(exc, FtError) and written:
            raise StreamCut(f"{remote!r}: the download into {name} was cut after {written} "
                            f"bytes ({exc.message}); a stream cannot resume: run the "
                            "command again") from None
        if isinstance(exc, OSError):
            raise local_error(exc, f"cannot write {name}") from None
        raise
    if not _arrived_as_announced(digest, ready, end):
        raise IntegrityError(f"{remote!r} arrived with a different SHA-256 than the server "
                             f"announced; the bytes written to {name} cannot be taken back")
    return GetResult(name, ready.size, digest, 0)


def _ask_for(conn: Connection, remote: str, held: int, prefix_digest: str | None
             ) -> tuple[Channel, Conversation, GetReady]:
    """Send a ``get`` for ``remote`` (holding ``held`` bytes of it) and read its answer."""
    channel = conn.channel()
    talk = Conversation(CLIENT, greeted=True)  # a request starts on a settled connection
    talk.request(GET)
    channel.send(GetRequest(remote, held, prefix_digest).to_dict())
    # The server hashes its own first ``held`` bytes before it answers.
    try:
        ready = conn.reply(GetReady, channel, conn.deadline_after(held))
    except IsADirectory as exc:  # the remote name is a folder
        raise IsADirectory(f"{exc.message}: use get -r to download it with all it "
                           "holds") from None
    return channel, talk, ready


def _arrived_as_announced(digest: str, ready: GetReady, end: GetEnd) -> bool:
    return digest == end.sha256 and (ready.sha256 is None or digest == ready.sha256)


def _get_into(
    conn: Connection, partial: HeldPartial, remote: str, destination: str,
    progress: ProgressCallback | None,
) -> GetResult:
    fd = partial.fd
    held = os.fstat(fd).st_size
    hasher = hashlib.sha256()
    prefix_digest = None
    if held:
        hasher = hash_prefix(fd, held)
        prefix_digest = hasher.hexdigest()
    channel, talk, ready = _ask_for(conn, remote, held, prefix_digest)
    try:  # raw bytes are on their way: any failure leaves the stream unusable
        if ready.offset not in (0, held):
            raise ProtocolError(f"server offered offset {ready.offset}, not 0 or {held}")
        talk.reply(GET_READY, ready.size - ready.offset)
        if ready.offset == 0:
            hasher = hashlib.sha256()
        os.ftruncate(fd, ready.offset)
        digest = _receive_file(conn, channel, fd, remote, ready, hasher, progress)
        talk.server_raw(ready.size - ready.offset)
    except BaseException:
        conn.drop()
        with contextlib.suppress(OSError):  # the first error is the one to report
            os.fsync(fd)  # keep what arrived for the next attempt
        raise
    end = conn.reply(GetEnd, channel)
    talk.reply(GET_END)
    if not _arrived_as_announced(digest, ready, end):
        partial.discard()
        raise IntegrityError(f"{remote!r} arrived with a different SHA-256 than the server "
                             "announced; the partial download was discarded")
    partial.publish(ready.mtime)
    return GetResult(destination, ready.size, digest, ready.offset)


def _receive_file(
    conn: Connection, channel: Channel, fd: int, remote: str, ready: GetReady,
    hasher: hashlib._Hash, progress: ProgressCallback | None,
) -> str:
    """Receive the rest of the file into ``fd``; return the SHA-256 of all of it."""
    if progress:
        progress(Progress(remote, ready.size, ready.offset, ready.offset))

    def received(position: int) -> None:
        if progress:
            progress(Progress(remote, ready.size, position, ready.offset))

    return receive_file_hashed(channel, ready.offset, ready.size - ready.offset, hasher,
                               functools.partial(pwrite_all, fd), on_received=received,
                               throttle=conn.throttle)
