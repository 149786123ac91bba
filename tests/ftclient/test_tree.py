"""Whole folders through a real server: round trips, skip-unchanged re-runs, pipelining.

The round trip compares every name, byte and (file and folder) mtime of a tree with nested and
empty folders and awkward names. The re-run test measures what moves twice
over: by the transfer reports, and by the server's own transfer log, which
names every file it received or sent with its byte count. The pipelining tests
refuse one file in the middle of a pipeline and check that the others arrive
and the connection stays in step.
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

from common.io.hashcache import HashCache
from common.protocol.errors import BadPath, Locked, NotADirectory, NotFound
from ftclient.pipeline import PipedFile
from ftclient.tree import TreeProgress, get_tree, put_tree
from tests.rawwire import RawConnection

MiB = 1 << 20
MTIME_NS = 1_600_000_000_123_456_789
NAMES = [
    "plain.txt",
    "empty.bin",
    "with space/inner file.txt",
    "quotes/it's \"quoted\".txt",
    "ünïcödé/日本語.txt",
    "deep/a/b/c/d/leaf.txt",
    "big/large.bin",
]
EMPTY_FOLDERS = ["empty folder", "deep/a/b/empty"]
FOLDER_MTIME_NS = 1_500_000_000_987_654_321


def build_tree(root: Path) -> dict[str, bytes]:
    """A tree of NAMES (one larger than the pipelining limit) and EMPTY_FOLDERS."""
    contents = {}
    for index, name in enumerate(NAMES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0 if name == "empty.bin" else (MiB + 4321 if name.startswith("big/") else 700)
        data = os.urandom(size) if size else b""
        path.write_bytes(data)
        os.utime(path, ns=(MTIME_NS + index, MTIME_NS + index * 1000))
        contents[name] = data
    for folder in EMPTY_FOLDERS:
        (root / folder).mkdir(parents=True)
    # Distinct old folder mtimes, set last (writing into a folder changes its mtime).
    folders = sorted(str(Path(folder).relative_to(root)) for folder, _, _ in os.walk(root))
    for index, folder in enumerate(name for name in folders if name != "."):
        os.utime(root / folder, ns=(FOLDER_MTIME_NS, FOLDER_MTIME_NS - index * 86_400 * 10**9))
    return contents


def snapshot(root: Path) -> dict[str, tuple[str, bytes | None, int | None]]:
    """Every entry below ``root``: relative name -> (kind, bytes, mtime_ns) (no symlinks)."""
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = ("dir", None, path.stat().st_mtime_ns)
        for name in files:
            path = Path(folder) / name
            assert not path.is_symlink(), path
            found[str(path.relative_to(root))] = ("file", path.read_bytes(),
                                                   path.stat().st_mtime_ns)
    return found


def assert_same_tree(a: Path, b: Path) -> None:
    left, right = snapshot(a), snapshot(b)
    assert sorted(left) == sorted(right)
    for name, (kind, data, mtime_ns) in left.items():
        other = right[name]
        assert (kind, data) == other[:2], name
        # Files and folders alike; the wire carries seconds as a double: sub-microsecond
        # is lost.
        assert abs(mtime_ns - other[2]) < 2_000, name


LOGGED_PUT = re.compile(
    r"put peer=\S+ user=\S+ path=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") size=\d+ offset=\d+ "
    r"bytes=(\d+) .*result=ok")


def puts_logged(server, client, tag: str) -> list[tuple[str, int]]:
    """(path, bytes) of every successful put the server logged, up to now.

    The server logs a put just after answering it, so first a marker request on the
    same connection is made and awaited: its line comes after all earlier ones.
    """
    client.mkdir(f"marker-{tag}")
    assert server.wait_for_log(f"marker-{tag}"), server.log
    return [(ast.literal_eval(path), int(count))
            for path, count in LOGGED_PUT.findall(server.log)]


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_tree_round_trip_keeps_every_name_byte_and_mtime(start_server, connect, tmp_path,
                                                         executor):
    server = start_server(executor)
    source = tmp_path / "source"
    build_tree(source)
    os.symlink("/etc", source / "link-out")
    os.symlink("plain.txt", source / "link-in")
    client = connect(server)
    seen: list[TreeProgress] = []

    report = put_tree(client, str(source), "project", progress=seen.append)

    assert sorted(report.sent) == sorted(f"project/{name}" for name in NAMES)
    assert sorted(report.skipped) == [("link-in", "symlink, not followed"),
                                      ("link-out", "symlink, not followed")]
    assert report.failed == []
    assert seen[-1].files_done == seen[-1].files_total == len(NAMES)
    assert seen[-1].bytes_done == seen[-1].bytes_total == report.bytes_moved > MiB
    os.unlink(source / "link-out")
    os.unlink(source / "link-in")
    assert_same_tree(source, server.root / "project")

    back = tmp_path / "back"
    report = get_tree(client, "project", str(back))
    assert sorted(report.sent) == sorted(str(back / name) for name in NAMES)
    assert report.failed == [] and report.skipped == []
    assert_same_tree(source, back)


def test_rerun_moves_nothing_and_a_changed_file_alone_is_resent(start_server, connect,
                                                                tmp_path):
    server = start_server()
    source = tmp_path / "source"
    contents = build_tree(source)
    cache = HashCache(str(tmp_path / "client-cache.sqlite3"))
    client = connect(server)
    try:
        first = put_tree(client, str(source), "tree", cache=cache)
        assert first.bytes_moved == sum(len(data) for data in contents.values())
        logged = len(puts_logged(server, client, "first"))
        assert logged == len(NAMES)
        # Both sides now know every digest: the client's cache, the server's (walk shows it).
        for name in NAMES:
            path = source / name
            assert cache.get(os.path.realpath(path), path.stat()) is not None, name
        assert all(entry.sha256 for entry in client.walk("tree") if entry.type == "file")

        again = put_tree(client, str(source), "tree", cache=cache)
        assert again.sent == [] and again.bytes_moved == 0
        assert sorted(again.unchanged) == sorted(f"tree/{name}" for name in NAMES)
        assert len(puts_logged(server, client, "again")) == logged  # no file data went out

        changed = source / "with space/inner file.txt"
        changed.write_bytes(os.urandom(700))  # same size, new content
        third = put_tree(client, str(source), "tree", cache=cache)
        assert third.sent == ["tree/with space/inner file.txt"]
        assert third.bytes_moved == 700
        assert puts_logged(server, client, "third")[logged:] == [
            ("tree/with space/inner file.txt", 700)]

        # Downloads the same way: a re-run fetches nothing, a changed file alone comes back.
        down = tmp_path / "down"
        assert len(get_tree(client, "tree", str(down), cache=cache).sent) == len(NAMES)
        puts_logged(server, client, "gets")
        gets_before = server.log.count(" get peer=")
        rerun = get_tree(client, "tree", str(down), cache=cache)
        assert rerun.sent == [] and rerun.bytes_moved == 0
        puts_logged(server, client, "regets")
        assert server.log.count(" get peer=") == gets_before
        (server.root / "tree/plain.txt").write_bytes(b"edited on the server")
        client.get("tree/plain.txt", str(tmp_path / "prime.txt"))  # server caches its digest
        fetched = get_tree(client, "tree", str(down), cache=cache)
        assert fetched.sent == [str(down / "plain.txt")]
        assert (down / "plain.txt").read_bytes() == b"edited on the server"
    finally:
        cache.close()


def test_a_touched_file_or_folder_gets_its_new_mtime_without_moving_bytes(
        start_server, connect, tmp_path):
    server = start_server()
    source = tmp_path / "source"
    build_tree(source)
    cache = HashCache(str(tmp_path / "client-cache.sqlite3"))
    client = connect(server)
    try:
        put_tree(client, str(source), "tree", cache=cache)
        logged = len(puts_logged(server, client, "first"))
        touched = source / "deep/a/b/c/d/leaf.txt"
        os.utime(touched, ns=(MTIME_NS, MTIME_NS + 5 * 10**9))  # same bytes, new mtime
        os.utime(source / "with space", ns=(MTIME_NS, MTIME_NS + 7 * 10**9))

        again = put_tree(client, str(source), "tree", cache=cache)

        assert again.sent == [] and again.bytes_moved == 0 and again.failed == []
        assert "tree/deep/a/b/c/d/leaf.txt" in again.unchanged
        assert len(puts_logged(server, client, "again")) == logged  # no file data went out
        assert_same_tree(source, server.root / "tree")
        # The server kept its digest through the new mtime: a third run is still a no-op.
        assert all(entry.sha256 for entry in client.walk("tree") if entry.type == "file")
        assert put_tree(client, str(source), "tree", cache=cache).sent == []

        down = tmp_path / "down"
        get_tree(client, "tree", str(down), cache=cache)
        assert_same_tree(source, down)
        on_server = server.root / "tree/plain.txt"
        os.utime(on_server, ns=(MTIME_NS, MTIME_NS + 9 * 10**9))
        os.utime(server.root / "tree/deep/a", ns=(MTIME_NS, MTIME_NS + 11 * 10**9))
        client.stat("tree/plain.txt", digest=True)  # the server learns the digest again
        gets_before = server.log.count(" get peer=")

        rerun = get_tree(client, "tree", str(down), cache=cache)

        assert rerun.sent == [] and rerun.bytes_moved == 0 and rerun.failed == []
        assert str(down / "plain.txt") in rerun.unchanged
        puts_logged(server, client, "regets")
        assert server.log.count(" get peer=") == gets_before
        assert_same_tree(server.root / "tree", down)
        assert (down / "plain.txt").stat().st_mtime_ns - (MTIME_NS + 9 * 10**9) in range(
            -2_000, 2_000)
    finally:
        cache.close()


def test_a_refused_file_mid_pipeline_costs_only_itself(start_server, connect, make_file):
    server = start_server()
    client = connect(server)
    files = [make_file(f"p{index}.txt", 3000 + index) for index in range(6)]
    client.put(files[0], "blocker")  # a file where a folder would have to be
    wanted = [PipedFile(str(path), f"piped/{path.name}") for path in files]
    wanted.insert(2, PipedFile(str(files[0]), "a/../escape"))
    wanted.insert(4, PipedFile(str(files[1]), "blocker/under-a-file.txt"))
    wanted.insert(5, PipedFile(str(files[2]) + ".missing", "piped/never.txt"))
    wanted.insert(7, PipedFile(str(files[3]), "piped/being-uploaded.txt"))

    with RawConnection(server.port) as holder:  # an upload in progress holds that name
        holder.hello()
        holder.start_put("piped/being-uploaded.txt", 100)
        results = client.put_many(wanted)

    errors = {result.remote: result.error for result in results if result.error}
    assert isinstance(errors.pop("piped/being-uploaded.txt"), Locked)
    assert isinstance(errors.pop("a/../escape"), BadPath)
    assert isinstance(errors.pop("blocker/under-a-file.txt"), NotADirectory)
    assert isinstance(errors.pop("piped/never.txt"), NotFound)
    assert errors == {}
    for path in files:
        assert (server.root / "piped" / path.name).read_bytes() == path.read_bytes()
    # The connection is still in step (a listing on it works), and it carried every put.
    assert [entry.name for entry in client.list("piped")] == sorted(p.name for p in files)
    puts_logged(server, client, "pipeline")
    peers = set(re.findall(r"put peer=(\S+) user=\S+ path='piped/[^']*' size=", server.log))
    assert len(peers) == 1
    assert not (server.root / "escape").exists()


def test_pipelined_gets_survive_a_missing_file_in_the_middle(start_server, connect, tmp_path):
    server = start_server()
    (server.root / "src").mkdir()
    for index in range(5):
        (server.root / "src" / f"g{index}").write_bytes(bytes([index]) * (1000 * index))
    down = tmp_path / "down"
    down.mkdir()
    client = connect(server)
    names = ["g0", "g1", "missing", "g2", "g3", "g4"]

    results = client.get_many([PipedFile(str(down / name), f"src/{name}") for name in names])

    assert [type(result.error).__name__ if result.error else "ok" for result in results] == \
        ["ok", "ok", "NotFound", "ok", "ok", "ok"]
    for index in range(5):
        assert (down / f"g{index}").read_bytes() == bytes([index]) * (1000 * index)
    assert sorted(os.listdir(down)) == [f"g{index}" for index in range(5)]  # no partials left


def test_a_streamed_put_without_a_size_closes_only_its_connection(start_server, connect,
                                                                  make_file):
    server = start_server()
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send({"op": "put", "path": "x.txt", "size": -1, "mtime": 1.0, "stream": True})
        assert raw.closed_by_server()
    assert raw.errors and raw.errors[0]["code"] == "bad_request"
    client = connect(server)
    client.put(make_file("after.txt", 10))
    assert (server.root / "after.txt").stat().st_size == 10


def test_a_full_local_disk_fails_only_the_files_that_do_not_fit(start_server, connect,
                                                                mount_tmpfs, tmp_path):
    server = start_server()
    (server.root / "src").mkdir()
    for index in range(6):
        (server.root / "src" / f"part{index}").write_bytes(os.urandom(300_000))
    small_disk = mount_tmpfs(tmp_path / "small", size="1m")
    client = connect(server)

    results = client.get_many([PipedFile(str(small_disk / f"part{index}"), f"src/part{index}")
                               for index in range(6)])

    fitted = [result for result in results if result.error is None]
    assert 1 <= len(fitted) < 6
    assert all(type(result.error).__name__ == "NoSpace" for result in results[len(fitted):])
    for result in fitted:
        assert Path(result.local).read_bytes() == (server.root / result.remote).read_bytes()
    assert sorted(os.listdir(small_disk)) == sorted(Path(r.local).name for r in fitted)
    assert client.stat("src/part0").size == 300_000  # the connection is still in step
