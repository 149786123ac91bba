"""``-`` for standard input and output, write-through destinations, file objects (issue 17).

``get NAME /dev/stdout`` run as root replaced the /dev/stdout symlink with a regular
file (the partial went to /dev/.stdout.ftpart and was renamed over it); ``get x -``
wrote a file named ``-``; ``put - name`` said "local file '-' does not exist". Here a
real ftclient process reads from and writes to pipes, a symlink and a FIFO in
tmp_path, against a real server; the library takes file objects too.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import StreamCut
from ftclient import Client
from tests.cliutil import one_error_line
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient", "--retries", "0"]
DATA = os.urandom(3_000_000)


def ftclient(server_port: int, *args: str, stdin: bytes = b"", cwd: Path | None = None,
             ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLIENT, "--server", f"127.0.0.1:{server_port}", *args],
                          input=stdin, capture_output=True, cwd=cwd, timeout=60)


@pytest.fixture
def here(tmp_path: Path) -> Path:
    """The client's own folder (the server's lives beside it in tmp_path)."""
    folder = tmp_path / "here"
    folder.mkdir()
    return folder


@pytest.fixture
def served(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = start_server()
    (server.root / "r.bin").write_bytes(DATA)
    return server


def test_get_to_dash_writes_standard_output_and_says_so_on_stderr(
        served: ServerProcess, here: Path) -> None:
    result = ftclient(served.port, "get", "r.bin", "-", cwd=here)
    assert result.returncode == 0, result.stderr
    assert result.stdout == DATA  # the bytes alone: no bar frames among them
    summary = result.stderr.decode()
    assert "got standard output" in summary and hashlib.sha256(DATA).hexdigest() in summary
    assert "verified" in summary and "\r" not in summary
    assert os.listdir(here) == []  # no file named "-", no partial


def test_a_symlinked_destination_is_written_through_never_replaced(
        served: ServerProcess, here: Path) -> None:
    target = here / "target.bin"
    target.write_bytes(b"an older, longer version of the file" * 100_000)
    link = here / "link.bin"
    link.symlink_to(target)

    result = ftclient(served.port, "get", "r.bin", str(link), cwd=here)

    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == DATA  # truncated first, as cp does
    assert sorted(os.listdir(here)) == ["link.bin", "target.bin"]


def test_a_fifo_and_a_symlink_to_one_are_written_through(
        served: ServerProcess, here: Path) -> None:
    fifo = here / "pipe"
    os.mkfifo(fifo)
    link = here / "stdout-like"
    link.symlink_to(fifo)  # as /dev/stdout -> /proc/self/fd/1 -> a pipe
    for destination in (fifo, link):
        read: list[bytes] = []
        reader = threading.Thread(target=lambda got=read: got.append(fifo.read_bytes()))
        reader.start()
        result = ftclient(served.port, "get", "r.bin", str(destination), cwd=here)
        reader.join(30)
        assert result.returncode == 0, result.stderr
        assert read == [DATA]
    assert fifo.is_fifo() and link.is_symlink()
    assert sorted(os.listdir(here)) == ["pipe", "stdout-like"]


def test_put_dash_uploads_standard_input_whole_and_verified(
        served: ServerProcess, here: Path) -> None:
    result = ftclient(served.port, "put", "-", "backup.tar", stdin=DATA, cwd=here)
    assert result.returncode == 0, result.stderr
    assert (served.root / "backup.tar").read_bytes() == DATA
    assert hashlib.sha256(DATA).hexdigest() in result.stderr.decode()
    assert not [name for name in os.listdir(served.root) if name.startswith(".ft-tmp")]


def test_put_dash_into_an_existing_folder_is_refused_not_named_after_the_spool(
        served: ServerProcess, here: Path) -> None:
    (served.root / "reports").mkdir()
    result = ftclient(served.port, "put", "-", "reports", stdin=b"x", cwd=here)
    assert result.returncode == 1 and b"is a folder" in result.stderr, result.stderr
    assert list((served.root / "reports").iterdir()) == []  # no ftclient-spool-... file


def test_put_dash_without_a_remote_name_says_how(served: ServerProcess, here: Path) -> None:
    result = ftclient(served.port, "put", "-", stdin=b"x", cwd=here)
    text = subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(), result.stderr.decode())
    assert text.returncode == 2 and "give the remote name" in text.stderr
    assert "Traceback" not in text.stderr


def test_a_download_into_a_stream_cut_midway_is_reported_not_retried(
        served: ServerProcess, here: Path) -> None:
    with CuttingProxy(served.port, cut_after=1_000_000, direction="s2c") as proxy:
        result = subprocess.run(
            [sys.executable, "-m", "ftclient", "--retries", "3", "--server",
             f"127.0.0.1:{proxy.port}", "get", "r.bin", "-"],
            capture_output=True, timeout=60, cwd=here)
        connections = proxy.cuts
    text = subprocess.CompletedProcess(result.args, result.returncode,
                                       result.stdout.decode(errors="replace"),
                                       result.stderr.decode())
    line = one_error_line(text)
    assert "cannot resume" in line and "standard output" in line
    assert 0 < len(result.stdout) < len(DATA)  # what was written stays written
    assert connections == 1  # not retried: a retry would write the start again


def test_the_library_takes_file_objects(served: ServerProcess) -> None:
    with Client("127.0.0.1", served.port) as client:
        sink = io.BytesIO()
        got = client.get("r.bin", sink)
        assert sink.getvalue() == DATA and got.sha256 == hashlib.sha256(DATA).hexdigest()
        put = client.put(io.BytesIO(b"from memory"), "mem.txt")
        assert put.size == 11
        with pytest.raises(ValueError):
            client.put(io.BytesIO(b"no name"))
    assert (served.root / "mem.txt").read_bytes() == b"from memory"


def test_a_stream_cut_raises_stream_cut_from_the_library(served: ServerProcess) -> None:
    with CuttingProxy(served.port, cut_after=1_000_000, direction="s2c") as proxy, \
            Client("127.0.0.1", proxy.port, retries=3, retry_delay=0) as client:
        sink = io.BytesIO()
        with pytest.raises(StreamCut):
            client.get("r.bin", sink)
    assert 0 < len(sink.getvalue()) < len(DATA)
