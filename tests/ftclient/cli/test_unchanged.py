"""A single put or get of a file the other side already holds moves nothing (issue 17).

``put -r`` already skipped files whose size and SHA-256 matched; a single ``put`` or
``get`` sent the whole file again. Now the client's digest cache supplies the
SHA-256: a put announces it and the server, holding that very file, confirms it
without a byte; a get asks the server's digest with one ``stat`` and leaves the
local file as it is. A file changed since (or touched: its digest is no longer
known) is sent in full. Real ftclient processes, a real server and its log.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.serverproc import ServerProcess

MiB = 1 << 20
CLIENT = [sys.executable, "-m", "ftclient"]


def ftclient(server: ServerProcess, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*CLIENT, "--server", f"127.0.0.1:{server.port}", *args],
                            cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def put_bytes(server: ServerProcess, name: str) -> list[int]:
    """Bytes each logged put of ``name`` moved, in order."""
    return [int(moved) for moved in
            re.findall(rf"op=put .*path='{re.escape(name)}' .*bytes=(\d+)", server.log)]


def test_a_second_put_of_the_same_file_moves_nothing(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "disk.img"
    source.write_bytes(os.urandom(5 * MiB))
    ftclient(server, "put", str(source), cwd=tmp_path)
    again = ftclient(server, "put", str(source), cwd=tmp_path)
    assert "already there: nothing moved" in again.stderr
    assert server.wait_for_log(r"(?s)(?:op=put .*?path='disk.img'.*?){2}")
    assert put_bytes(server, "disk.img") == [5 * MiB, 0]

    source.write_bytes(os.urandom(5 * MiB))  # changed: sent in full, and published
    ftclient(server, "put", str(source), cwd=tmp_path)
    assert server.wait_for_log(r"(?s)(?:op=put .*?path='disk.img'.*?){3}")
    assert put_bytes(server, "disk.img")[-1] == 5 * MiB
    assert (server.root / "disk.img").read_bytes() == source.read_bytes()


def test_a_second_get_of_the_same_file_moves_nothing(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    data = os.urandom(5 * MiB)
    (server.root / "report.bin").write_bytes(data)
    here = tmp_path / "here"
    here.mkdir()
    ftclient(server, "get", "report.bin", cwd=here)
    again = ftclient(server, "get", "report.bin", cwd=here)
    assert "already there: nothing moved" in again.stderr
    assert (here / "report.bin").read_bytes() == data

    (server.root / "report.bin").write_bytes(os.urandom(6 * MiB))  # changed on the server
    ftclient(server, "get", "report.bin", cwd=here)
    assert (here / "report.bin").read_bytes() == (server.root / "report.bin").read_bytes()
    # Log lines come in order: once the third get's is there, the second's would be too.
    assert server.wait_for_log(r"op=get .*path='report.bin' size=6291456")
    assert len(re.findall(r"op=get .*path='report.bin'", server.log)) == 2  # not the second
