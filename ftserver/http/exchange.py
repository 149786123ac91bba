"""One HTTP request and its answer over the session's socket, with h11 doing the HTTP.

h11 parses the request head and writes the response head; the socket stays ours,
so a file goes out with sendfile(2) (h11 only counts its length, by its documented
data-passthrough) and an upload's body is read straight into the one upload code
(ftserver/ops/upload.py) through a raw-bytes Channel. Each request gets a fresh
h11 connection, fed the bytes that arrived after the previous one: pipelined
requests are read in order, and a body that went around h11 cannot confuse it.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import h11

from common.io.channel import Channel
from common.protocol.errors import ConnectionLost, ProtocolError, Timeout
from ftserver.http.headers import ALWAYS, Headers
from ftserver.http.statuses import REASONS

MAX_HEAD_BYTES = 16 * 1024
"""Request line and headers together; more is refused with 431."""
MAX_REQUEST_LINE = 8 * 1024
"""The request line alone (method, target, version); more is refused with 414."""
HTTP_VERSIONS = (b"1.0", b"1.1")
RECV_SIZE = 64 * 1024
CHUNKED_SPAN = 1 << 20
"""A chunked body must bring this many bytes within each transfer_timeout."""


class HeadError(Exception):
    """The request head is not valid HTTP/1.1, or too big: answer ``status`` and close."""

    def __init__(self, status: int, message: str, conn: h11.Connection) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.conn = conn

    def answer(self, sock: socket.socket) -> None:
        """Tell the client ``status`` and why, written by h11 (it may answer a client
        whose request it could not read), then the connection closes."""
        body = f"{self.message}\n".encode()
        headers = [*ALWAYS, ("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body))), ("Connection", "close")]
        try:
            data = self.conn.send(h11.Response(
                status_code=self.status, headers=_encoded(headers),
                reason=REASONS.get(self.status, "").encode())) or b""
            data += self.conn.send(h11.Data(data=body)) or b""
            sock.settimeout(1.0)
            sock.sendall(data)
        except (OSError, h11.LocalProtocolError):
            pass


@dataclass(frozen=True)
class _Length:
    """Stands for ``count`` bytes that go out by sendfile: h11 counts them, never sees them."""

    count: int

    def __len__(self) -> int:
        return self.count


def read_head(sock: socket.socket, already_read: bytes, first_wait: float,
              head_wait: float, head_by: float | None = None) -> HttpExchange | None:
    """The next request's head, or None if the client closed (or stayed idle) between
    requests. ``first_wait``: seconds for its first byte; ``head_wait``: for the rest,
    however slowly it trickles in (slowloris); ``head_by``: a ``time.monotonic()`` by
    which the whole head must be in whatever the waits say (a connection's first)."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    if already_read:  # (h11 takes b"" for the end of the stream)
        conn.receive_data(already_read)
    fed = len(already_read)
    line_start = already_read[:MAX_REQUEST_LINE + 1]
    latest = head_by if head_by is not None else float("inf")
    deadline = min(latest, time.monotonic() + (head_wait if already_read else first_wait))
    started = bool(already_read)
    while True:
        if _request_line_too_long(line_start):
            raise HeadError(414, "the request line is too long", conn)
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            raise HeadError(exc.error_status_hint, str(exc), conn) from None
        if isinstance(event, h11.Request):
            _check_head(event, fed - len(conn.trailing_data[0]), conn)
            return HttpExchange(sock, conn, event)
        if isinstance(event, h11.ConnectionClosed):
            return None
        if event is not h11.NEED_DATA:
            raise HeadError(400, "not a request", conn)
        left = deadline - time.monotonic()
        if left <= 0:
            if not started:
                return None  # an idle keep-alive connection: closed quietly
            raise HeadError(408, "the request head did not arrive in time", conn)
        sock.settimeout(left)
        try:
            data = sock.recv(RECV_SIZE)
        except TimeoutError:
            continue
        except OSError as exc:
            raise ConnectionLost(f"the connection dropped: {exc}") from None
        if data and not started:
            started = True
            deadline = min(latest, time.monotonic() + head_wait)
        if len(line_start) <= MAX_REQUEST_LINE:
            line_start += data[:MAX_REQUEST_LINE + 1 - len(line_start)]
        fed += len(data)
        conn.receive_data(data)


def _request_line_too_long(line_start: bytes) -> bool:
    """Whether the first ``MAX_REQUEST_LINE + 1`` bytes of a head hold no line end."""
    return len(line_start) > MAX_REQUEST_LINE and b"\n" not in line_start


def _check_head(request: h11.Request, head_bytes: int, conn: h11.Connection) -> None:
    """What h11 lets through but we refuse: a head that came whole yet too big (h11
    only bounds one still arriving), another HTTP version, and a body framed both by
    Transfer-Encoding and by Content-Length (request smuggling: h11 would follow the
    first, a proxy in front might follow the second)."""
    if head_bytes > MAX_HEAD_BYTES:
        raise HeadError(431, f"the request head is over {MAX_HEAD_BYTES} bytes", conn)
    if request.http_version not in HTTP_VERSIONS:
        raise HeadError(505, "only HTTP/1.0 and HTTP/1.1 are spoken here", conn)
    names = {name for name, _ in request.headers}
    if b"transfer-encoding" in names and b"content-length" in names:
        raise HeadError(400, "both Transfer-Encoding and Content-Length: refused", conn)


class HttpExchange:
    """A request's head, and the means to answer it: a head, a body, or a file."""

    def __init__(self, sock: socket.socket, conn: h11.Connection, request: h11.Request) -> None:
        self.sock = sock
        self.conn = conn
        self.request = request
        self.method = request.method.decode("ascii", "replace")
        self.target = bytes(request.target)
        self.headers: dict[str, str] = {}
        for name, value in request.headers:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1")
            self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text
        self.status = 0
        self.sent = 0
        """Body bytes sent (for the log line)."""
        self._body_taken = not self.has_body
        self._leftover: bytes | None = None
        self.close_after = False
        self.result = "ok"
        """ft's error code when the answer is a refusal (for the log line)."""

    # ------------------------------------------------------------ the request

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def has_body(self) -> bool:
        return "transfer-encoding" in self.headers or int(
            self.headers.get("content-length", "0") or 0) > 0

    @property
    def content_length(self) -> int | None:
        """The body's declared length (h11 has checked it is one valid number)."""
        value = self.headers.get("content-length")
        return int(value) if value is not None else None

    def body_channel(self) -> Channel:
        """A Channel that reads the body's bytes as raw data, those h11 read first
        included. The caller takes exactly ``content_length`` bytes, then calls
        ``body_read``."""
        if self.content_length is None:
            raise ProtocolError("this request has no Content-Length")
        self._continue_if_asked()
        return Channel(self.sock, already_read=self.conn.trailing_data[0], raw_only=True)

    @property
    def chunked(self) -> bool:
        return "chunked" in self.headers.get("transfer-encoding", "").lower()

    def body_chunks(self, timeout: float) -> Iterator[bytes]:
        """The pieces of a chunked body, decoded by h11, as they arrive. Each MiB must
        come within ``timeout`` seconds, however it trickles."""
        self._continue_if_asked()
        deadline = time.monotonic() + timeout
        counted = 0
        while True:
            try:
                event = self.conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise ProtocolError(f"the chunked body is not valid HTTP: {exc}") from None
            if isinstance(event, h11.Data):
                counted += len(event.data)
                if counted >= CHUNKED_SPAN:
                    counted, deadline = 0, time.monotonic() + timeout
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._body_taken = True
                self._leftover = self.conn.trailing_data[0]
                return
            elif event is h11.NEED_DATA:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("the body is too slow")
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(RECV_SIZE)
                except TimeoutError:
                    raise Timeout("the body is too slow") from None
                except OSError as exc:
                    raise ConnectionLost(f"the connection dropped: {exc}") from None
                if not data:
                    raise ConnectionLost("the connection was closed in the middle of a body")
                self.conn.receive_data(data)
            else:
                raise ConnectionLost("the connection was closed in the middle of a body")

    def _continue_if_asked(self) -> None:
        if self.conn.they_are_waiting_for_100_continue:
            self._write(self.conn.send(h11.InformationalResponse(
                status_code=100, headers=[], reason=b"Continue")))

    def body_read(self, channel: Channel) -> None:
        """The whole body was taken off ``channel``: what followed it is the next request."""
        self._body_taken = True
        self._leftover = channel.take_unread()

    def leftover(self) -> bytes:
        """Bytes read past this request: the start of the next one."""
        if self._leftover is not None:
            return self._leftover
        return self.conn.trailing_data[0]

    @property
    def body_taken(self) -> bool:
        """Whether the request's body (if any) was read to its end."""
        return self._body_taken

    @property
    def keep_alive(self) -> bool:
        """Whether the connection may carry another request after this answer."""
        return (self._body_taken and not self.close_after
                and self.conn.our_state is h11.DONE)

    # ------------------------------------------------------------ the answer

    def respond(self, status: int, headers: Headers, body: bytes = b"",
                content_type: str = "text/plain; charset=utf-8") -> None:
        """A whole answer with a small ``body`` (not sent to a HEAD)."""
        head = [*headers, ("Content-Type", content_type)] if body or status >= 400 else headers
        self.start(status, head, len(body))
        if self.method != "HEAD" and body:
            self._write(self.conn.send(h11.Data(data=body)))
            self.sent += len(body)
        self.finish()

    def start(self, status: int, headers: Headers, length: int | None) -> None:
        """The answer's head; a body of ``length`` bytes follows (none for HEAD)."""
        all_headers = [*ALWAYS, *headers]
        if length is not None:
            all_headers.append(("Content-Length", str(length)))
        if not self._body_taken:
            # The body was not read: the rest of the stream cannot be trusted for another
            # request, so this answer is the last.
            self.close_after = True
        if self.close_after:
            all_headers.append(("Connection", "close"))
        self.status = status
        response = h11.Response(status_code=status, headers=_encoded(all_headers),
                                reason=REASONS.get(status, "").encode())
        self._write(self.conn.send(response))

    def send_body(self, data: bytes) -> None:
        """A piece of a body whose length was not said (chunked, written by h11)."""
        self._write(self.conn.send(h11.Data(data=data)))
        self.sent += len(data)

    def counted(self, count: int) -> None:
        """``count`` body bytes went out around h11 (sendfile): let it count them."""
        self.conn.send_with_data_passthrough(h11.Data(data=_Length(count)))  # type: ignore[arg-type]
        self.sent += count

    def finish(self) -> None:
        self._write(self.conn.send(h11.EndOfMessage()))

    def channel(self) -> Channel:
        """A Channel over the socket for sending a file's bytes (its deadlines, sendfile)."""
        return Channel(self.sock)

    def _write(self, data: bytes | None) -> None:
        if not data:
            return
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise Timeout("the client stopped reading") from None
        except OSError as exc:
            raise ConnectionLost(f"the connection dropped: {exc}") from None


def _encoded(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(name.encode("ascii"), value.encode("latin-1", "replace")) for name, value in headers]
