"""kill -9 of the server in the middle of an upload: nothing half-written shows, the
partial survives, the same put resumes, and (process executor) no worker is orphaned."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ftclient import Client
from tests.procinfo import is_gone, worker_pids
from tests.rawwire import RawConnection, server_holds
from tests.serverproc import ServerProcess

MiB = 1 << 20


def partial_bytes(server: ServerProcess) -> int:
    return sum(p.stat().st_size for p in (server.state_dir / "partials").glob("*.part"))


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_kill_9_mid_upload_then_restart_resumes(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    data = random.Random(executor).randbytes(6 * MiB)
    source = tmp_path / "disk.img"
    source.write_bytes(data)
    server = start_server(executor, name="crashing")
    (server.root / "disk.img").write_bytes(b"previous version")
    assert server.proc is not None
    workers = worker_pids(server.proc.pid)

    with RawConnection(server.port) as raw:
        raw.hello()
        raw.start_put("disk.img", len(data))
        raw.send_bytes(data[: 3 * MiB + 1000])
        deadline = time.monotonic() + 10
        while partial_bytes(server) < 3 * MiB and time.monotonic() < deadline:
            time.sleep(0.02)
        assert partial_bytes(server) >= 3 * MiB
        server.kill()  # SIGKILL: no cleanup of any kind runs

    for pid in workers:  # workers notice the listener is gone and exit
        deadline = time.monotonic() + 10
        while not is_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_gone(pid), f"worker {pid} outlived its killed listener"
    assert (server.root / "disk.img").read_bytes() == b"previous version"
    assert sorted(os.listdir(server.root)) == ["disk.img"]

    again = start_server(executor, name="crashing")  # same share and state folder
    assert server_holds(again.port, "disk.img", len(data)) >= 3 * MiB
    with Client(again.host, again.port) as client:
        result = client.put(source, "disk.img")
    assert result.resumed_from >= 3 * MiB
    assert (again.root / "disk.img").read_bytes() == data
