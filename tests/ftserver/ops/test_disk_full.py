"""Disk full during an upload, on a small tmpfs the test mounts itself (needs root).

Promise 3: success only when the data is durable, every failure reported. The
client must get a clear no_space error, nothing may be published, the server must
keep serving, and the upload must resume once there is room again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.protocol.errors import NoSpace
from ftclient import Client
from tests.serverproc import ServerProcess

MiB = 1 << 20

def wait_for_partial(folder: Path, size: int, limit: float = 20.0) -> None:
    """Wait (at most ``limit`` seconds) until a partial in ``folder`` holds ``size`` bytes."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if any(entry.stat().st_size >= size for entry in folder.glob("*.part")):
            return
        time.sleep(0.01)
    raise AssertionError(f"no partial reached {size} bytes in {limit} s")


@pytest.fixture
def small_fs(mount_tmpfs: Callable[..., Path], tmp_path: Path) -> Path:
    return mount_tmpfs(tmp_path / "small", size="12m")


@pytest.fixture(params=["thread", "process"])
def small_server(request: pytest.FixtureRequest, small_fs: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(small_fs, executor=request.param,
                           limits={"min_free_bytes": 0}).start()
    try:
        yield server
    finally:
        server.terminate()


def test_upload_larger_than_free_space_is_refused_up_front(small_server: ServerProcess,
                                                           tmp_path: Path) -> None:
    source = tmp_path / "huge.bin"
    source.write_bytes(os.urandom(16 * MiB))
    with Client(small_server.host, small_server.port) as client:
        with pytest.raises(NoSpace):
            client.put(source, "huge.bin")
        assert [entry.name for entry in client.list()] == []  # still serving, nothing shown
    assert not (small_server.root / "huge.bin").exists()


def test_disk_filling_up_mid_upload_reports_no_space_then_resumes(
        small_server: ServerProcess, small_fs: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    content = os.urandom(6 * MiB)
    source.write_bytes(content)
    filler = small_fs / "filler"

    def fill_disk_once(progress: object) -> None:
        if progress.done >= 2 * MiB and not filler.exists():  # type: ignore[attr-defined]
            # What the client sent may still sit in socket buffers: let the server
            # write a MiB first, so that there is something to resume from.
            wait_for_partial(small_server.partials, MiB)
            with open(filler, "wb") as stream:  # someone else takes the space meanwhile
                try:
                    while True:
                        stream.write(b"\0" * MiB)
                        stream.flush()
                except OSError:
                    pass

    with Client(small_server.host, small_server.port) as client:
        with pytest.raises(NoSpace):
            client.put(source, "data.bin", progress=fill_disk_once)
        assert not (small_server.root / "data.bin").exists()
        assert [entry.name for entry in client.list()] == []

    filler.unlink()
    with Client(small_server.host, small_server.port) as client:
        result = client.put(source, "data.bin")
    assert result.resumed_from > 0
    assert (small_server.root / "data.bin").read_bytes() == content
