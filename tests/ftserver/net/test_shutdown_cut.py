"""A shutdown that cuts running uploads: the clients learn it at once, and why.

Issue 18: past the grace period the server shut the sockets both ways; closed
later with nothing left to read, a socket lingered in FIN-WAIT-2 with its receive
window shut, and a client still sending blocked 54-60 s before it reported "the
other side stopped reading" (about half the runs). A ``put -r`` cut by a shutdown
said "the connection was closed by the other side". Real processes: the server
gets SIGTERM while real ``ftclient`` processes upload through its rate limit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient", "--retries", "0"]
MiB = 1 << 20
UPLOADS = 3
"""Uploads cut at once: each one blocked in about half the runs before."""
PROMPT = 15.0
"""Seconds a cut client may take to report (it blocked 54-60 s)."""


def wait_for_partials(server: ServerProcess, count: int, size: int) -> None:
    """Until ``count`` uploads hold at least ``size`` bytes on the server (bounded)."""
    deadline = time.monotonic() + 30
    while True:
        sizes = [path.stat().st_size for path in server.partials.glob("*.part")]
        if len([held for held in sizes if held >= size]) >= count:
            return
        assert time.monotonic() < deadline, (sizes, server.log[-2000:])
        time.sleep(0.05)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_uploads_cut_by_a_shutdown_are_told_at_once_that_the_server_is_shutting_down(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor, shutdown_grace=0.5, limits={"rate": "4MB/s"})
    clients = []
    for index in range(UPLOADS):
        source = tmp_path / f"big{index}.bin"
        source.write_bytes(os.urandom(32 * MiB))
        clients.append(subprocess.Popen(
            [*CLIENT, "--server", f"127.0.0.1:{server.port}", "put", str(source)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True))
    try:
        wait_for_partials(server, UPLOADS, MiB)
        server.proc.send_signal(signal.SIGTERM)
        cut_at = time.monotonic()
        reports = []
        for client in clients:
            _, stderr = client.communicate(timeout=90)
            reports.append((time.monotonic() - cut_at, client.returncode, stderr))
    finally:
        for client in clients:
            client.kill()
            client.wait()
    assert server.proc.wait(30) == 0
    for took, code, stderr in reports:
        assert took < PROMPT, reports
        assert code != 0 and "Traceback" not in stderr, reports
        assert "the server is shutting down" in stderr or "connection dropped" in stderr
    # The goodbye goes out just before the reset; on a loaded machine a client sending at
    # that instant can meet the reset first (EPIPE) and never read it: seen once in
    # eight full runs. Most clients must hear it.
    told = sum("the server is shutting down" in stderr for _, _, stderr in reports)
    assert told >= UPLOADS - 1, reports


def test_a_put_r_cut_by_a_shutdown_says_the_server_is_shutting_down(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(shutdown_grace=0.5, limits={"rate": "2MB/s"})
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(600):
        (tree / f"f{index:03}").write_bytes(os.urandom(20_000))
    client = subprocess.Popen(
        [*CLIENT, "--server", f"127.0.0.1:{server.port}", "put", "-r", str(tree)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not server.wait_for_log(r"op=put .*path='tree/f0\d\d'", 0.05):
            assert time.monotonic() < deadline, server.log[-2000:]
        server.proc.send_signal(signal.SIGTERM)
        _, stderr = client.communicate(timeout=90)
    finally:
        client.kill()
        client.wait()
    assert server.proc.wait(30) == 0
    assert client.returncode != 0
    assert "the server is shutting down" in stderr, stderr
    assert "closed by the other side" not in stderr and "reset by peer" not in stderr, stderr
