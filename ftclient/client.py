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
import os
import shlex
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from common.protocol.errors import ConnectionLost, FtError, OutcomeUnknown, ProtocolError, Timeout
from common.protocol.fields import mtime_ns
from common.protocol.replies import Done, EntryInfo, ListReply, StatReply, WalkEntry, WalkReply
from common.protocol.requests import ListDir, MakeDir, Move, Remove, SetMtime, Stat, Walk
from ftclient.connection import Connection
from ftclient.digests import SentDigests, cached_digest, remember, remember_sent
from ftclient.names import normalize_remote
from ftclient.results import GetResult, Progress, ProgressCallback, PutResult
from ftclient.retry import RetryCallback, RetryNote, run_with_retries

if TYPE_CHECKING:
    from common.io.hashcache import HashCache
    from ftclient.pipeline import BytesCallback, PipedFile, PipedResult
    from ftclient.spool import StreamSource
    from ftclient.transfers import StreamSink

# What only transfers need (the pipeline, spooling, the send and receive loops) is
# imported by the first transfer: ``ls``, ``stat`` and the rest start without it.

MAX_WALK_ENTRIES = 1_000_000
"""A server listing more entries than this in one walk is refused (memory stays bounded)."""
MAX_LIST_ENTRIES = 1_000_000
"""The same bound for one folder's listing (10 million entries once took 2.9 GB)."""


