"""One client connection: greet, then read a request, act on it, reply, until the client leaves.

A session is a small loop over a Channel (the sans-IO codec driven over the
socket). Each phase has its own deadline: the greeting, the idle time between
requests, and every read or write inside a transfer. An invalid request gets an
error reply and the session goes on; a broken frame or a broken byte stream
ends the connection. No error, whatever its cause, escapes to the caller, and
no reply carries a traceback or a server path.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable
from typing import Any

from common.io.channel import Channel
from common.protocol.conversation import BATCH, ERROR, OK, PUT_DONE, SERVER, Conversation
from common.protocol.errors import (
    Busy,
    ConnectionLost,
    FrameError,
    FtError,
    InternalError,
    ProtocolError,
    Timeout,
)
from common.protocol.frames import encode_frame
from common.protocol.replies import Done, HelloReply, ListReply, StatReply, WalkReply, error_reply
from common.protocol.requests import (
    PROTOCOL_VERSION,
    AuthStart,
    GetRequest,
    Hello,
    ListDir,
    MakeDir,
    Move,
    PutRequest,
    Remove,
    SetMtime,
    Stat,
    Walk,
    parse_request,
)
from ftserver import __version__
from ftserver.config import Limits
from ftserver.logsetup import lines_held, log_text
from ftserver.net.throttling import ConnectionThrottles, ServerRates
from ftserver.ops.download import stat_with_digest
from ftserver.ops.outcome import TransferResult
from ftserver.session.ftburst import ReplyBurst
from ftserver.session.ftget import serve_get
from ftserver.session.ftput import serve_put
from ftserver.session.ftstream import is_streamed_put, refuse_streamed_put, serve_streamed_put
from ftserver.session.login import run_login
from ftserver.session.security import SessionSecurity
from ftserver.session.streambroken import StreamBroken
from ftserver.store.base import Share

log = logging.getLogger("ftserver.session")
transfer_log = logging.getLogger("ftserver.transfer")
file_log = logging.getLogger("ftserver.fileops")

LIST_BATCH_BYTES = 48 * 1024



class Session:
    def __init__(
        self,
        sock: socket.socket,
        peer: str,
        storage: Share,
        limits: Limits,
        server_name: str,
        stopping: threading.Event,
        security: SessionSecurity,
        rates: ServerRates | None = None,
        *,
        already_read: bytes = b"",
        greet_by: float | None = None,
    ) -> None:
        """``sock`` is connected, over TLS already if the server has it (net/connection.py);
        ``already_read``: its first bytes, read to tell ft from HTTP; ``greet_by``: the
        deadline (monotonic) for the hello, the handshake's if it ran."""
        self.sock = sock
        self.stopping = stopping
        self.in_request = False
        self.peer = peer
        self.storage = storage
        self.limits = limits
        self.server_name = server_name
        self.channel = Channel(sock, already_read=already_read)
        self.greet_by = greet_by
        self.throttles: ConnectionThrottles = (rates or ServerRates(limits)).for_connection()
        self.security = security
        self.grant = security.anonymous
        self.base_storage = storage
        self.burst = ReplyBurst()
        """Replies of pipelined streamed puts held back until their folders' fsync."""
        self.talk = Conversation(SERVER)
        """The order of the conversation (common/protocol/conversation.py), fed every frame."""

    def run(self) -> None:
        """Serve the connection until it ends; never raises."""
        try:
            deadline = self.greet_by or time.monotonic() + self.limits.handshake_timeout
            self._greet(deadline)
            while True:
                frame = self._next_streamed_put() if self.burst.pending else None
                buffered = frame is not None and is_streamed_put(frame)
                if frame is None:
                    self._finish_burst()  # before we wait: its replies may be awaited
                    # Idle (a shutdown may cut us) only once no reply is held back.
                    self.in_request = False
                    if self.stopping.is_set():
                        return
                    # The whole next request must arrive within idle_timeout, however it
                    # trickles.
                    frame = self.channel.receive_or_eof(
                        deadline=time.monotonic() + self.limits.idle_timeout)
                if frame is None:
                    return
                if self.stopping.is_set():
                    self._try_send(error_reply(Busy("the server is shutting down; retry soon")))
                    return
                self.in_request = True
                if not buffered:  # a streamed put of a burst sets its own deadlines
                    self.sock.settimeout(self.limits.transfer_timeout)
                self._handle(frame)
        except FrameError as exc:
            log.warning("%s: bad frame, closing: %s", self.peer, exc.message)
            self._try_send(error_reply(exc))
        except StreamBroken as exc:
            log.info("%s: transfer broke off: %s", self.peer, exc.cause.message)
            if self.stopping.is_set():  # cut by a shutdown: say so, while we still can
                self._try_send(error_reply(Busy(
                    "the server is shutting down; what arrived is kept, and the same "
                    "transfer resumes once it is back")))
        except Timeout as exc:
            log.info("%s: closing, %s", self.peer, exc.message)
            self._try_send(error_reply(exc))
        except ConnectionLost as exc:
            log.debug("%s: %s", self.peer, exc.message)
        except FtError as exc:
            log.warning("%s: closing: %s", self.peer, exc.message)
            self._try_send(error_reply(exc))
        except Exception:
            log.exception("%s: internal error", self.peer)
            self._try_send(error_reply(InternalError("internal server error")))
        finally:
            self._try_send(None)  # a burst's files made durable, and replied to if heard
            self.burst.abandon()
            try:
                self.sock.close()
            except OSError:
                pass

    def _next_streamed_put(self) -> dict | None:
        """The next request if it is already buffered whole and is a streamed put that the
        burst has room for; otherwise the burst must end first, and None."""
        if self.burst.full:
            return None
        frame = self.channel.receive_buffered()
        if frame is not None and not is_streamed_put(frame):
            self._finish_burst()
        return frame

    def _finish_burst(self) -> None:
        """Make a burst's files durable, log them, then send their replies together."""
        answers, replies = self.burst.finish()
        for answered in answers:
            self.talk.reply(ERROR if isinstance(answered.outcome, FtError) else PUT_DONE)
        with lines_held():  # a line per file, one write for them all
            log_text(transfer_log, logging.INFO, *[
                self._failure_line(answered.frame, answered.outcome, answered.started)
                if isinstance(answered.outcome, FtError)
                else self._transfer_line("put", answered.outcome, answered.started)
                for answered in answers])
        if replies:
            self.channel.send_raw(replies)

    def _greet(self, deadline: float) -> None:
        # A deadline for the whole TLS handshake and hello, not a timeout per read: a
        # client trickling a byte at a time must not hold a connection open past it.
        request = parse_request(self.channel.receive(deadline=deadline))
        self.sock.settimeout(self.limits.handshake_timeout)  # for the reply
        self.talk.receive(request)  # anything but hello: FrameError
        assert isinstance(request, Hello)
        if request.version != PROTOCOL_VERSION:
            raise FrameError(f"protocol version {request.version} is not supported "
                             f"(this server speaks {PROTOCOL_VERSION})")
        reply = HelloReply(PROTOCOL_VERSION, f"ftserver/{__version__}", self.server_name)
        self.channel.send(reply.to_dict())
        self.talk.reply(OK)

    def _handle(self, frame: dict) -> None:
        started = time.monotonic()
        talk = self.talk
        heard = False
        request: Any = None
        try:
            request = parse_request(frame)
            self.security.check_access(type(request).OP, self.grant)
            heard = True
            talk.receive(request)  # a put_end, put_data, auth_final or hello here: refused
            if isinstance(request, AuthStart):
                self._login(request)
            elif isinstance(request, ListDir):
                self._list(request)
            elif isinstance(request, Stat):
                entry = (stat_with_digest(self.storage, request.path,
                                          self.channel.peer_hung_up)
                         if request.digest else self.storage.stat(request.path))
                self.channel.send(StatReply(entry).to_dict())
                talk.reply(OK)
            elif isinstance(request, PutRequest) and request.stream:
                serve_streamed_put(self.channel, talk, self.storage, request, self.owner,
                                   self.limits.transfer_timeout, self.burst, frame, started,
                                   self.throttles.upload)
            elif isinstance(request, PutRequest):
                self._log_transfer("put", serve_put(
                    self.channel, talk, self.storage, request, self.owner,
                    self.limits.transfer_timeout, self.throttles.upload), started)
            elif isinstance(request, GetRequest):
                self._log_transfer("get", serve_get(self.channel, talk, self.storage, request,
                                                    self.limits.transfer_timeout,
                                                    self.throttles.download),
                                   started)
            elif isinstance(request, (MakeDir, Move, Remove, SetMtime)):
                self._file_op(request)
            elif isinstance(request, Walk):
                self._send_batches(self.storage.walk(request.path), WalkReply)
            else:  # the table refuses every other request here
                raise InternalError(f"{type(request).OP!r} got past the conversation's table")
        except StreamBroken as exc:
            self._log_failure(frame, exc.cause, started, exc.moved)
            raise
        except (ConnectionLost, Timeout, FrameError):
            raise
        except FtError as exc:
            if is_streamed_put(frame):  # its bytes are on their way: consume them first
                refuse_streamed_put(self.channel, talk, frame, exc, self.limits.transfer_timeout,
                                    self.burst, started, heard)  # answered (and logged) with it
                return
            if not heard:  # unreadable, or not allowed: answered with its error
                talk.refused()
            if isinstance(frame.get("op"), str) and frame["op"] in ("put", "get"):
                self._log_failure(frame, exc, started)
            elif isinstance(request, (MakeDir, Move, Remove, SetMtime)):  # failed or denied
                file_log.info("%s result=%s message=%r", self._file_op_text(request), exc.code,
                              exc.message)
            self.channel.send(error_reply(exc))
            talk.reply(ERROR)

    @property
    def who(self) -> str:
        """The user, for a log line: the name, or "-" before a login."""
        return self.grant.user or "-"

    @property
    def owner(self) -> str:
        """Whose uploads this session's are: its user's name, "" before a login."""
        return self.grant.user or ""

    def _login(self, request: AuthStart) -> None:
        if self.grant.user is not None:
            raise ProtocolError("this connection is already logged in")
        grant, reply = run_login(self.channel, self.talk, self.security, request, self.peer,
                                 self.limits.transfer_timeout)
        # Confine first: if the home folder cannot be had, that error is the login's answer
        # and the session keeps its old rights.
        self.storage = self.base_storage.confined_to(grant.home)
        self.grant = grant
        self.channel.send(reply.to_dict())
        self.talk.reply(OK)

    def _list(self, request: ListDir) -> None:
        self._send_batches(self.storage.list_folder(request.path), ListReply)

    def _file_op(self, request: MakeDir | Move | Remove | SetMtime) -> None:
        if isinstance(request, MakeDir):
            self.storage.make_dir(request.path, request.parents)
        elif isinstance(request, Move):
            self.storage.move(request.src, request.dst)
        elif isinstance(request, SetMtime):
            self.storage.set_mtime(request.path, request.mtime)
        else:
            self.storage.remove(request.path, request.recursive)
        file_log.info("%s result=ok", self._file_op_text(request))
        self.channel.send(Done().to_dict())
        self.talk.reply(OK)

    def _file_op_text(self, request: MakeDir | Move | Remove | SetMtime) -> str:
        """``op=mkdir peer=... user=... path='a/b' parents=True`` for a log line."""
        fields = " ".join(f"{key}={value!r}" if isinstance(value, str) else f"{key}={value}"
                          for key, value in request.to_dict().items() if key != "op")
        return f"op={request.OP} peer={self.peer} user={self.who} {fields}"

    def _send_batches(self, entries: Iterable[Any], reply: type) -> None:
        """Send ``entries`` as ``reply`` batches under LIST_BATCH_BYTES; an error ends them."""
        batch: list = []
        batch_bytes = 0
        for entry in entries:
            size = len(encode_frame(entry.to_dict()))
            if batch and batch_bytes + size > LIST_BATCH_BYTES:
                self.channel.send(reply(tuple(batch), False).to_dict())
                self.talk.reply(BATCH)
                batch, batch_bytes = [], 0
            batch.append(entry)
            batch_bytes += size
        self.channel.send(reply(tuple(batch), True).to_dict())
        self.talk.reply(OK)

    def _log_transfer(self, op: str, result: TransferResult, started: float) -> None:
        log_text(transfer_log, logging.INFO, self._transfer_line(op, result, started))

    def _log_failure(self, frame: dict, error: FtError, started: float, moved: int = 0) -> None:
        log_text(transfer_log, logging.INFO, self._failure_line(frame, error, started, moved))

    def _transfer_line(self, op: str, result: TransferResult, started: float) -> str:
        seconds = time.monotonic() - started
        return (f"op={op} peer={self.peer} user={self.who} path={result.path!r} "
                f"size={result.size} "
                f"offset={result.offset} bytes={result.moved} seconds={seconds:.3f} result=ok")

    def _failure_line(self, frame: dict, error: FtError, started: float, moved: int = 0) -> str:
        seconds = time.monotonic() - started
        path = frame.get("path") if isinstance(frame.get("path"), str) else "?"
        return (f"op={frame.get('op')} peer={self.peer} user={self.who} path={path[:200]!r} "
                f"bytes={moved} "
                f"seconds={seconds:.3f} result={error.code} message={error.message!r}")

    def _try_send(self, obj: dict | None) -> None:
        """Send ``obj`` (None: nothing) after the replies a burst holds; never raises."""
        try:
            if self.burst.pending or obj is not None:
                self.sock.settimeout(1.0)
            self._finish_burst()  # the replies it holds come first
            if obj is not None:
                self.channel.send(obj)
        except (FtError, OSError):
            pass
