"""Stale partials (issue 4): kept across restarts, deleted after partial_ttl, capped in total.

Partials are made the honest way, by uploads that break off (a raw connection
that sends part of the data and hangs up), and aged by setting their mtime.
``partial_max_bytes`` evicts the oldest partials first, never one whose upload
is still in progress, under both executors (the name locks cross processes).
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.rawwire import RawConnection, server_holds
from tests.serverproc import ServerProcess

MiB = 1 << 20
HOUR = 3600


def partial_of(server: ServerProcess, name: str) -> Path:
    """The partial of the one upload to ``name`` (on the share's own filesystem)."""
    real = os.path.realpath(server.root / name)
    key = hashlib.sha256(real.encode()).hexdigest()
    deadline = time.monotonic() + 15
    while not (found := sorted(server.partials.glob(f"{key}-*.part"))):
        assert time.monotonic() < deadline, f"no partial for {name}"
        time.sleep(0.02)
    (partial,) = found
    return partial


def wait_for_size(path: Path, size: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size >= size):
        assert time.monotonic() < deadline, f"{path.name} never reached {size} bytes"
        time.sleep(0.02)


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def break_off_upload(server: ServerProcess, name: str, data: bytes, sent: int,
                     mtime: float | None = None) -> Path:
    """Upload ``data`` as ``name`` (announcing ``mtime``) but hang up after ``sent`` bytes;
    return the partial."""
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.start_put(name, len(data), mtime)
        raw.send_bytes(data[:sent])
        wait_for_size(partial_of(server, name), sent)
    deadline = time.monotonic() + 15
    while server_holds(server.port, name, len(data), mtime) < sent:  # the name is free again
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return partial_of(server, name)


@pytest.mark.parametrize("executor", ["thread"])  # the listener cleans up, in either mode
def test_partials_survive_a_restart_until_partial_ttl(
        executor: str, start_server: Callable[..., ServerProcess], connect: Callable,
        make_file: Callable) -> None:
    young_src = make_file("young.bin", 2 * MiB)
    old_src = make_file("old.bin", 2 * MiB)
    server = start_server(executor, name="ttl", partial_ttl=HOUR)
    young = break_off_upload(server, "young.bin", young_src.read_bytes(), MiB,
                             young_src.stat().st_mtime)
    old = break_off_upload(server, "old.bin", old_src.read_bytes(), MiB,
                           old_src.stat().st_mtime)
    assert server.terminate() == 0
    age(old, 2 * HOUR)
    age(young, HOUR / 2)

    again = start_server(executor, name="ttl", partial_ttl=HOUR)
    assert again.wait_for_log(r"removed 1 partial upload\(s\) older than 3600 s"), again.log
    assert young.exists() and not old.exists()
    client = connect(again)
    assert client.put(young_src, "young.bin").resumed_from == MiB
    assert client.put(old_src, "old.bin").resumed_from == 0
    assert (again.root / "young.bin").read_bytes() == young_src.read_bytes()


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_partial_max_bytes_evicts_the_oldest_but_never_one_in_use(
        executor: str, start_server: Callable[..., ServerProcess], connect: Callable,
        make_file: Callable) -> None:
    server = start_server(executor, name="cap", partial_max_bytes=4 * MiB)
    old_data = random.Random(1).randbytes(4 * MiB)
    busy_data = random.Random(2).randbytes(4 * MiB)
    old = break_off_upload(server, "old.bin", old_data, 2 * MiB)
    age(old, HOUR)

    with RawConnection(server.port) as busy:  # an upload in progress, holding its name
        busy.hello()
        busy.start_put("busy.bin", len(busy_data))
        busy.send_bytes(busy_data[:MiB])
        busy_partial = partial_of(server, "busy.bin")
        wait_for_size(busy_partial, MiB)
        age(busy_partial, 2 * HOUR)  # the oldest of all, but in use

        # 2 MiB (old) + 1 MiB (busy) + 2 MiB (new) is over the 4 MiB cap by 1 MiB.
        new_src = make_file("new.bin", 2 * MiB)
        connect(server).put(new_src, "new.bin")
        assert not old.exists(), "the oldest partial not in use should have been evicted"
        assert busy_partial.stat().st_size == MiB

        reply = busy.finish_put(busy_data[MiB:], busy_data)
        assert reply.get("ok") is True, reply
    assert (server.root / "busy.bin").read_bytes() == busy_data
    assert (server.root / "new.bin").read_bytes() == new_src.read_bytes()
    assert server_holds(server.port, "old.bin", len(old_data)) == 0
    assert server.wait_for_log(r"evicted \d+ bytes of the oldest partial uploads"), server.log


def test_the_cap_never_evicts_a_streamed_put_in_progress(
        start_server: Callable[..., ServerProcess], connect: Callable,
        make_file: Callable) -> None:
    """A streamed put's partial (KEY-sSIZE-RANDOM.stream) is locked under its upload's key too."""
    server = start_server("thread", name="capstream", partial_max_bytes=2 * MiB)
    data = random.Random(3).randbytes(MiB)
    with RawConnection(server.port) as streaming:
        streaming.hello()
        streaming.send({"op": "put", "path": "small.bin", "size": len(data),
                        "mtime": 1_600_000_000.5, "stream": True})
        streaming.send_bytes(data[: MiB // 2])
        deadline = time.monotonic() + 15
        while not list(server.partials.glob("*.stream")) and time.monotonic() < deadline:
            time.sleep(0.02)
        (stream_partial,) = server.partials.glob("*.stream")
        wait_for_size(stream_partial, MiB // 2)
        age(stream_partial, 2 * HOUR)  # the oldest, and over the cap with the next upload

        connect(server).put(make_file("big.bin", 2 * MiB), "big.bin")
        assert stream_partial.exists(), "the cap evicted a streamed put that was running"

        reply = streaming.finish_put(data[MiB // 2:], data)
        assert reply.get("ok") is True, reply
    assert (server.root / "small.bin").read_bytes() == data
