"""A bare protocol connection for tests that must say what ``Client`` never would.

It builds frames with ``common.protocol.frames.encode_frame`` (or takes raw bytes as
they are), reads replies with the codec's ``FrameDecoder``, and never hides a
reset or an early close: ``receive`` returns None when the server has gone.
Every read has a timeout, so a silent server fails a test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import time
from typing import Any

from common.protocol.frames import HEADER, FrameDecoder, encode_frame
from common.protocol.requests import PROTOCOL_VERSION

RECV_SIZE = 65536


def frame_bytes(body: bytes) -> bytes:
    """A length prefix and ``body`` exactly as given (it need not be JSON at all)."""
    return HEADER.pack(len(body)) + body


class RawConnection:
    def __init__(self, port: int, timeout: float = 5.0, source: str | None = None) -> None:
        """Connect to 127.0.0.1:``port``, from loopback address ``source`` if given."""
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout,
            source_address=None if source is None else (source, 0))
        self.decoder = FrameDecoder()
        self.errors: list[dict[str, Any]] = []
        """Every error object the server sent on this connection."""

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    # ------------------------------------------------------------ sending

    def send(self, obj: dict[str, Any]) -> None:
        self.sock.sendall(encode_frame(obj))

    def send_bytes(self, data: bytes) -> None:
        self.sock.sendall(data)

    # ------------------------------------------------------------ receiving

    def receive(self) -> dict[str, Any] | None:
        """The next frame, or None if the server closed or reset the connection."""
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                if frame.get("ok") is False and isinstance(frame.get("error"), dict):
                    self.errors.append(frame["error"])
                return frame
            try:
                data = self.sock.recv(RECV_SIZE)
            except (ConnectionResetError, BrokenPipeError):
                return None
            if not data:
                return None
            self.decoder.feed(data)

    def closed_by_server(self, timeout: float = 5.0) -> bool:
        """True if the server ends the connection within ``timeout`` (frames before are skipped)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(timeout)
        try:
            while time.monotonic() < deadline:
                if self.receive() is None:
                    return True
        except TimeoutError:
            return False
        return False

    def request(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.send(obj)
        reply = self.receive()
        assert reply is not None, f"the server closed the connection after {obj.get('op')!r}"
        return reply

    def error_code(self, obj: dict[str, Any]) -> str:
        """Send ``obj`` and return the code of the error reply it must get."""
        reply = self.request(obj)
        assert reply.get("ok") is False, f"{obj!r} was accepted: {reply!r}"
        return reply["error"]["code"]

    # ------------------------------------------------------------ conversations

    def hello(self) -> dict[str, Any]:
        reply = self.request({"op": "hello", "version": PROTOCOL_VERSION, "agent": "raw-test"})
        assert reply.get("ok") is True, reply
        return reply

    def start_put(self, path: str, size: int, mtime: float | None = None) -> dict[str, Any]:
        """Announce an upload and start it from offset 0; return the server's PutReady."""
        ready = self.request({"op": "put", "path": path, "size": size,
                              "mtime": RAW_MTIME if mtime is None else mtime})
        assert ready.get("ok") is True, ready
        self.send({"op": "put_data", "offset": 0})
        return ready

    def finish_put(self, rest: bytes, whole: bytes) -> dict[str, Any]:
        """Send the remaining raw bytes and the closing header; return the final reply."""
        self.send_bytes(rest)
        return self.request({"op": "put_end", "sha256": hashlib.sha256(whole).hexdigest()})


RAW_MTIME = 1_600_000_000.5
"""The mtime a raw upload announces unless told otherwise."""


def server_holds(port: int, path: str, size: int, mtime: float | None = None) -> int:
    """How many bytes of an interrupted upload of ``path`` the server offers to resume from.

    Asks with a ``put`` of the same size and mtime (those of ``start_put`` unless
    given: the same announced file, or the server offers nothing) and hangs up
    before sending any data, which leaves the server's partial as it was.
    """
    with RawConnection(port) as raw:
        raw.hello()
        deadline = time.monotonic() + 10.0
        while True:
            reply = raw.request({"op": "put", "path": path, "size": size,
                                 "mtime": RAW_MTIME if mtime is None else mtime})
            if reply.get("ok") is True:
                return int(reply["offset"])
            assert reply["error"]["code"] == "locked", reply
            assert time.monotonic() < deadline, "the name stayed locked"
            time.sleep(0.05)
