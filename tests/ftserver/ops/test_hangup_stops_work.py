"""A client that hangs up stops the work done for it (issue 18, "work after the client hangs up").

A 177-byte ``get`` with ``offset`` = size and a wrong prefix digest makes the server
hash the whole file before it can answer; so does ``stat --digest`` of a file with
no cached digest. If the client hangs up meanwhile, the hashing stops within a
tenth of a second or so, instead of running to the end of a big file. Measured as
the server's own CPU time after the hang-up: real server, real socket, a 1 GiB
sparse file (reading it costs CPU, not disk).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import pytest

from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

GiB = 1 << 30


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, all its threads, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stream:
        fields = stream.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def hang_up_during(server: ServerProcess, request: dict) -> float:
    """Send ``request``, hang up 0.3 s later; return the server's CPU seconds in the 2 s
    after a 0.5 s pause (by then a stopped hash has long stopped)."""
    assert server.proc is not None
    raw = RawConnection(server.port)
    raw.hello()
    raw.send(request)
    time.sleep(0.3)
    raw.close()
    time.sleep(0.5)
    before = cpu_seconds(server.proc.pid)
    time.sleep(2.0)
    return cpu_seconds(server.proc.pid) - before


@pytest.mark.parametrize("request_for", [
    lambda size: {"op": "get", "path": "big.bin", "offset": size, "prefix_sha256": "0" * 64},
    lambda size: {"op": "stat", "path": "big.bin", "digest": True},
], ids=["get-resume-check", "stat-digest"])
def test_hashing_for_a_client_that_hung_up_stops(
        start_server: Callable[..., ServerProcess], request_for: Callable[[int], dict]) -> None:
    server = start_server()
    with open(server.root / "big.bin", "wb") as big:
        big.truncate(GiB)  # hashing it takes the server seconds of CPU
    spent = hang_up_during(server, request_for(GiB))
    # Hashing on would keep a core busy (here 1 GiB takes about 4 s); stopped, it idles.
    assert spent < 0.3, f"the server spent {spent:.2f} s of CPU after the client left"
    # and it still serves
    with RawConnection(server.port) as raw:
        raw.hello()
        assert raw.request({"op": "stat", "path": "big.bin"})["ok"] is True
    assert "Traceback" not in server.log
