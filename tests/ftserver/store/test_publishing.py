"""Publishing is one rename: partials live on the filesystem of the folder they go to.

Into a disk mounted inside the share, the partial waits in that disk's own
``.ft-partials``; with state_dir on another filesystem, no byte of an upload goes
there. Either way nothing hidden is left beside the files, a cut upload resumes
exactly, and a staged copy left by a crash of version 0.1 is gone after a start.
The same holds without root, between the test's own folder and /dev/shm: the cut
upload's bytes wait in the share, and its resume sends only the rest.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.protocol.errors import ConnectionLost, NoSpace
from ftclient import Client
from ftserver.store.locks import NAMES_FILE
from tests.proxy import cutting_proxy
from tests.serverproc import ServerProcess

MiB = 1 << 20


def hidden_files(folder: Path) -> list[str]:
    """Hidden files anywhere in ``folder`` but inside a partials folder."""
    return [name for top, _, files in os.walk(folder) for name in files
            if name.startswith(".") and ".ft-partials" not in Path(top).parts]


def partial_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(".ft-partials/*.part"))


def cut_upload(server: ServerProcess, source: Path, remote: str, cut: int) -> None:
    with cutting_proxy(server.port, cut_after=cut, direction="c2s") as proxy:
        with Client(server.host, proxy.port, retries=0) as client, \
                pytest.raises(ConnectionLost):
            client.put(source, remote)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_upload_into_a_disk_mounted_inside_the_share(
        executor: str, start_server: Callable[..., ServerProcess],
        mount_tmpfs: Callable[..., Path], tmp_path: Path) -> None:
    server = start_server(executor)
    archive = mount_tmpfs(server.root / "archive")
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(3 << 20))
    cut_upload(server, source, "archive/again/f.bin", 2 * MiB)
    (kept,) = partial_files(archive)  # on the mounted disk itself, beside nothing visible
    assert os.stat(kept).st_dev == os.stat(archive).st_dev != os.stat(server.root).st_dev
    assert partial_files(server.root) == []
    with Client(server.host, server.port) as client:
        client.put(source, "archive/")
        result = client.put(source, "archive/again/f.bin")
        assert result.resumed_from > MiB
        assert [entry.name for entry in client.list("archive")] == ["again", "f.bin"]
    assert (archive / "f.bin").read_bytes() == source.read_bytes()
    assert (archive / "again" / "f.bin").read_bytes() == source.read_bytes()
    assert hidden_files(server.root) == []
    assert partial_files(archive) == []
    assert not (server.state_dir / "partials").exists()


def test_state_dir_on_another_filesystem_holds_no_byte_of_an_upload(
        start_server: Callable[..., ServerProcess], mount_tmpfs: Callable[..., Path],
        tmp_path: Path) -> None:
    state = mount_tmpfs(tmp_path / "elsewhere")
    server = start_server("thread", state_dir=str(state))
    source = tmp_path / "g.bin"
    source.write_bytes(os.urandom(6 * MiB))
    cut_upload(server, source, "g.bin", 3 * MiB)
    (kept,) = partial_files(server.root)
    held = kept.stat().st_size
    assert held > MiB
    in_state = sum(path.stat().st_size for path in state.rglob("*") if path.is_file())
    assert in_state < 256 * 1024, "upload bytes landed in state_dir"  # locks, cache only
    with Client(server.host, server.port) as client:
        result = client.put(source, "g.bin")
    assert result.resumed_from == held  # exactly what the partial held, nothing resent
    assert (server.root / "g.bin").read_bytes() == source.read_bytes()
    assert hidden_files(server.root) == []
    assert partial_files(server.root) == []


@pytest.fixture
def elsewhere(tmp_path: Path) -> Iterator[Path]:
    """A folder on another filesystem than tmp_path, with no mount (so no root): /dev/shm."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than tmp_path")
    folder = Path(tempfile.mkdtemp(prefix="ft-test-", dir=shm))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def sha256_of(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


@pytest.mark.parametrize("share_in", ["tmp_path", "dev_shm"])
def test_a_cut_upload_waits_in_the_share_not_state_dir_and_resumes_with_only_the_rest(
        share_in: str, elsewhere: Path, tmp_path: Path) -> None:
    base, state = ((tmp_path, elsewhere) if share_in == "tmp_path" else (elsewhere, tmp_path))
    server = ServerProcess(base / "srv", state_dir=str(state / "state")).start()
    try:
        size = 6 * MiB
        source = tmp_path / "h.bin"
        source.write_bytes(os.urandom(size))
        cut_upload(server, source, "h.bin", 3 * MiB)
        (kept,) = partial_files(server.root)
        assert os.stat(kept).st_dev == os.stat(server.root).st_dev \
            != os.stat(state / "state").st_dev
        held = kept.stat().st_size
        assert MiB < held < size
        in_state = sum(path.stat().st_size for path in (state / "state").rglob("*")
                       if path.is_file())
        assert in_state < 256 * 1024, "upload bytes landed in state_dir"  # locks, cache only
        with cutting_proxy(server.port) as counting:  # cuts nothing: counts what goes up
            with Client(server.host, counting.port, retries=0) as client:
                result = client.put(source, "h.bin")
        assert result.resumed_from == held
        rest = size - held
        assert rest <= counting.forwarded["c2s"] < rest + 64 * 1024  # the rest, and frames
        assert sha256_of(server.root / "h.bin") == sha256_of(source)
        assert partial_files(server.root) == []
        assert hidden_files(server.root) == []
    finally:
        server.terminate()


def test_a_staged_copy_left_by_a_crash_is_removed_at_start(tmp_path: Path) -> None:
    # What a kill -9 in the middle of a cross-filesystem publish leaves behind: the
    # staged copy in the share and its note in state_dir/staging.
    server = ServerProcess(tmp_path / "srv")
    staging = server.state_dir / "staging"
    staging.mkdir(parents=True)
    leftover = server.root / "sub" / ".ft-tmp-0123456789abcdef"
    leftover.parent.mkdir()
    leftover.write_bytes(b"half a copy")
    (staging / leftover.name).write_text(str(leftover))
    unrelated = server.root / "sub" / "keep.txt"
    unrelated.write_text("mine")
    server.start()
    try:
        assert server.wait_for_log("removed 1 staged cop")
        assert not leftover.exists()
        assert unrelated.read_text() == "mine"
        assert list(staging.iterdir()) == []
    finally:
        server.terminate()


def test_start_up_forgets_stale_locks_and_digests_and_survives_a_broken_cache(
        tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "srv")
    (server.root / "kept.txt").write_text("kept")
    (server.root / "gone.txt").write_text("gone")
    server.start()
    with Client(server.host, server.port) as client:
        client.stat("kept.txt")
        for name in ("kept.txt", "gone.txt"):
            client.get(name, tmp_path / name)  # fills the cache
        client.put(tmp_path / "kept.txt", "uploaded.txt")
    server.terminate()
    # Names and folders are bytes of one file: only it stays.
    assert [path.name for path in (server.state_dir / "locks").iterdir()] == [NAMES_FILE]
    (server.state_dir / "locks" / "stale.lock").touch()  # as a kill -9 mid-upload leaves
    (server.root / "gone.txt").unlink()

    server = ServerProcess(tmp_path / "srv").start()
    with Client(server.host, server.port) as client:
        assert client.stat("kept.txt").sha256 is not None
    server.terminate()
    assert [path.name for path in (server.state_dir / "locks").iterdir()] == [NAMES_FILE]
    with contextlib.closing(sqlite3.connect(server.state_dir / "hashes.sqlite3")) as db:
        paths = {row[0] for row in db.execute("SELECT path FROM digests_v3")}
    assert not any(path.endswith("gone.txt") for path in paths)
    assert any(path.endswith("kept.txt") for path in paths)

    for name in os.listdir(server.state_dir):
        if name.startswith("hashes.sqlite3"):
            os.unlink(server.state_dir / name)
    (server.state_dir / "hashes.sqlite3").write_bytes(b"this is not a database" * 100)
    server = ServerProcess(tmp_path / "srv").start()
    try:
        with Client(server.host, server.port) as client:
            client.get("kept.txt", tmp_path / "again.txt")
        assert "unusable" in server.log
    finally:
        server.terminate()


def test_upload_too_big_for_a_disk_mounted_inside_the_share_is_refused_up_front(
        start_server: Callable[..., ServerProcess], mount_tmpfs: Callable[..., Path],
        tmp_path: Path) -> None:
    server = start_server("thread", limits={"min_free_bytes": 0})
    mount_tmpfs(server.root / "usb", size="4m")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(8 << 20))
    with Client(server.host, server.port) as client:
        with pytest.raises(NoSpace):
            client.put(source, "usb/big.bin")
    assert partial_files(server.root / "usb") == []
    assert partial_files(server.root) == []
