"""80 idle or stalled connections from one address do not delay a client from another address.

The flood comes from 127.0.0.1, the measured client from 127.0.0.2 (Linux routes
all of 127/8 to the loopback interface). With TLS, half the flood starts a TLS
record and stalls, so the server sits in handshakes: these must run in the
sessions, never in the accept loop. Checked under both executors.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Callable

import pytest

from common.io.channel import Channel
from common.io.tls import client_context
from common.protocol.replies import HelloReply
from common.protocol.requests import PROTOCOL_VERSION, Hello
from tests.serverproc import ServerProcess

FLOOD = 80
OTHER_ADDRESS = "127.0.0.2"
ALLOWED_DELAY = 2.0


def greet_from_other_address(port: int, tls: bool) -> float:
    """Connect from 127.0.0.2, (handshake,) say hello, read the reply; return the seconds taken."""
    started = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", port), timeout=20,
                                    source_address=(OTHER_ADDRESS, 0))
    with contextlib.closing(sock):
        if tls:
            sock = client_context().wrap_socket(sock)
        channel = Channel(sock)
        channel.send(Hello(PROTOCOL_VERSION, "flood-test").to_dict())
        HelloReply.from_dict(channel.receive(deadline=time.monotonic() + 20))
        sock.close()
    return time.monotonic() - started


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("executor", ["thread", "process"])
def test_idle_flood_from_one_address_does_not_delay_another(
        executor: str, tls: bool, start_server: Callable[..., ServerProcess]) -> None:
    settings = {"tls": {"enabled": True}} if tls else {}
    server = start_server(executor, **settings)
    baseline = greet_from_other_address(server.port, tls)
    flood: list[socket.socket] = []
    try:
        for index in range(FLOOD):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
            flood.append(sock)
            if index % 2:
                sock.sendall(b"\x16\x03")  # the start of a TLS record (or a frame length): stall
        # Every flood connection has been through the accept loop: the ones over the
        # per-address limit were refused, the rest sit in their sessions.
        refused = FLOOD - 32
        deadline = time.monotonic() + 30
        while len(re.findall(r"refused, your address", server.log)) < refused:
            assert time.monotonic() < deadline, server.log[-2000:]
            time.sleep(0.05)
        delays = [greet_from_other_address(server.port, tls) for _ in range(3)]
    finally:
        for sock in flood:
            sock.close()
    assert max(delays) < baseline + ALLOWED_DELAY, (baseline, delays)
    assert "Traceback" not in server.log
