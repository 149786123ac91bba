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
import errno
import functools
import hashlib
import math
import os
import select
import shlex
import socket
import ssl
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import receive_file_hashed
from common.io.filesend import send_file_hashed
from common.io.hashing import HASH_RATE_FLOOR, hash_prefix, unchanged_while_open
from common.io.ratelimit import Throttle, TokenBucket, parse_rate
from common.io.tls import normalize_fingerprint
from common.protocol.errors import (
    Busy,
    ConnectionLost,
    FtError,
    IntegrityError,
    IsADirectory,
    NoSpace,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    ProtocolError,
    SourceChanged,
    StorageError,
    Timeout,
)
from common.protocol.messages import (
    PROTOCOL_VERSION,
    Done,
    EntryInfo,
    GetEnd,
    GetReady,
    GetRequest,
    Hello,
    HelloReply,
    ListDir,
    ListReply,
    MakeDir,
    Move,
    PutData,
    PutDone,
    PutEnd,
    PutReady,
    PutRequest,
    Remove,
    SetMtime,
    Stat,
    StatReply,
    Walk,
    WalkEntry,
    WalkReply,
)
from common.protocol.names import split_path
from ftclient import pipeline
from ftclient.localfiles import choose_destination, lock_partial, partial_path_for, publish
from ftclient.pipeline import BytesCallback, PipedFile, PipedResult
from ftclient.retry import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_DELAY,
    RetryCallback,
    RetryNote,
    check_retry_settings,
    note_gave_up,
    reason_to_retry,
    run_with_retries,
)
from ftclient.secure import Security, log_in, open_tls
from ftclient.sendqueue import wait_until_sent

DEFAULT_PORT = 9021
BUSY_BACKOFF = (0.2, 0.5, 1.0, 2.0, 3.0)
MAX_TIMEOUT = 1e9
"""Largest timeout in seconds (about 31 years): far longer ones overflow the socket layer."""
MAX_WALK_ENTRIES = 1_000_000
"""A server listing more entries than this in one walk is refused (memory stays bounded)."""
T = TypeVar("T")
_PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})
_NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


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
    retries: int = 0


@dataclass(frozen=True)
class GetResult:
    local: str
    size: int
    sha256: str
    resumed_from: int
    retries: int = 0


def _hung_up(channel: Channel) -> bool:
    """True if a connection between requests has something to read: the server never
    speaks unasked there, so it is its goodbye (an idle timeout) or its hang-up."""
    if channel.decoder.buffered:
        return True
    if isinstance(channel.sock, ssl.SSLSocket) and channel.sock.pending():
        return True
    try:
        readable, _, _ = select.select([channel.sock], [], [], 0)
    except (OSError, ValueError):  # closed under us
        return True
    return bool(readable)


