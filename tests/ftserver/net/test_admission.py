"""Connections over a limit get a prompt "busy" reply, whatever other refused peers do."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

import pytest

from common.protocol.errors import Busy
from ftclient import Client
from tests.serverproc import ServerProcess


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_trickling_refused_peer_does_not_delay_other_busy_replies(
        executor: str, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(executor, limits={"max_per_address": 1})
    holder = Client(server.host, server.port, busy_wait=0)
    holder.connect()  # takes the address's only slot
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection((server.host, server.port), timeout=5) as sock:
            deadline = time.monotonic() + 6.0
            while not stop.is_set() and time.monotonic() < deadline:
                try:
                    sock.sendall(b"x")
                except OSError:
                    return  # the server gave up on us: fine
                time.sleep(0.1)

    trickler = threading.Thread(target=trickle)
    trickler.start()
    try:
        time.sleep(0.3)  # the trickler is refused and keeps sending
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(Busy):
                Client(server.host, server.port, busy_wait=0, timeout=5).connect()
            assert time.monotonic() - started < 1.5
    finally:
        stop.set()
        trickler.join(timeout=10)
        holder.close()
