"""``Client``: connect to an ft server and list, stat, put and get, resuming where possible.

This is a library: it prints nothing and never exits. Progress is reported by
calling an optional callback with a ``Progress`` value. Every name the server
sends back is checked with the same path rules the server applies, and every
download is verified by SHA-256 before it appears under its final name.

A connection that broke in the middle of a transfer is dropped; the next call
reconnects, and re-running the same ``put`` or ``get`` resumes from what the
other side provably holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from common.channel import Channel
from common.errors import (
    Busy,
    ConnectionLost,
    FtError,
    IntegrityError,
    IsADirectory,
    NotFound,
    PermissionDenied,
    ProtocolError,
    SourceChanged,
    Timeout,
)
from common.hashing import hash_prefix
from common.messages import (
    PROTOCOL_VERSION,
    EntryInfo,
    GetEnd,
    GetReady,
    GetRequest,
    Hello,
    HelloReply,
    ListDir,
    ListReply,
    PutData,
    PutDone,
    PutEnd,
    PutReady,
    PutRequest,
    Stat,
    StatReply,
)
from common.paths import split_path
from ftclient.localfiles import choose_destination, partial_path_for, publish

DEFAULT_PORT = 9021
CHUNK = 1024 * 1024
BUSY_BACKOFF = (0.2, 0.5, 1.0, 2.0, 3.0)


@dataclass(frozen=True)
class Progress:
    """Where a transfer stands. ``resumed_from`` is the offset it started at (0 if fresh)."""

    path: str
    total: int
    done: int
    resumed_from: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class PutResult:
    remote: str
    size: int
    sha256: str
    resumed_from: int


@dataclass(frozen=True)
class GetResult:
    local: str
    size: int
    sha256: str
    resumed_from: int


def normalize_remote(path: str, *, allow_root: bool = False) -> str:
    """Turn what a user typed into a protocol name: drop leading and trailing slashes, check it."""
    name = path.strip("/")
    split_path(name, allow_root=allow_root)
    return name


class Client:
    """A connection to one ft server. Use as a context manager, or call ``close``."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        timeout: float = 60.0,
        busy_wait: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.busy_wait = busy_wait
        self.server_name = ""
        self._channel: Channel | None = None

    # ------------------------------------------------------------ connection

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and greet; while the server answers "busy", wait and retry (up to busy_wait)."""
        deadline = time.monotonic() + self.busy_wait
        attempt = 0
        while True:
            try:
                self._open()
                return
            except Busy:
                self.close()
                delay = BUSY_BACKOFF[min(attempt, len(BUSY_BACKOFF) - 1)]
                attempt += 1
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)

    def _open(self) -> None:
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError:
            raise ConnectionLost(f"no answer from {self.host}:{self.port}") from None
        except OSError as exc:
            raise ConnectionLost(
                f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        channel = Channel(sock)
        self._channel = channel
        try:
            channel.send(Hello(PROTOCOL_VERSION, "ftclient/0.1.0").to_dict())
            reply = HelloReply.from_dict(channel.receive())
        except BaseException:
            self.close()
            raise
        self.server_name = reply.name

    def close(self) -> None:
        if self._channel is not None:
            try:
                self._channel.sock.close()
            finally:
                self._channel = None

    def _conn(self) -> Channel:
        if self._channel is None:
            self.connect()
        assert self._channel is not None
        return self._channel

    def _drop(self) -> None:
        """Forget a connection whose byte stream can no longer be trusted."""
        self.close()

    # ------------------------------------------------------------ simple requests

    def list(self, path: str = "") -> list[EntryInfo]:
        """Entries of a remote folder ("" is the share's root), sorted by name."""
        channel = self._conn()
        channel.send(ListDir(normalize_remote(path, allow_root=True)).to_dict())
        entries: list[EntryInfo] = []
        while True:
            batch = self._reply(ListReply, channel)
            entries.extend(batch.entries)
            if batch.done:
                return entries

    def stat(self, path: str) -> EntryInfo:
        channel = self._conn()
        channel.send(Stat(normalize_remote(path)).to_dict())
        return self._reply(StatReply, channel).entry

    def _reply(self, cls: type, channel: Channel):  # noqa: ANN202 - returns an instance of cls
        try:
            return cls.from_dict(channel.receive())
        except (ConnectionLost, Timeout, ProtocolError):
            self._drop()
            raise

    # ------------------------------------------------------------ put

    def put(
        self, local: str | os.PathLike[str], remote: str | None = None,
        *, progress: ProgressCallback | None = None,
    ) -> PutResult:
        """Upload ``local``; ``remote`` defaults to its name, and a trailing "/" means a folder."""
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
            raise IsADirectory(f"{local!r} is a folder") from None
        except OSError as exc:
            raise PermissionDenied(f"cannot read {local!r}: {exc.strerror or exc}") from None
        try:
            before = os.fstat(fd)
            if not stat.S_ISREG(before.st_mode):
                raise PermissionDenied(f"{local!r} is not a regular file")
            return self._put_fd(fd, before, remote, progress)
        finally:
            os.close(fd)

    def _put_fd(
        self, fd: int, before: os.stat_result, remote: str, progress: ProgressCallback | None
    ) -> PutResult:
        size = before.st_size
        channel = self._conn()
        channel.send(PutRequest(remote, size, before.st_mtime).to_dict())
        ready = self._reply(PutReady, channel)
        offset, hasher = 0, hashlib.sha256()
        if 0 < ready.offset <= size:
            with os.fdopen(os.dup(fd), "rb") as stream:
                prefix = hash_prefix(stream, ready.offset)
            if prefix.hexdigest() == ready.prefix_sha256:
                offset, hasher = ready.offset, prefix
        try:
            channel.send(PutData(offset).to_dict())
            self._send_file(channel, fd, remote, offset, size, hasher, progress)
            after = os.fstat(fd)
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                self._drop()  # without a closing header the server publishes nothing
                raise SourceChanged(f"{remote!r}: the local file changed while it was sent; "
                                    "nothing was published")
            channel.send(PutEnd(hasher.hexdigest()).to_dict())
        except BaseException:
            self._drop()
            raise
        done = self._reply(PutDone, channel)
        if done.sha256 != hasher.hexdigest() or done.size != size:
            raise IntegrityError(f"{remote!r}: the server confirmed different content")
        return PutResult(remote, size, done.sha256, offset)

    def _send_file(
        self, channel: Channel, fd: int, remote: str, offset: int, size: int,
        hasher: hashlib._Hash, progress: ProgressCallback | None,
    ) -> None:
        if progress:
            progress(Progress(remote, size, offset, offset))
        buffer = bytearray(min(CHUNK, max(size - offset, 1)))
        view = memoryview(buffer)
        position = offset
        while position < size:
            got = os.preadv(fd, [view[: min(size - position, len(buffer))]], position)
            if got == 0:
                raise SourceChanged(f"{remote!r}: the local file shrank while it was sent")
            chunk = view[:got]
            hasher.update(chunk)
            channel.send_raw(chunk)
            position += got
            if progress:
                progress(Progress(remote, size, position, offset))

    # ------------------------------------------------------------ get

    def get(
        self, remote: str, local: str | os.PathLike[str] | None = None,
        *, progress: ProgressCallback | None = None,
    ) -> GetResult:
        """Download ``remote`` to ``local`` (a file name or an existing folder; default: ./NAME).

        A partial download waits beside the destination as ``.NAME.ftpart`` and is
        resumed by the next ``get`` if the server's file starts with the same bytes.
        """
        remote = normalize_remote(remote)
        destination = choose_destination(remote, None if local is None else os.fspath(local))
        if os.path.isdir(destination):
            raise IsADirectory(f"{destination!r} is a folder")
        partial = partial_path_for(destination)
        try:
            fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise PermissionDenied(f"cannot write {partial!r}: {exc.strerror or exc}") from None
        try:
            return self._get_into(fd, remote, partial, destination, progress)
        except BaseException:
            if os.fstat(fd).st_size == 0:  # nothing to resume: leave no litter behind
                with contextlib.suppress(OSError):
                    os.unlink(partial)
            raise
        finally:
            os.close(fd)

    def _get_into(
        self, fd: int, remote: str, partial: str, destination: str,
        progress: ProgressCallback | None,
    ) -> GetResult:
        held = os.fstat(fd).st_size
        hasher = hashlib.sha256()
        prefix_digest = None
        if held:
            with os.fdopen(os.dup(fd), "rb") as stream:
                hasher = hash_prefix(stream, held)
            prefix_digest = hasher.hexdigest()
        channel = self._conn()
        channel.send(GetRequest(remote, held, prefix_digest).to_dict())
        ready = self._reply(GetReady, channel)
        if ready.offset not in (0, held):
            self._drop()
            raise ProtocolError(f"server offered offset {ready.offset}, not 0 or {held}")
        if ready.offset == 0:
            hasher = hashlib.sha256()
        os.ftruncate(fd, ready.offset)
        try:
            self._receive_file(channel, fd, remote, ready, hasher, progress)
        except BaseException:
            self._drop()
            os.fsync(fd)  # keep what arrived for the next attempt
            raise
        end = self._reply(GetEnd, channel)
        digest = hasher.hexdigest()
        if digest != end.sha256 or (ready.sha256 is not None and digest != ready.sha256):
            os.unlink(partial)
            raise IntegrityError(f"{remote!r} arrived with a different SHA-256 than the server "
                                 "announced; the partial download was discarded")
        publish(partial, fd, destination, ready.mtime)
        return GetResult(destination, ready.size, digest, ready.offset)

    def _receive_file(
        self, channel: Channel, fd: int, remote: str, ready: GetReady,
        hasher: hashlib._Hash, progress: ProgressCallback | None,
    ) -> None:
        size, position = ready.size, ready.offset
        if progress:
            progress(Progress(remote, size, position, ready.offset))
        channel.expect_raw(size - position)
        buffer = bytearray(min(CHUNK, max(size - position, 1)))
        view = memoryview(buffer)
        while position < size:
            chunk = view[: min(size - position, len(buffer))]
            channel.recv_raw_exactly(chunk)
            written = 0
            while written < len(chunk):
                written += os.pwrite(fd, chunk[written:], position + written)
            hasher.update(chunk)
            position += len(chunk)
            if progress:
                progress(Progress(remote, size, position, ready.offset))


__all__ = ["Client", "FtError", "GetResult", "Progress", "PutResult"]
