"""Files dated far from now (after 2262-04-11, before 1677-09-21) work like any other (issue 18).

Their mtime in nanoseconds does not fit a signed 64-bit integer, which is what the
digest cache stored. The protocol allows such dates and ext4 keeps them, so a put,
a stat, a get, a ``put -r`` and a ``get -r`` of such files must all succeed, and
the digest cache must keep working for the files beside them. Real server, real
client, real files, on tmpfs: ext4 clamps dates before 1901 (and after 2446).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from common.io.hashcache import HashCache
from ftclient import Client
from tests.serverproc import ServerProcess

YEAR_2400 = 13_569_465_600.0  # 2400-01-01 UTC, in seconds: 1.36e19 ns, past 2**63
YEAR_1600 = -11_676_096_000.0  # 1600-01-01 UTC: -1.17e19 ns, below -2**63
FAR_DATES = [YEAR_2400, YEAR_1600]


@pytest.fixture
def tmpfs(mount_tmpfs: Callable[..., Path], tmp_path: Path) -> Path:
    """tmp_path with the server's base and the local files on tmpfs, which keeps any date."""
    mount_tmpfs(tmp_path / "srv", size="4g")
    return mount_tmpfs(tmp_path / "local", size="4g")


def write_dated(path: Path, data: bytes, mtime: float) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(int(mtime) * 1_000_000_000,) * 2)
    assert path.stat().st_mtime == mtime  # the filesystem keeps it
    return path


@pytest.mark.parametrize("mtime", FAR_DATES)
def test_a_far_dated_file_on_the_share_can_be_stated_and_fetched(
        tmpfs: Path, start_server: Callable[..., ServerProcess], mtime: float) -> None:
    tmp_path = tmpfs
    server = start_server()
    data = os.urandom(300_000)
    write_dated(server.root / "old-or-new.bin", data, mtime)
    with Client("127.0.0.1", server.port) as client:
        info = client.stat("old-or-new.bin")
        assert (info.size, info.mtime) == (len(data), mtime)
        client.get("old-or-new.bin", tmp_path / "down.bin")
        # the get hashed the file and filed its digest: stat now knows it
        assert client.stat("old-or-new.bin").sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "down.bin").read_bytes() == data
    assert (tmp_path / "down.bin").stat().st_mtime == mtime


@pytest.mark.parametrize("mtime", FAR_DATES)
def test_a_far_dated_put_is_published_and_reported_as_published(
        tmpfs: Path, start_server: Callable[..., ServerProcess], mtime: float) -> None:
    tmp_path = tmpfs
    server = start_server()
    data = os.urandom(200_000)
    source = write_dated(tmp_path / "dated.bin", data, mtime)
    with Client("127.0.0.1", server.port) as client:
        result = client.put(source, "dated.bin")
        assert result.sha256 == hashlib.sha256(data).hexdigest()
        # The connection is still good and the digest cache still writes: a normal put
        # beside it is cached, so its stat knows the digest at once.
        normal = tmp_path / "normal.bin"
        normal.write_bytes(b"x" * 1000)
        client.put(normal, "normal.bin")
        assert client.stat("normal.bin").sha256 == hashlib.sha256(b"x" * 1000).hexdigest()
    published = server.root / "dated.bin"
    assert published.read_bytes() == data and published.stat().st_mtime == mtime


def test_trees_with_far_dated_files_go_up_and_down_whole(
        tmpfs: Path, start_server: Callable[..., ServerProcess]) -> None:
    tmp_path = tmpfs
    server = start_server()
    tree = tmp_path / "tree"
    tree.mkdir()
    files = {f"f{i}.txt": os.urandom(1000 + i) for i in range(6)}
    for i, (name, data) in enumerate(files.items()):
        if i % 3 == 0:
            write_dated(tree / name, data, FAR_DATES[i % 2])
        else:
            (tree / name).write_bytes(data)
    client = [sys.executable, "-m", "ftclient", "--server", f"127.0.0.1:{server.port}"]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    up = subprocess.run([*client, "put", "-r", str(tree), "tree"], capture_output=True,
                        text=True, timeout=60, env=env)
    assert up.returncode == 0, up.stderr
    assert "Traceback" not in up.stderr
    for name, data in files.items():
        assert (server.root / "tree" / name).read_bytes() == data

    down = subprocess.run([*client, "get", "-r", "tree", str(tmp_path / "back")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert down.returncode == 0, down.stderr
    assert "Traceback" not in down.stderr
    for name, data in files.items():
        back = tmp_path / "back" / name
        assert back.read_bytes() == data
        assert back.stat().st_mtime == (tree / name).stat().st_mtime


def test_the_digest_cache_keeps_far_dates_and_stays_usable(tmpfs: Path) -> None:
    tmp_path = tmpfs
    cache = HashCache(str(tmp_path / "digests.db"))
    try:
        far = write_dated(tmp_path / "far.bin", b"far", YEAR_2400)
        old = write_dated(tmp_path / "old.bin", b"old", YEAR_1600)
        near = tmp_path / "near.bin"
        near.write_bytes(b"near")
        cache.put_many([(str(far), far.stat(), "a" * 64), (str(old), old.stat(), "d" * 64),
                        (str(near), near.stat(), "b" * 64)])
        assert cache.get(str(old), old.stat()) == "d" * 64
        assert cache.get(str(far), far.stat()) == "a" * 64
        assert cache.get(str(near), near.stat()) == "b" * 64
        cache.put(str(near), near.stat(), "c" * 64)  # the next write is not lost
        assert cache.get(str(near), near.stat()) == "c" * 64
    finally:
        cache.close()
