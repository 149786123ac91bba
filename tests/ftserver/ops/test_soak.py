"""Soak (issue 4): 16 clients put and get through a link that resets ~40% of connections.

Every connection through the proxy is reset, with probability 0.4, after a random
number of bytes (up to 256 KiB, counted both ways); each transfer opens its own.
With retries, every transfer must still complete byte for byte, and afterwards
the server's open descriptors and threads must be back at their baseline and its
memory near it. Bounded: 16 clients x
ROUNDS rounds, every wait has a deadline.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from ftclient import Client
from tests.procinfo import children_of, quiet_usage, settle
from tests.proxy import cutting_proxy
from tests.serverproc import ServerProcess

KiB, MiB = 1 << 10, 1 << 20
CLIENTS = 16
ROUNDS = 3
CUT_SHARE = 0.4
RETRIES = 12
CUT_WITHIN = 256 * KiB
"""A cut comes at a random byte up to here: inside every transfer (they are 256 KiB to 1 MiB)."""
DEADLINE = 120.0
RSS_SLACK = 32 * MiB
"""Freed memory need not go back to the kernel at once (allocator arenas): allow this much."""


def rss(pid: int) -> int:
    """Resident memory of ``pid`` and its children, in bytes."""
    total = 0
    for member in [pid, *children_of(pid)]:
        try:
            with open(f"/proc/{member}/status") as status:
                total += next(int(line.split()[1]) * KiB for line in status
                              if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total


def run_clients(work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def guarded(index: int) -> None:
        try:
            work(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(i,), name=f"soak-{i}")
               for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(thread.is_alive() for thread in threads), "a soak client hung"
    return errors


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_sixteen_clients_through_a_resetting_link_all_complete_exactly(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor, name="soak")
    assert server.proc is not None
    sources = []
    for index in range(CLIENTS):
        data = random.Random(index).randbytes(random.Random(-index).randrange(256 * KiB, MiB))
        path = tmp_path / f"src{index}.bin"
        path.write_bytes(data)
        sources.append(path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    def warm_up(index: int) -> None:  # the same load without cuts: the baseline's load
        with Client(server.host, server.port, timeout=30) as client:
            client.put(sources[index], f"warm/{index}.bin")
            client.get(f"warm/{index}.bin", downloads / f"warm{index}.bin")

    assert run_clients(warm_up) == []
    baseline = quiet_usage(server.proc.pid)
    rss_before = rss(server.proc.pid)

    retries = [0] * CLIENTS
    with cutting_proxy(server.port, cut_after=CUT_WITHIN, cut_share=CUT_SHARE, seed=4,
                       max_connections=10_000) as proxy:

        def soak(index: int) -> None:
            for round_ in range(ROUNDS):  # a new connection for each transfer
                name = f"soak/{index}-{round_}.bin"
                with Client("127.0.0.1", proxy.port, timeout=30, retries=RETRIES,
                            retry_delay=0.05) as client:
                    put = client.put(sources[index], name)
                with Client("127.0.0.1", proxy.port, timeout=30, retries=RETRIES,
                            retry_delay=0.05) as client:
                    got = client.get(name, downloads / f"{index}-{round_}.bin")
                retries[index] += put.retries + got.retries

        errors = run_clients(soak)
        cuts = proxy.cuts
    assert errors == [], errors[:3]
    made = CLIENTS * ROUNDS * 2 + sum(retries)
    assert cuts >= made * CUT_SHARE / 2, f"only {cuts} of {made} connections were cut"
    assert sum(retries) > 0
    for index in range(CLIENTS):
        for round_ in range(ROUNDS):
            data = sources[index].read_bytes()
            assert (server.root / "soak" / f"{index}-{round_}.bin").read_bytes() == data
            assert (downloads / f"{index}-{round_}.bin").read_bytes() == data

    assert settle(server.proc.pid, baseline) == baseline, "descriptors or threads leaked"
    assert rss(server.proc.pid) <= rss_before + RSS_SLACK
    assert "Traceback" not in server.log
