"""The process executor when a worker dies: its connections are dropped and released,
a new worker takes its place, and the server goes on serving and still stops cleanly."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from common.protocol.errors import ConnectionLost
from ftclient import Client
from tests.procinfo import is_gone, worker_pids
from tests.serverproc import ServerProcess


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_killed_workers_are_replaced_and_their_slots_freed(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    # One connection per address at most: if a dead worker's session were never
    # released, every later connection from 127.0.0.1 would be refused as busy.
    server = start_server("process", workers=2, limits={"max_per_address": 1})
    assert server.proc is not None
    assert wait_for(lambda: len(worker_pids(server.proc.pid)) == 2)
    first = worker_pids(server.proc.pid)

    held = Client(server.host, server.port, busy_wait=0, retries=0)  # to see the cut
    held.connect()
    try:
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        # The session died with its worker. Either the next request meets the cut, or the
        # client saw the close first and, as it does for any connection found closed
        # before a request, connected anew, to a replacement worker.
        try:
            held.list()
        except ConnectionLost:
            pass
    finally:
        held.close()

    assert wait_for(lambda: len(worker_pids(server.proc.pid)) == 2
                    and not worker_pids(server.proc.pid) & first)
    assert server.wait_for_log("exited unexpectedly")

    source = tmp_path / "after.bin"
    source.write_bytes(os.urandom(300_000))
    for index in range(4):  # sequential: the per-address limit is 1
        with Client(server.host, server.port, busy_wait=5) as client:
            client.put(source, f"after{index}.bin")
            assert (server.root / f"after{index}.bin").read_bytes() == source.read_bytes()

    replacements = worker_pids(server.proc.pid)
    assert server.terminate(timeout=30) == 0
    assert all(is_gone(pid) for pid in replacements)
