"""kill -9 of the server in the middle of an upload: nothing half-written shows, the
partial survives, the same put resumes, and (process executor) no worker is orphaned.
kill -9 of ``ftclient get``: the same command resumes from the partial it left."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ftclient import Client
from tests.ftclient.cli.test_cli_client import ThrottleProxy
from tests.procinfo import is_gone, worker_pids
from tests.rawwire import RawConnection, server_holds
from tests.serverproc import ServerProcess

MiB = 1 << 20


def partial_bytes(server: ServerProcess) -> int:
    return sum(p.stat().st_size for p in server.partials.glob("*.part"))


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
        raw.start_put("disk.img", len(data), source.stat().st_mtime)  # as the client will
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
    # Nothing half-written beside it: the partial waits in the reserved hidden folder.
    assert sorted(os.listdir(server.root)) == [".ft-partials", "disk.img"]

    again = start_server(executor, name="crashing")  # same share and state folder
    assert server_holds(again.port, "disk.img", len(data), source.stat().st_mtime) >= 3 * MiB
    # That probe hung up before sending data; its session must end before the name is free.
    assert again.wait_for_log("transfer broke off", timeout=10), again.log
    with Client(again.host, again.port) as client:
        result = client.put(source, "disk.img")
    assert result.resumed_from >= 3 * MiB
    assert (again.root / "disk.img").read_bytes() == data


def test_kill_9_of_ftclient_get_then_the_same_command_resumes(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    data = random.Random("get").randbytes(32 * MiB)
    server = start_server("thread", name="serving")
    (server.root / "big.bin").write_bytes(data)
    destination = tmp_path / "dl"
    destination.mkdir()
    partial = destination / ".big.bin.ftpart"
    proxy = ThrottleProxy(("127.0.0.1", server.port), 8 * MiB)  # slow enough to interrupt
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ftclient", "--server", proxy.address, "get", "big.bin"],
            cwd=destination, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while (not partial.exists() or partial.stat().st_size < 2 * MiB) and \
                    time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            assert proc.poll() is None, "the download finished before it could be killed"
            proc.kill()  # SIGKILL: no handler, no cleanup
        finally:
            proc.wait(10)
    finally:
        proxy.close()
    held = partial.stat().st_size
    assert 0 < held < len(data)
    assert not (destination / "big.bin").exists()

    again = subprocess.run(
        [sys.executable, "-m", "ftclient", "--server", f"127.0.0.1:{server.port}", "get",
         "big.bin"], cwd=destination, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=60)
    assert again.returncode == 0, again.stderr
    resumed = re.search(r"resumed at ([\d.]+) MiB", again.stderr)
    assert resumed and float(resumed.group(1)) > 0, again.stderr
    assert (destination / "big.bin").read_bytes() == data
    assert sorted(os.listdir(destination)) == ["big.bin"]
