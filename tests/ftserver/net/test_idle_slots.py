"""Idle connections cannot hold every slot: when the server is full, an idle one makes room.

Issue 18: two addresses with 32 idle connections each took all 64 slots, and
everyone else got ``busy`` for as long as they kept them. Here the server has 4
slots, 2 per address; 127.0.0.1 and 127.0.0.3 park two connections each, and a
colleague at 127.0.0.2 must still get in. Connections in the middle of a request
are never closed for this: with every slot busy uploading, a newcomer gets ``busy``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from common.io.channel import Channel
from common.protocol.errors import Busy
from common.protocol.replies import HelloReply
from common.protocol.requests import PROTOCOL_VERSION, Hello
from ftclient import Client
from tests.serverproc import ServerProcess

LIMITS = {"sessions_per_worker": 4, "max_per_address": 2}


def greet(port: int, source: str) -> socket.socket:
    """A connection from ``source`` that says hello and then sits idle."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    channel = Channel(sock)
    channel.send(Hello(PROTOCOL_VERSION, "idle-test").to_dict())
    HelloReply.from_dict(channel.receive(deadline=time.monotonic() + 10))
    return sock


def closed_by_server(sock: socket.socket, wait: float) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


@pytest.fixture
def parked() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for sock in socks:
        sock.close()


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_full_server_closes_an_idle_connection_to_let_a_newcomer_in(
        executor: str, start_server: Callable[..., ServerProcess],
        parked: list[socket.socket]) -> None:
    server = start_server(executor, workers=1, limits=LIMITS)
    first = Client(server.host, server.port, busy_wait=0)
    first.connect()  # from 127.0.0.1: the oldest connection of the fullest address
    try:
        parked.append(greet(server.port, "127.0.0.1"))
        parked.extend(greet(server.port, "127.0.0.3") for _ in range(2))

        newcomer = greet(server.port, "127.0.0.2")  # was: busy, for as long as they idled
        parked.append(newcomer)

        assert server.wait_for_log(r"closed an idle connection from 127\.0\.0\.1 to make room")
        assert not any(closed_by_server(sock, 0.3) for sock in parked)  # only the oldest went
        assert first.list("") == []  # the closed one's owner simply reconnects and goes on
    finally:
        first.close()
    assert "Traceback" not in server.log


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_connections_in_a_request_are_never_closed_to_make_room(
        executor: str, start_server: Callable[..., ServerProcess],
        parked: list[socket.socket]) -> None:
    server = start_server(executor, workers=1, limits=LIMITS)
    for index, source in enumerate(["127.0.0.1", "127.0.0.1", "127.0.0.3", "127.0.0.3"]):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10,
                                        source_address=(source, 0))
        parked.append(sock)  # an upload under way: its head and part of its body sent
        sock.sendall(f"PUT /up{index}.bin HTTP/1.1\r\nHost: x\r\n"
                     f"Content-Length: 1000000\r\n\r\n".encode() + b"\0" * 1000)
    deadline = time.monotonic() + 10  # each upload has its partial: its request is read
    while len(list(server.partials.glob("*.stream"))) < 4:
        assert time.monotonic() < deadline, server.log
        time.sleep(0.05)

    with pytest.raises(Busy):
        Client(server.host, server.port, busy_wait=0, timeout=5).connect()

    assert not any(closed_by_server(sock, 0.3) for sock in parked)
    assert "to make room" not in server.log
    for sock in parked:
        with contextlib.suppress(OSError):
            sock.sendall(b"\0" * (1000000 - 1000))  # each upload completes
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(list(server.root.glob("up*.bin"))) < 4:
        time.sleep(0.05)
    assert sorted(path.name for path in server.root.glob("up*.bin")) == [
        "up0.bin", "up1.bin", "up2.bin", "up3.bin"]
