"""Every phase inside a request has a deadline that a trickling peer cannot stretch.

A peer that sends (or reads) a byte now and then must lose its connection within
about ``limits.transfer_timeout`` and give the name it was uploading back.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.frames import encode_frame
from ftclient import Client
from tests.rawwire import RawConnection, server_holds
from tests.serverproc import ServerProcess

MiB = 1 << 20
LIMITS = {"transfer_timeout": 1.0, "idle_timeout": 5.0}


@pytest.fixture(params=["thread", "process"])
def strict_server(request: pytest.FixtureRequest,
                  start_server: Callable[..., ServerProcess]) -> ServerProcess:
    return start_server(request.param, limits=LIMITS)


def trickle_until_closed(sock: socket.socket, data: bytes, limit: float) -> float:
    """Send ``data`` a byte every 0.2 s; return seconds until the server cut us off."""
    started = time.monotonic()
    for byte in data:
        if time.monotonic() - started > limit:
            break
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            return time.monotonic() - started
        time.sleep(0.2)
    sock.settimeout(max(0.1, limit - (time.monotonic() - started)))
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return float("inf")
    except OSError:
        pass
    return time.monotonic() - started


def test_trickled_put_data_frame_is_cut_and_the_name_freed(strict_server: ServerProcess) -> None:
    with RawConnection(strict_server.port) as raw:
        raw.hello()
        ready = raw.request({"op": "put", "path": "report.pdf", "size": 10, "mtime": 1.0})
        assert ready["ok"] is True
        seconds = trickle_until_closed(raw.sock, encode_frame({"op": "put_data", "offset": 0}),
                                       limit=8.0)
    assert seconds < 4.0
    assert server_holds(strict_server.port, "report.pdf", 10) == 0  # not locked any more


def test_trickled_raw_bytes_are_cut_and_the_name_freed(strict_server: ServerProcess) -> None:
    with RawConnection(strict_server.port) as raw:
        raw.hello()
        raw.start_put("report.pdf", 2 * MiB)
        raw.send_bytes(b"x" * 1000)
        seconds = trickle_until_closed(raw.sock, b"y" * 100, limit=8.0)
    assert seconds < 4.0
    assert server_holds(strict_server.port, "report.pdf", 2 * MiB) == 0


def test_a_client_that_stops_reading_a_download_is_cut(strict_server: ServerProcess) -> None:
    (strict_server.root / "big.bin").write_bytes(os.urandom(48 * MiB))
    for attempt in (1, 2):  # the first get hashes as it sends, the second uses sendfile
        with RawConnection(strict_server.port) as raw:
            raw.hello()
            raw.send({"op": "get", "path": "big.bin", "offset": 0})
            # Read nothing: once the socket buffers are full the server's sends stall.
            assert strict_server.wait_for_log(
                rf"(?s)(result=timeout.*){{{attempt}}}", timeout=8.0), strict_server.log
            raw.sock.settimeout(10)
            received = 0
            with contextlib.suppress(ConnectionResetError, TimeoutError):
                while chunk := raw.sock.recv(1 << 20):
                    received += len(chunk)
        assert received < 48 * MiB, f"attempt {attempt}: the stalled download was not cut"


def test_file_rewritten_in_place_with_its_mtime_kept_is_served_with_the_new_digest(
        server: ServerProcess, tmp_path: Path) -> None:
    target = server.root / "db.bin"
    target.write_bytes(b"A" * 100_000)
    with Client(server.host, server.port) as client:
        client.get("db.bin", tmp_path / "first.bin")  # the server caches the digest
        before = os.stat(target)
        with open(target, "r+b") as stream:  # what cp -p or rsync --inplace -t do
            stream.write(b"B" * 100_000)
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert os.stat(target).st_ino == before.st_ino
        result = client.get("db.bin", tmp_path / "second.bin")
        assert (tmp_path / "second.bin").read_bytes() == b"B" * 100_000
        assert client.stat("db.bin").sha256 == result.sha256