def local_error(exc: OSError, what: str, note: str = "") -> FtError:
    """The FtError for a failure of the local disk: ``what`` failed, because of ``exc``."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_SPACE_ERRNOS:
        return NoSpace(f"{what}: no space left on the local disk{note}")
    if exc.errno in _PERMISSION_ERRNOS:
        return PermissionDenied(f"{what}: {reason}{note}")
    return StorageError(f"{what}: {reason}{note}")


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
        limit_rate: int | str = 0,
        retries: int = DEFAULT_RETRIES,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        tls: bool = False,
        fingerprint: str | None = None,
        accept_new: bool = False,
        known_servers: str | os.PathLike[str] | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        """``fingerprint`` (64 hex digits) or ``accept_new`` imply ``tls``; see ftclient.trust.

        ``user`` logs in by SCRAM-SHA-256 with ``password``, which never leaves this process.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
                math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            raise ValueError(f"timeout must be a number of seconds above 0 and at most "
                             f"{MAX_TIMEOUT:g}, not {timeout!r}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.busy_wait = busy_wait
        check_retry_settings(retries, retry_delay)
        self.retries = retries
        """How often a request tries again after a lost connection, a timeout or "busy"."""
        self.retry_delay = retry_delay
        self.server_name = ""
        self.access: str | None = None
        """After connecting with ``user``: "ro" or "rw", as the server granted."""
        self._channel: Channel | None = None
        rate = parse_rate(limit_rate)  # bytes/s for puts and gets together; 0: no limit
        self._throttle = Throttle(TokenBucket(rate) if rate else None)
        self.security = make_security(tls, fingerprint, accept_new, known_servers, user,
                                      password)

    # ------------------------------------------------------------ connection

    def __enter__(self) -> Client:
        """Connect, retrying a refused or lost connection as transfers do (self.retries)."""
        run_with_retries(self.connect, path=f"{self.host}:{self.port}", retries=self.retries,
                         first_delay=self.retry_delay, before_retry=self._drop, on_retry=None)
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
        if self.security.tls:
            sock = open_tls(sock, self.host, self.port, self.security)
        channel = Channel(sock)
        self._channel = channel
        try:
            channel.send(Hello(PROTOCOL_VERSION, "ftclient/0.1.0").to_dict())
            reply = HelloReply.from_dict(channel.receive())
            if self.security.user is not None:
                self.access = log_in(channel, self.security.user, self.security.password or "")
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
        if self._channel is not None and _hung_up(self._channel):
            # Whatever goes out on it now is lost unread: a move or remove sent there
            # would be reported as of unknown outcome, though the server never saw it.
            self._drop()
        if self._channel is None:
            self.connect()
        assert self._channel is not None
        return self._channel

    def _drop(self) -> None:
        """Forget a connection whose byte stream can no longer be trusted."""
        self.close()

    # ------------------------------------------------------------ simple requests
    # Retried as put and get are (self.retries, retry.py): whole when running twice ends
    # the same as once (reads, mkdir -p, set_mtime); only until sent when it may not.

    def list(self, path: str = "", *, on_retry: RetryCallback | None = None
             ) -> list[EntryInfo]:
        """Entries of a remote folder ("" is the share's root), sorted by name."""
        name = normalize_remote(path, allow_root=True)
        return self._retrying(lambda: self._list_once(name), name or "/", on_retry)

    def _list_once(self, name: str) -> list[EntryInfo]:
        return self._batched(ListDir(name), ListReply)

    def stat(self, path: str, *, digest: bool = False, on_retry: RetryCallback | None = None
             ) -> EntryInfo:
        """A remote entry; ``digest`` has the server compute a file's SHA-256 if unknown."""
        name = normalize_remote(path)
        return self._retrying(lambda: self._stat_once(name, digest), name, on_retry)

    def _stat_once(self, name: str, digest: bool) -> EntryInfo:
        channel = self._conn()
        channel.send(Stat(name).to_dict())
        entry = self._reply(StatReply, channel).entry
        if digest and entry.type == "file" and entry.sha256 is None:
            channel = self._conn()
            channel.send(Stat(name, digest=True).to_dict())
            entry = self._reply(StatReply, channel, self._deadline_after(entry.size)).entry
        return entry

    # Folders, file operations, and many small files at once (pipeline.py).

    def mkdir(self, path: str, *, parents: bool = False,
              on_retry: RetryCallback | None = None) -> None:
        """Create a remote folder; ``parents`` makes missing parents and accepts an existing one.

        Without ``parents`` a second run would answer "exists" for the folder the
        first made, so a cut after sending is not retried (OutcomeUnknown).
        """
        request = MakeDir(normalize_remote(path), parents)
        if parents:
            self._retrying(lambda: self._simple(request), request.path, on_retry)
        else:
            self._once(request, request.path, "created", request.path, on_retry)

    def move(self, src: str, dst: str, *, on_retry: RetryCallback | None = None) -> None:
        """Rename a remote file or folder; an existing ``dst`` is refused, never replaced.

        Retried only until sent: a cut after that raises OutcomeUnknown.
        """
        request = Move(normalize_remote(src), normalize_remote(dst))
        self._once(request, request.src, "moved", request.dst, on_retry)

    def remove(self, path: str, *, recursive: bool = False,
               on_retry: RetryCallback | None = None) -> None:
        """Delete a remote file or empty folder; ``recursive`` deletes a folder's contents too.

        Retried only until sent: a cut after that raises OutcomeUnknown.
        """
        request = Remove(normalize_remote(path), recursive)
        self._once(request, request.path, "removed", request.path, on_retry)

    def set_mtime(self, path: str, mtime: float, *,
                  on_retry: RetryCallback | None = None) -> None:
        """Set the mtime of a remote file or folder (not the root; a symlink's own)."""
        request = SetMtime(normalize_remote(path), mtime)
        self._retrying(lambda: self._simple(request), request.path, on_retry)

    def _simple(self, request: MakeDir | Move | Remove | SetMtime) -> None:
        channel = self._conn()
        channel.send(request.to_dict())
        self._reply(Done, channel)

    def _once(self, request: MakeDir | Move | Remove, path: str, done: str, check: str,
              on_retry: RetryCallback | None) -> None:
        """Send a request that must not run twice, retrying it only until it is sent whole.

        The server acts only on a whole frame, so a failure to connect or to send is
        retried; once it is sent, a cut leaves unknown whether it was ``done``.
        """
        def attempt() -> None:
            channel = self._conn()
            channel.send(request.to_dict())
            try:
                self._reply(Done, channel)
            except (ConnectionLost, Timeout) as exc:
                raise OutcomeUnknown(
                    f"{path!r}: {exc.message}, after the request was sent, so whether it "
                    f"was {done} is unknown; check with `ftclient stat {shlex.quote(check)}`"
                ) from None

        self._retrying(attempt, path, on_retry)

    def _retrying(self, action: Callable[[], T], path: str,
                  on_retry: RetryCallback | None) -> T:
        """``action`` under the retry policy of put and get; ``on_retry`` hears of each retry."""
        result, _ = run_with_retries(action, path=path, retries=self.retries,
                                     first_delay=self.retry_delay, before_retry=self._drop,
                                     on_retry=on_retry)
        return result

    def walk(self, path: str = "", *, on_retry: RetryCallback | None = None
             ) -> list[WalkEntry]:
        """Every file and folder below a remote folder, parents first, paths relative to it.

        Each path has passed the path rules (no ``..``, nothing absolute, no controls).
        """
        name = normalize_remote(path, allow_root=True)
        return self._retrying(lambda: self._walk_once(name), name or "/", on_retry)

    def _walk_once(self, name: str) -> list[WalkEntry]:
        return self._batched(Walk(name), WalkReply, limit=MAX_WALK_ENTRIES)

    def _batched(self, request: ListDir | Walk, reply_type: type[ListReply] | type[WalkReply],
                 limit: int | None = None) -> list[Any]:
        """Send ``request`` and gather the entries of its replies until one says done.

        With ``limit``, a server sending more entries than that is refused (memory
        stays bounded).
        """
        channel = self._conn()
        channel.send(request.to_dict())
        entries: list[Any] = []
        while True:
            batch = self._reply(reply_type, channel)
            entries.extend(batch.entries)
            if limit is not None and len(entries) > limit:
                self._drop()
                raise ProtocolError(f"the server listed more than {limit} entries")
            if batch.done:
                return entries

    def put_many(self, files: Sequence[PipedFile], moved: BytesCallback | None = None, *,
                 on_retry: RetryCallback | None = None) -> list[PipedResult]:
        """Upload small files (up to PIPELINE_MAX_SIZE each) pipelined, no round trip each.

        One result per file, in the order given. A cut is retried as ``put``'s is
        (``self.retries``, ``on_retry``): answered files keep their results and the
        rest go out again on a new connection. Sending one again is safe: a streamed
        put replaces the name whole with verified content, so a file published just
        before the cut is published again, identical, and reported once. After the
        last retry the cut is the error of each file not answered; it is not raised.
        ``moved`` hears each file's size once it is answered, so no byte counts twice.
        """
        return self._pipelined(pipeline.put_pipelined, files, moved, on_retry)

    def get_many(self, files: Sequence[PipedFile], moved: BytesCallback | None = None, *,
                 on_retry: RetryCallback | None = None) -> list[PipedResult]:
        """Download small files (remote to local path) pipelined; their folders must exist.

        Retried as ``put_many`` is; a file cut short is fetched again from its first byte.
        """
        return self._pipelined(pipeline.get_pipelined, files, moved, on_retry)

    def _pipelined(self, run: Callable[..., None], files: Sequence[PipedFile],
                   moved: BytesCallback | None, on_retry: RetryCallback | None
                   ) -> list[PipedResult]:
        batch = _PipelinedBatch(files, moved)
        if not files:
            return []

        def attempt() -> None:
            try:
                batch.attempt(run, self._conn, self.timeout, self._throttle)
            except BaseException:
                self._drop()  # the stream's position is unknown
                raise

        def retrying(note: RetryNote) -> None:
            if on_retry is not None:
                on_retry(replace(note, path=batch.left()))

        try:
            self._retrying(attempt, "", retrying)
        except FtError as error:
            batch.give_up(error)
        return batch.results()

    def _reply(self, cls: type, channel: Channel,  # noqa: ANN202 - returns an instance of cls
               deadline: float | None = None):
        """Receive and parse one reply; ``deadline`` (monotonic) bounds the whole frame."""
        try:
            return cls.from_dict(channel.receive(deadline))
        except (ConnectionLost, Timeout, ProtocolError):
            self._drop()
            raise
        finally:
            if deadline is not None and self._channel is channel:
                channel.sock.settimeout(self.timeout)  # receive(deadline) left its own

    def _deadline_after(self, work: int) -> float:
        """When to give up on a reply the server sends after reading or flushing ``work`` bytes."""
        return time.monotonic() + self.timeout + work / HASH_RATE_FLOOR

    # ------------------------------------------------------------ put

    def put(
        self, local: str | os.PathLike[str], remote: str | None = None,
        *, progress: ProgressCallback | None = None, on_retry: RetryCallback | None = None,
    ) -> PutResult:
        """Upload ``local``; ``remote`` defaults to its name, and a trailing "/" means a folder.

        A lost connection, timeout or "busy" is retried up to ``self.retries`` times
        (see retry.py), each time resuming from what the server holds; ``on_retry``
        hears of each retry before its wait.
        """
        result, retries = run_with_retries(
            lambda: self._put_once(local, remote, progress), path=os.fspath(local),
            retries=self.retries, first_delay=self.retry_delay, before_retry=self._drop,
            on_retry=on_retry)
        return replace(result, retries=retries)

    def _put_once(
        self, local: str | os.PathLike[str], remote: str | None,
        progress: ProgressCallback | None,
    ) -> PutResult:
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
        except OSError as exc:  # the network's errors arrive as FtErrors; this is the local disk
            raise local_error(exc, f"cannot read {local!r}") from None
        finally:
            os.close(fd)

    def _put_fd(
        self, fd: int, before: os.stat_result, remote: str, progress: ProgressCallback | None
    ) -> PutResult:
        size = before.st_size
        channel = self._conn()
        channel.send(PutRequest(remote, size, before.st_mtime).to_dict())
        # The server hashes what it holds of this upload (at most about size bytes) first.
        ready = self._reply(PutReady, channel, self._deadline_after(size))
        try:  # from here until put_end, only a closed connection tells the server to stop
            offset, hasher = 0, hashlib.sha256()
            if 0 < ready.offset <= size:
                prefix = hash_prefix(fd, ready.offset)
                if prefix.hexdigest() == ready.prefix_sha256:
                    offset, hasher = ready.offset, prefix
            channel.send(PutData(offset).to_dict())
            digest = self._send_file(channel, fd, remote, offset, size, hasher, progress)
            after = os.fstat(fd)
            if not unchanged_while_open(before, after):
                # without a closing header the server publishes nothing
                raise SourceChanged(f"{remote!r}: the local file changed while it was sent; "
                                    "nothing was published")
            channel.send(PutEnd(digest).to_dict())
            # The server's answer can only come once our last bytes have reached it: on
            # a slow link the kernel may still hold megabytes of them.
            wait_until_sent(channel.sock, self.timeout)
        except BaseException:
            self._drop()
            raise
        # The server verifies, fsyncs and renames the whole file before it answers.
        unknown = (f"so whether it was published is unknown; check with "
                   f"`ftclient stat {shlex.quote(remote)}`")
        try:
            done = self._reply(PutDone, channel, self._deadline_after(size))
        except Timeout:
            raise Timeout(f"{remote!r}: the server did not confirm the upload in time, "
                          f"{unknown}") from None
        except ConnectionLost:
            raise ConnectionLost(f"{remote!r}: the connection dropped before the server "
                                 f"confirmed the upload, {unknown}") from None
        if done.sha256 != digest or done.size != size:
            raise IntegrityError(f"{remote!r}: the server confirmed different content")
        return PutResult(remote, size, done.sha256, offset)

    def _send_file(
        self, channel: Channel, fd: int, remote: str, offset: int, size: int,
        hasher: hashlib._Hash, progress: ProgressCallback | None,
    ) -> str:
        """Send the file from ``offset``; return the SHA-256 of all of it."""
        if progress:
            progress(Progress(remote, size, offset, offset))

        def sent(position: int) -> None:
            if progress:
                progress(Progress(remote, size, position, offset))

        try:
            return send_file_hashed(channel, fd, offset, size - offset, hasher, self.timeout,
                                    sent, throttle=self._throttle)
        except SourceChanged:
            raise SourceChanged(f"{remote!r}: the local file shrank while it was sent") from None

    # ------------------------------------------------------------ get

    def get(
        self, remote: str, local: str | os.PathLike[str] | None = None,
        *, progress: ProgressCallback | None = None, on_retry: RetryCallback | None = None,
    ) -> GetResult:
        """Download ``remote`` to ``local`` (a file name or an existing folder; default: ./NAME).

        A partial download waits beside the destination as ``.NAME.ftpart`` and is
        resumed by the next ``get`` if the server's file starts with the same bytes.
        Failures are retried as for ``put``.
        """
        result, retries = run_with_retries(
            lambda: self._get_once(remote, local, progress), path=remote,
            retries=self.retries, first_delay=self.retry_delay, before_retry=self._drop,
            on_retry=on_retry)
        return replace(result, retries=retries)

    def _get_once(
        self, remote: str, local: str | os.PathLike[str] | None,
        progress: ProgressCallback | None,
    ) -> GetResult:
        remote = normalize_remote(remote)
        destination = choose_destination(remote, None if local is None else os.fspath(local))
        if os.path.isdir(destination):
            raise IsADirectory(f"{destination!r} is a folder")
        partial = partial_path_for(destination)
        try:
            fd = lock_partial(partial, destination)
        except OSError as exc:
            raise local_error(exc, f"cannot write {partial!r}") from None
        try:
            return self._get_into(fd, remote, partial, destination, progress)
        except BaseException as exc:
            kept = 0
            with contextlib.suppress(OSError):
                kept = os.fstat(fd).st_size
            if kept == 0:  # nothing to resume: leave no litter behind
                with contextlib.suppress(OSError):
                    os.unlink(partial)
            if isinstance(exc, OSError):  # the network's errors arrive as FtErrors
                note = (f"; the {kept} bytes received are kept, and the same get resumes"
                        if kept else "")
                raise local_error(exc, f"cannot write {destination!r}", note) from None
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
            hasher = hash_prefix(fd, held)
            prefix_digest = hasher.hexdigest()
        channel = self._conn()
        channel.send(GetRequest(remote, held, prefix_digest).to_dict())
        # The server hashes its own first ``held`` bytes before it answers.
        ready = self._reply(GetReady, channel, self._deadline_after(held))
        try:  # raw bytes are on their way: any failure leaves the stream unusable
            if ready.offset not in (0, held):
                raise ProtocolError(f"server offered offset {ready.offset}, not 0 or {held}")
            if ready.offset == 0:
                hasher = hashlib.sha256()
            os.ftruncate(fd, ready.offset)
            digest = self._receive_file(channel, fd, remote, ready, hasher, progress)
        except BaseException:
            self._drop()
            with contextlib.suppress(OSError):  # the first error is the one to report
                os.fsync(fd)  # keep what arrived for the next attempt
            raise
        end = self._reply(GetEnd, channel)
        if digest != end.sha256 or (ready.sha256 is not None and digest != ready.sha256):
            os.unlink(partial)
            raise IntegrityError(f"{remote!r} arrived with a different SHA-256 than the server "
                                 "announced; the partial download was discarded")
        publish(partial, fd, destination, ready.mtime)
        return GetResult(destination, ready.size, digest, ready.offset)

    def _receive_file(
        self, channel: Channel, fd: int, remote: str, ready: GetReady,
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
                                   throttle=self._throttle)


class _PipelinedBatch:
    """The files of one ``put_many`` or ``get_many`` over its attempts: which are answered.

    Each attempt sends only the files not answered yet. A file answered with an
    error of the moment (its name still locked by our own cut session, the server
    shutting down) counts as not answered: the next attempt sends it again.
    """

    def __init__(self, files: Sequence[PipedFile], moved: BytesCallback | None) -> None:
        self.files = list(files)
        self.moved = moved
        self.answered: list[PipedResult | None] = [None] * len(self.files)
        self.unanswered = list(range(len(self.files)))
        self.attempts = 0
        self.after_cut = False
        self.transient: dict[int, FtError] = {}
        """Errors of the moment the last attempt was answered with, by file position."""

    def attempt(self, run: Callable[..., None], connect: Callable[[], Channel],
                timeout: float, throttle: Throttle) -> None:
        """Send the files not answered yet over a connection; raise what ended it early."""
        self.attempts += 1
        todo, self.transient = self.unanswered, {}

        def answered(position: int, result: PipedResult) -> None:
            index = todo[position]
            if result.error is not None and reason_to_retry(result.error, self.after_cut):
                self.transient[index] = result.error
                return
            self.answered[index] = result
            if self.moved is not None:
                self.moved(result.remote, result.size)

        try:
            run(connect(), [self.files[index] for index in todo], timeout, answered, throttle)
        except (ConnectionLost, Timeout):
            self.after_cut = True
            raise
        finally:
            self.unanswered = [index for index in todo if self.answered[index] is None]
        if self.transient:
            raise next(iter(self.transient.values()))

    def left(self) -> str:
        """The files still to send, for a retry note: one name, or how many."""
        if len(self.unanswered) == 1:
            return self.files[self.unanswered[0]].remote
        return f"{len(self.unanswered)} files"

    def give_up(self, error: FtError) -> None:
        """Fail every file not answered with ``error`` (or the error it was answered with)."""
        for index in self.unanswered:
            own = self.transient.get(index, error)
            if own is not error:
                note_gave_up(own, self.attempts - 1)
            item = self.files[index]
            self.answered[index] = PipedResult(item.local, item.remote, 0, None, own)
        self.unanswered = []

    def results(self) -> list[PipedResult]:
        results = [result for result in self.answered if result is not None]
        assert len(results) == len(self.files), "a file of the batch was never answered"
        return results


def make_security(tls: bool, fingerprint: str | None, accept_new: bool,
                  known_servers: str | os.PathLike[str] | None, user: str | None,
                  password: str | None) -> Security:
    pin = None
    if fingerprint is not None:
        pin = normalize_fingerprint(fingerprint)
        if pin is None:
            raise ValueError("fingerprint must be 64 hex digits (SHA-256), as `ftserver "
                             "fingerprint` prints it")
    if user is not None and password is None:
        raise ValueError("a user needs a password")
    return Security(
        tls=tls or pin is not None or accept_new, fingerprint=pin, accept_new=accept_new,
        known_servers=None if known_servers is None else Path(known_servers),
        user=user, password=password)


__all__ = ["Client", "FtError", "GetResult", "Progress", "PutResult"]
