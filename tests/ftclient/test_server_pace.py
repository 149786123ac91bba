"""A server that drips, or that never stops listing: the client gives up in bounded time and memory.

An in-test server on 127.0.0.1 greets properly, then answers ``ls`` its own way:
one byte of a valid reply at a time, endless empty batches, or more entries than
any folder should hold. The real ``Client`` must stop within its timeout (the whole
reply, not each read), and refuse the listing past its bound (issue 18, #6).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import pytest

from common.io.channel import Channel
from common.protocol.errors import ProtocolError, Timeout
from common.protocol.frames import encode_frame
from common.protocol.replies import HelloReply
from common.protocol.requests import PROTOCOL_VERSION
from ftclient import Client
from ftclient.client import MAX_LIST_ENTRIES

WAIT = 20.0
ENTRY = {"type": "file", "size": 1, "mtime": 1.0}


class ListingServer:
    """Greets one client, then answers its first request by ``answer(sock)``."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="pace-server")
        self.thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        with sock, contextlib.suppress(OSError):
            sock.settimeout(WAIT)
            channel = Channel(sock)
            channel.receive(deadline=time.monotonic() + WAIT)
            channel.send(HelloReply(PROTOCOL_VERSION, "slow", "slow").to_dict())
            channel.receive(deadline=time.monotonic() + WAIT)
            self.answer(sock)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.thread.join(WAIT + 5)
        self.listener.close()


def drip(sock: socket.socket) -> None:
    """A valid one-entry listing, a byte every 0.2 s (30 s in all), until the client leaves."""
    reply = encode_frame({"ok": True, "entries": [{"name": "a", **ENTRY}], "done": True})
    for byte in reply:
        sock.sendall(bytes([byte]))
        time.sleep(0.2)


def endless_empty_batches(sock: socket.socket) -> None:
    frame = encode_frame({"ok": True, "entries": [], "done": False})
    for _ in range(100_000):
        sock.sendall(frame)


def too_many_entries(sock: socket.socket) -> None:
    per_batch = 500
    for batch in range(MAX_LIST_ENTRIES // per_batch + 10):
        entries = [{"name": f"f{batch}-{i}", **ENTRY} for i in range(per_batch)]
        sock.sendall(encode_frame({"ok": True, "entries": entries, "done": False}))


def test_a_dripping_reply_times_out_as_a_whole() -> None:
    server = ListingServer(drip)
    try:
        with Client("127.0.0.1", server.port, timeout=1.5, retries=0) as client:
            started = time.monotonic()
            with pytest.raises(Timeout):
                client.list("")
            assert time.monotonic() - started < 4  # not the 30 s the drip would take
    finally:
        server.close()


@pytest.mark.parametrize("answer", [endless_empty_batches, too_many_entries],
                         ids=["empty batches", "too many entries"])
def test_an_endless_listing_is_refused(answer: Callable[[socket.socket], None]) -> None:
    server = ListingServer(answer)
    try:
        with Client("127.0.0.1", server.port, timeout=10, retries=0) as client, \
                pytest.raises(ProtocolError):
            client.list("")
    finally:
        server.close()
