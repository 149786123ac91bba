"""Drive the sans-IO frame codec over a connected socket that the caller owns.

This is the one place where frames meet a socket, shared by the server's sessions
and the client so neither writes the read loop twice. It never opens, accepts
or configures a socket (timeouts stay the caller's, except that a receive with a
deadline sets one before each read), and it turns socket-level failures into
ConnectionLost or Timeout so callers see ft errors only.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from common.protocol.errors import ConnectionLost, Timeout
from common.protocol.frames import MAX_FRAME, FrameDecoder, encode_frame

RECV_SIZE = 256 * 1024
_Read = TypeVar("_Read")
Watcher = Callable[[float], None]
"""Called with the seconds since the last byte arrived, while a read waits; may raise."""


class Channel:
    """Frames and raw bytes over one socket-like object (plain or TLS)."""

    def __init__(self, sock: socket.socket, max_frame: int = MAX_FRAME, *,
                 already_read: bytes = b"", raw_only: bool = False) -> None:
        """``already_read``: bytes of the stream read before this channel (the first byte
        a server read to tell ft from HTTP); ``raw_only``: no frames of ours, only raw
        bytes another framing announces (an HTTP body), see FrameDecoder."""
        self.sock = sock
        self.decoder = FrameDecoder(max_frame, raw_only)
        if already_read:
            self.decoder.feed(already_read)
        self.max_frame = max_frame
        self._watcher: Watcher | None = None
        self._watch_every = 1.0
        self._last_byte = 0.0

    @contextlib.contextmanager
    def watching(self, watcher: Watcher, every: float) -> Iterator[None]:
        """While inside, a read that waits is woken every ``every`` seconds to call
        ``watcher`` with how long nothing has arrived (it may raise to give up), then
        waits on until the deadline or timeout the read had anyway."""
        self._watcher, self._watch_every = watcher, every
        self._last_byte = time.monotonic()
        try:
            yield
        finally:
            self._watcher = None

    # ------------------------------------------------------------ frames

    def send(self, obj: dict[str, Any]) -> None:
        self.send_raw(encode_frame(obj, self.max_frame))

    def peer_hung_up(self) -> bool:
        """Whether the other side has closed or reset the connection (without reading)."""
        poller = select.poll()
        poller.register(self.sock.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)
        return bool(poller.poll(0))

    def receive(self, deadline: float | None = None) -> dict[str, Any]:
        """Return the next dict header; a closed connection raises ConnectionLost."""
        frame = self.receive_or_eof(deadline)
        if frame is None:
            raise ConnectionLost("the connection was closed by the other side")
        return frame

    def last_frame(self, wait: float = 0.5) -> dict[str, Any] | None:
        """After a send found the connection gone: the frame the other side sent before it
        closed (why it did), if one arrived whole within ``wait`` s; never raises.

        A reset still leaves what had arrived readable, so an upload cut by a server
        shutting down can say so instead of "connection reset by peer"."""
        deadline = time.monotonic() + wait
        try:
            while (frame := self.decoder.next_frame()) is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                data = self.sock.recv(65536)
                if not data:
                    return None
                self.decoder.feed(data)
        except Exception:  # noqa: BLE001 - a last look at a dead connection: anything goes
            return None
        return frame

    def receive_buffered(self) -> dict[str, Any] | None:
        """The next dict header if it has already arrived whole, else None; never reads."""
        return self.decoder.next_frame()

    def receive_or_eof(self, deadline: float | None = None) -> dict[str, Any] | None:
        """Return the next dict header, or None if the peer closed cleanly between frames.

        ``deadline`` (a ``time.monotonic()`` value) bounds the whole frame, not each
        read, so a peer trickling one byte at a time cannot stretch it; the socket's
        timeout is set to what is left before every read.
        """
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("the other side did not send its message in time")
                self.sock.settimeout(left)
            data = self._recv(RECV_SIZE)
            if not data:
                if self.decoder.buffered:
                    raise ConnectionLost("the connection was closed in the middle of a frame")
                return None
            self.decoder.feed(data)

    # ------------------------------------------------------------ raw bytes

    def expect_raw(self, count: int) -> None:
        self.decoder.expect_raw(count)

    def take_raw_buffered(self, count: int) -> bytes | None:
        """The next ``count`` bytes as raw bytes, if they have all arrived already; else
        None and nothing is taken. Never reads: a small file that came in the same read
        as its header needs no receive loop."""
        if self.decoder.raw_pending or self.decoder.buffered < count:
            return None
        self.decoder.expect_raw(count)
        return self.decoder.take_raw(count)

    def recv_raw_into(self, view: memoryview) -> int:
        """Fill ``view`` with raw bytes (no more than are pending); return how many came.

        Bytes the decoder already buffered come first; after that, reads go straight
        from the socket into ``view``. Raises ConnectionLost at end of stream.
        """
        want = min(len(view), self.decoder.raw_pending)
        if want == 0:
            return 0
        if self.decoder.buffered:
            chunk = self.decoder.take_raw(want)
            view[: len(chunk)] = chunk
            return len(chunk)
        try:
            got = self._watched(lambda: self.sock.recv_into(view[:want]))
        except TimeoutError:
            raise Timeout("the transfer stalled") from None
        except OSError as exc:
            raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None
        if got == 0:
            raise ConnectionLost("the connection was closed in the middle of a transfer")
        self.decoder.skip_raw(got)
        return got

    def recv_raw_exactly(self, view: memoryview, deadline: float | None = None) -> None:
        """Fill all of ``view`` with raw bytes (the init_recv loop).

        With a ``deadline`` (a ``time.monotonic()`` value) the whole of ``view`` must
        arrive by then, so a peer sending a byte now and then cannot stretch it.
        """
        filled = 0
        while filled < len(view):
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout("the transfer is too slow")
                self.sock.settimeout(left)
            filled += self.recv_raw_into(view[filled:])

    def take_unread(self) -> bytes:
        """Bytes read past the raw bytes taken (see FrameDecoder.take_unread)."""
        return self.decoder.take_unread()

    def send_raw(self, data: bytes | memoryview) -> None:
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise Timeout("the other side stopped reading") from None
        except OSError as exc:
            raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None

    # ------------------------------------------------------------ helpers

    def _watched(self, read: Callable[[], _Read]) -> _Read:
        """``read()`` under the socket's timeout; with a watcher, in slices of its interval."""
        if self._watcher is None:
            return read()
        budget = self.sock.gettimeout()
        started = time.monotonic()
        try:
            while True:
                left = None if budget is None else budget - (time.monotonic() - started)
                if left is not None and left <= 0:
                    raise TimeoutError
                self.sock.settimeout(self._watch_every if left is None
                                     else min(left, self._watch_every))
                try:
                    result = read()
                except TimeoutError:
                    if left is not None and left <= self._watch_every:
                        raise
                    self._watcher(time.monotonic() - self._last_byte)
                    continue
                self._last_byte = time.monotonic()
                return result
        finally:
            self.sock.settimeout(budget)

    def _recv(self, size: int) -> bytes:
        try:
            return self._watched(lambda: self.sock.recv(size))
        except TimeoutError:
            raise Timeout("the other side did not answer in time") from None
        except OSError as exc:
            raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None
