"""Bandwidth limits end to end: the server's ``limits.rate`` and ``limits.total_rate``, the
client's ``limit_rate``. Real servers on 127.0.0.1, real files.

These check that the limiter limits (a floor on the time a transfer takes, with
generous tolerance), not how fast anything is: speed lives in scripts/bench.py.
A 1 MiB transfer at 512 KiB/s needs about 2 s; it must take at least 1.5 s.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.io.ratelimit import TokenBucket
from ftclient import Client
from ftserver.config import ConfigError, load_config
from tests.serverproc import ServerProcess

MiB = 1024 * 1024
RATE = "512K"
FLOOR = 1.5
"""Seconds a MiB at 512 KiB/s must at least take (about 2 s when paced exactly)."""
CLIENT = [sys.executable, "-m", "ftclient"]


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_server_rate_limits_each_direction(
        start_server: Callable[..., ServerProcess], connect: Callable[..., Client],
        make_file: Callable[..., Path], tmp_path: Path) -> None:
    # The process executor runs the same session code; the total test covers it there.
    server = start_server(limits={"rate": RATE})
    source = make_file("one-mib.bin", MiB)
    client = connect(server, timeout=30.0)
    assert timed(lambda: client.put(source, "up.bin")) >= FLOOR
    # A get of the file just put is served by sendfile (its hash is cached)...
    assert timed(lambda: client.get("up.bin", tmp_path / "down.bin")) >= FLOOR
    # ...and one copied in by hand is read, hashed and sent chunk by chunk.
    (server.root / "by-hand.bin").write_bytes(source.read_bytes())
    assert timed(lambda: client.get("by-hand.bin", tmp_path / "by-hand.bin")) >= FLOOR
    for name in ("down.bin", "by-hand.bin"):
        assert sha256_of(tmp_path / name) == sha256_of(source)
    assert "Traceback" not in server.log


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_total_rate_is_shared_between_connections(
        start_server: Callable[..., ServerProcess], connect: Callable[..., Client],
        make_file: Callable[..., Path], executor: str) -> None:
    # Two workers in process mode: the two connections land in different processes.
    server = start_server(executor, workers=2, limits={"total_rate": RATE})
    sources = [make_file(f"part-{i}.bin", MiB) for i in range(2)]
    clients = [connect(server, timeout=30.0) for _ in sources]
    for client in clients:
        client.connect()
    failures: list[BaseException] = []

    def put(client: Client, source: Path) -> None:
        try:
            client.put(source)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=put, args=(client, source))
               for client, source in zip(clients, sources, strict=True)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    elapsed = time.monotonic() - started
    assert not failures, failures
    # 2 MiB through one 512 KiB/s budget: about 4 s. Separate budgets would take about 2 s.
    assert elapsed >= 2 * FLOOR + 0.5, elapsed
    for source in sources:
        assert sha256_of(server.root / source.name) == sha256_of(source)


def test_client_limit_rate_paces_put_and_get(
        start_server: Callable[..., ServerProcess], make_file: Callable[..., Path],
        tmp_path: Path) -> None:
    server = start_server()
    source = make_file("paced.bin", MiB)
    with Client("127.0.0.1", server.port, timeout=30.0, limit_rate=RATE) as client:
        assert timed(lambda: client.put(source)) >= FLOOR
        assert timed(lambda: client.get("paced.bin", tmp_path / "back.bin")) >= FLOOR
    assert sha256_of(tmp_path / "back.bin") == sha256_of(source)


def test_cli_limit_rate(start_server: Callable[..., ServerProcess],
                        make_file: Callable[..., Path]) -> None:
    server = start_server()
    source = make_file("cli.bin", MiB)
    started = time.monotonic()
    result = subprocess.run(CLIENT + ["--server", f"127.0.0.1:{server.port}", "--limit-rate",
                                      RATE, "-q", "put", str(source)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= FLOOR
    assert sha256_of(server.root / "cli.bin") == sha256_of(source)


@pytest.mark.parametrize("value", ["fast", "10X", "-5M", "1000", "0.5K", "2000G"])
def test_cli_refuses_a_bad_rate(value: str) -> None:
    result = subprocess.run(CLIENT + ["--server", "127.0.0.1:9", "--limit-rate", value, "ls"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--limit-rate" in result.stderr


@pytest.mark.parametrize(("value", "expected"), [
    ("10M", 10 * MiB), ("512k", 512 * 1024), ("1.5G", 3 * 512 * MiB), (65536, 65536), (0, 0)])
def test_server_rate_settings(tmp_path: Path, value: object, expected: int) -> None:
    config_file = tmp_path / "ftserver.yaml"
    config_file.write_text(f"limits: {{rate: {value}, total_rate: {value}}}\n")
    limits = load_config(config_file).limits
    assert (limits.rate, limits.total_rate) == (expected, expected)


@pytest.mark.parametrize("value", ["fast", "true", "-1", "100", "[1]", "5T"])
def test_server_refuses_a_bad_rate(tmp_path: Path, value: str) -> None:
    config_file = tmp_path / "ftserver.yaml"
    config_file.write_text(f"limits:\n  total_rate: {value}\n")
    with pytest.raises(ConfigError, match="limits.total_rate"):
        load_config(config_file)


def test_server_with_a_bad_rate_exits_2(tmp_path: Path) -> None:
    config_file = tmp_path / "ftserver.yaml"
    config_file.write_text(f"root: {tmp_path}\nlimits: {{rate: lots}}\n")
    result = subprocess.run([sys.executable, "-m", "ftserver", "--config", str(config_file)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("ftserver: ") and "limits.rate" in line


def test_client_api_refuses_a_bad_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        Client("127.0.0.1", 9, limit_rate="warp 9")


def test_a_shared_bucket_queues_its_users() -> None:
    """Reservations are granted at once and paid for by waiting, in order."""
    bucket = TokenBucket(1 * MiB, burst=64 * 1024)
    assert bucket.reserve(64 * 1024) == 0.0  # the burst is there at the start
    first = bucket.reserve(MiB // 2)
    second = bucket.reserve(MiB // 2)
    assert 0.45 <= first <= 0.5
    assert 0.95 <= second <= 1.0
    assert not bucket.try_take(1)

