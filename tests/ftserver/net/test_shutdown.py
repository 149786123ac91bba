"""Graceful shutdown (issue 4): SIGTERM and SIGINT, under both executors.

On the signal the server stops accepting and closes idle connections at once;
an upload in flight that finishes within ``shutdown_grace`` is published and
confirmed; one still running then is cut, keeps its partial and resumes after a
restart. The server exits 0 within the grace period plus a few seconds and
leaves no worker process behind.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.procinfo import is_gone, worker_pids
from tests.rawwire import RawConnection, server_holds
from tests.serverproc import ServerProcess

MiB = 1 << 20
GRACE = 2.0
SLACK = 5.0


def refuses_connections(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
        except ConnectionRefusedError:
            return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("executor", ["thread", "process"])
def test_signal_drains_in_flight_uploads_then_cuts_the_rest(
        executor: str, signum: signal.Signals, start_server: Callable[..., ServerProcess]
) -> None:
    quick = random.Random(1).randbytes(2 * MiB)
    slow = random.Random(2).randbytes(4 * MiB)
    server = start_server(executor, name="draining", workers=2, shutdown_grace=GRACE)
    assert server.proc is not None
    workers = worker_pids(server.proc.pid)

    with RawConnection(server.port, timeout=GRACE + SLACK) as finishing, \
            RawConnection(server.port, timeout=GRACE + SLACK) as stalled, \
            RawConnection(server.port, timeout=GRACE + SLACK) as idle:
        for raw in (finishing, stalled, idle):
            raw.hello()
        finishing.start_put("quick.bin", len(quick))
        finishing.send_bytes(quick[:MiB])
        stalled.start_put("slow.bin", len(slow))
        stalled.send_bytes(slow[:MiB])
        assert partials_hold(server, MiB)

        signalled = time.monotonic()
        server.proc.send_signal(signum)
        assert refuses_connections(server.port), "still accepting after the signal"
        assert idle.closed_by_server(timeout=SLACK), "an idle connection was kept open"

        done = finishing.finish_put(quick[MiB:], quick)  # within the grace period
        assert done.get("ok") is True, done
        assert done["sha256"] == hashlib.sha256(quick).hexdigest()
        assert stalled.closed_by_server(timeout=GRACE + SLACK), "not cut after the grace"
        code = server.proc.wait(timeout=GRACE + SLACK)
        stopped_after = time.monotonic() - signalled

    assert code == 0, server.log
    assert stopped_after < GRACE + SLACK, f"took {stopped_after:.1f} s to stop"
    assert "Traceback" not in server.log
    for pid in workers:
        deadline = time.monotonic() + SLACK
        while not is_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert is_gone(pid), f"worker {pid} outlived the server"
    assert (server.root / "quick.bin").read_bytes() == quick
    assert not (server.root / "slow.bin").exists()

    again = start_server(executor, name="draining", workers=2, shutdown_grace=GRACE)
    assert server_holds(again.port, "slow.bin", len(slow)) == MiB


def partials_hold(server: ServerProcess, size: int) -> bool:
    """True once the server's partials hold ``size`` bytes (written, not just sent)."""
    deadline = time.monotonic() + 10
    partials = server.partials
    while time.monotonic() < deadline:
        if sum(p.stat().st_size for p in partials.glob("*.part")) >= size:
            return True
        time.sleep(0.02)
    return False


def test_a_sigterm_that_lands_on_another_thread_still_stops_the_server_at_once(
        start_server: Callable[..., ServerProcess]) -> None:
    """Linux may deliver a process's signal to any of its threads. One that landed on
    discovery's thread left the accept loop asleep in its 60 s select, and a SIGTERM went
    unanswered that long (a third of runs beside a CPU-bound job). Each helper thread in
    turn gets the signal here, each time in a fresh server."""
    libc = ctypes.CDLL(None, use_errno=True)
    helpers = 1
    index = 0
    while index < helpers:
        server = start_server(name=f"signalled{index}")
        pid = server.proc.pid
        others = sorted(int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid)
        helpers = len(others)
        assert helpers >= 2, "the server runs helper threads (the rejecter, discovery)"
        deadline = time.monotonic() + 10  # until the accept loop sleeps in its select
        while "do_epoll_wait" not in Path(f"/proc/{pid}/wchan").read_text() and (
                time.monotonic() < deadline):
            time.sleep(0.01)
        assert libc.tgkill(pid, others[index], signal.SIGTERM) == 0, ctypes.get_errno()
        assert server.proc.wait(10) == 0, f"thread {index} of {helpers}"
        assert "received SIGTERM" in server.log
        index += 1