class Client(Connection):
    """A connection to one ft server. Use as a context manager, or call ``close``."""

    def list(self, path: str = "", *, on_retry: RetryCallback | None = None
             ) -> list[EntryInfo]:
        """Entries of a remote folder ("" is the share's root), sorted by name."""
        name = normalize_remote(path, allow_root=True)
        return self.retrying(lambda: self._list_once(name), name or "/", on_retry)

    def _list_once(self, name: str) -> list[EntryInfo]:
        return self._batched(ListDir(name), ListReply, limit=MAX_LIST_ENTRIES)

    def stat(self, path: str, *, digest: bool = False, on_retry: RetryCallback | None = None
             ) -> EntryInfo:
        """A remote entry; ``digest`` has the server compute a file's SHA-256 if unknown."""
        name = normalize_remote(path)
        return self.retrying(lambda: self._stat_once(name, digest), name, on_retry)

    def _stat_once(self, name: str, digest: bool) -> EntryInfo:
        channel = self.channel()
        channel.send(Stat(name).to_dict())
        entry = self.reply(StatReply, channel).entry
        if digest and entry.type == "file" and entry.sha256 is None:
            channel = self.channel()
            channel.send(Stat(name, digest=True).to_dict())
            entry = self.reply(StatReply, channel, self.deadline_after(entry.size)).entry
        return entry

    def mkdir(self, path: str, *, parents: bool = False,
              on_retry: RetryCallback | None = None) -> None:
        """Create a remote folder; ``parents`` makes missing parents and accepts an existing one.

        Without ``parents`` a second run would answer "exists" for the folder the
        first made, so a cut after sending is not retried (OutcomeUnknown).
        """
        request = MakeDir(normalize_remote(path), parents)
        if parents:
            self.retrying(lambda: self._simple(request), request.path, on_retry)
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
        self.retrying(lambda: self._simple(request), request.path, on_retry)

    def _simple(self, request: MakeDir | Move | Remove | SetMtime) -> None:
        channel = self.channel()
        channel.send(request.to_dict())
        self.reply(Done, channel)

    def _once(self, request: MakeDir | Move | Remove, path: str, done: str, check: str,
              on_retry: RetryCallback | None) -> None:
        """Send a request that must not run twice, retrying it only until it is sent whole.

        The server acts only on a whole frame, so a failure to connect or to send is
        retried; once it is sent, a cut leaves unknown whether it was ``done``.
        """
        def attempt() -> None:
            channel = self.channel()
            channel.send(request.to_dict())
            try:
                self.reply(Done, channel)
            except (ConnectionLost, Timeout) as exc:
                raise OutcomeUnknown(
                    f"{path!r}: {exc.message}, after the request was sent, so whether it "
                    f"was {done} is unknown; check with `ftclient stat {shlex.quote(check)}`"
                ) from None

        self.retrying(attempt, path, on_retry)

    def walk(self, path: str = "", *, on_retry: RetryCallback | None = None
             ) -> list[WalkEntry]:
        """Every file and folder below a remote folder, parents first, paths relative to it.

        Each path has passed the path rules (no ``..``, nothing absolute, no controls).
        """
        name = normalize_remote(path, allow_root=True)
        return self.retrying(lambda: self._walk_once(name), name or "/", on_retry)

    def _walk_once(self, name: str) -> list[WalkEntry]:
        return self._batched(Walk(name), WalkReply, limit=MAX_WALK_ENTRIES)

    def _batched(self, request: ListDir | Walk, reply_type: type[ListReply] | type[WalkReply],
                 limit: int) -> list[Any]:
        """Send ``request`` and gather the entries of its replies until one says done.

        A server sending more than ``limit`` entries is refused (memory stays bounded),
        and so is an empty batch that is not the last (it could go on for ever); each
        batch must arrive whole within the timeout.
        """
        channel = self.channel()
        channel.send(request.to_dict())
        entries: list[Any] = []
        while True:
            batch = self.reply(reply_type, channel)
            if not batch.entries and not batch.done:
                self.drop()
                raise ProtocolError("the server sent an empty batch that was not the last")
            entries.extend(batch.entries)
            if limit is not None and len(entries) > limit:
                self.drop()
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
        from ftclient import pipeline

        return self._pipelined(pipeline.put_pipelined, files, moved, on_retry)

    def get_many(self, files: Sequence[PipedFile], moved: BytesCallback | None = None, *,
                 on_retry: RetryCallback | None = None) -> list[PipedResult]:
        """Download small files (remote to local path) pipelined; their folders must exist.

        Retried as ``put_many`` is; a file cut short is fetched again from its first byte.
        """
        from ftclient import pipeline

        return self._pipelined(pipeline.get_pipelined, files, moved, on_retry)

    def _pipelined(self, run: Callable[..., None], files: Sequence[PipedFile],
                   moved: BytesCallback | None, on_retry: RetryCallback | None
                   ) -> list[PipedResult]:
        from ftclient.batch import PipelinedBatch

        batch = PipelinedBatch(files, moved)
        if not files:
            return []

        def attempt() -> None:
            try:
                batch.attempt(run, self.channel, self.timeout, self.throttle)
            except BaseException:
                self.drop()  # the stream's position is unknown
                raise

        def retrying(note: RetryNote) -> None:
            if on_retry is not None:
                on_retry(replace(note, path=batch.left()))

        try:
            self.retrying(attempt, "", retrying)
        except FtError as error:
            batch.give_up(error)
        return batch.results()

    def put(
        self, local: str | os.PathLike[str] | StreamSource, remote: str | None = None,
        *, progress: ProgressCallback | None = None, on_retry: RetryCallback | None = None,
        cache: HashCache | None = None,
    ) -> PutResult:
        """Upload ``local``; ``remote`` defaults to its name, and a trailing "/" means a folder.

        A lost connection, timeout or "busy" is retried up to ``self.retries`` times
        (see retry.py), each time resuming from what the server holds; ``on_retry``
        hears of each retry before its wait.

        ``local`` may also be a binary file object (``sys.stdin.buffer``, a pipe): it is
        read to its end into a private spool file first (the protocol announces each
        file's size), which is then put as any file and removed. Retries resume from the
        spool; a new run must read the stream again. ``remote`` is then required.

        ``cache``: the client's digest cache. A file whose digest it holds is announced
        with it, so a server that has that very file confirms it without a byte moving.
        """
        from ftclient.transfers import put_once

        if not isinstance(local, (str, os.PathLike)):
            if remote is None:
                raise ValueError("a stream has no name: give the remote name to put it as")
            from ftclient.spool import spooled

            with spooled(local) as path:
                return self.put(path, remote, progress=progress, on_retry=on_retry)
        sent: SentDigests = {}  # what an attempt sent whole: a retry announces it
        if cache is not None:  # a digest known already: the server may have that file
            sent.update(cached_digest(cache, os.fspath(local)))
        result, retries = run_with_retries(
            lambda: put_once(self, local, remote, progress, sent), path=os.fspath(local),
            retries=self.retries, first_delay=self.retry_delay, before_retry=self.drop,
            on_retry=on_retry)
        if cache is not None:
            remember_sent(cache, os.fspath(local), sent, result.sha256)
        return replace(result, retries=retries)

    def get(
        self, remote: str, local: str | os.PathLike[str] | StreamSink | None = None,
        *, progress: ProgressCallback | None = None, on_retry: RetryCallback | None = None,
        within: str | None = None, cache: HashCache | None = None,
    ) -> GetResult:
        """Download ``remote`` to ``local`` (a file name or an existing folder; default: ./NAME).

        A partial download waits beside the destination as ``.NAME.ftpart`` and is
        resumed by the next ``get`` if the server's file starts with the same bytes.
        Failures are retried as for ``put``. ``within``: a folder holding ``local``,
        below which no symlink is followed (as ``PipedFile.within``).

        ``local`` may also be a binary file object (``sys.stdout.buffer``, an open file):
        the file is written into it in order, and its SHA-256 checked at the end; a
        stream cannot resume, so a cut once bytes were written raises StreamCut. So is a
        destination that is a symlink or not a regular file (``/dev/stdout``, a FIFO):
        written through, as ``cp`` does, never replaced.

        ``cache``: the client's digest cache. A destination it knows to hold the server's
        file already (same size and SHA-256, asked with one ``stat``) is left as it is,
        only its mtime set: nothing moves (``resumed_from`` is then the whole size).
        """
        from ftclient.transfers import get_once, get_stream_once

        if local is not None and not isinstance(local, (str, os.PathLike)):
            sink, name = local, _stream_name(local)
            result, retries = run_with_retries(
                lambda: get_stream_once(self, remote, sink, name, progress), path=remote,
                retries=self.retries, first_delay=self.retry_delay, before_retry=self.drop,
                on_retry=on_retry)
            return replace(result, retries=retries)
        if cache is not None and within is None:
            held = self._held_already(remote, local, cache, on_retry)
            if held is not None:
                return held
        result, retries = run_with_retries(
            lambda: get_once(self, remote, local, progress, within), path=remote,
            retries=self.retries, first_delay=self.retry_delay, before_retry=self.drop,
            on_retry=on_retry)
        if cache is not None:
            with contextlib.suppress(OSError):
                remember(cache, result.local, os.stat(result.local), result.sha256)
        return replace(result, retries=retries)

    def _held_already(self, remote: str, local: str | os.PathLike[str] | None,
                      cache: HashCache, on_retry: RetryCallback | None) -> GetResult | None:
        """The result of a get that need not move a byte: the destination is a regular
        file whose cached SHA-256 and size are the server's file's; else None."""
        from ftclient.localfiles import choose_destination

        destination = choose_destination(normalize_remote(remote),
                                         None if local is None else os.fspath(local))
        try:
            st = os.lstat(destination)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        cached = cache.get(os.path.realpath(destination), st)
        if cached is None:
            return None
        info = self.stat(remote, digest=True, on_retry=on_retry)
        if info.type != "file" or info.size != st.st_size or info.sha256 != cached:
            return None
        if st.st_mtime_ns != mtime_ns(info.mtime):
            with contextlib.suppress(OSError):
                os.utime(destination, ns=(st.st_atime_ns, mtime_ns(info.mtime)))
                remember(cache, destination, os.stat(destination), cached)
        return GetResult(destination, info.size, cached, info.size)


def _stream_name(sink: StreamSink) -> str:
    """How messages name a stream: its file name, or "standard output"."""
    name = getattr(sink, "name", None)
    if name in (1, "<stdout>"):
        return "standard output"
    return repr(name) if isinstance(name, str) else "the stream"


__all__ = ["Client", "FtError", "GetResult", "Progress", "PutResult"]
