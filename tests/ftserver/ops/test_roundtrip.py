"""Round trips through a real server under both executors: put, get, list, stat, errors.

Each test uses names of its own on a server shared by the module (one per
executor), so the share holds other tests' files too; listings are checked
in folders the test owns.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from common.protocol.errors import IsADirectory, NotFound
from ftclient import GetResult, PutResult

MiB = 1 << 20
SIZES = {"empty": 0, "one-byte": 1, "few-mib": 3 * MiB + 12345, "exact-mib": 2 * MiB}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def partial_of(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.ftpart")


def assert_same_mtime(a: Path, b: Path) -> None:
    assert os.stat(a).st_mtime == pytest.approx(os.stat(b).st_mtime, abs=1e-5)


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
def test_put_then_get_is_byte_identical(shared_server, connect, make_file, tmp_path, size):
    src = make_file(f"round-{size}.bin", size)
    data = src.read_bytes()
    client = connect(shared_server)

    put = client.put(src)
    assert put == PutResult(src.name, size, sha256(data), 0)
    stored = shared_server.root / src.name
    assert stored.read_bytes() == data
    assert_same_mtime(stored, src)

    dest = tmp_path / "down" / src.name
    dest.parent.mkdir()
    got = client.get(src.name, dest)
    assert got == GetResult(str(dest), size, sha256(data), 0)
    assert dest.read_bytes() == data
    assert_same_mtime(dest, stored)
    assert not partial_of(dest).exists()


def test_list_and_stat_show_name_type_size_sha_and_no_partials(
        shared_server, connect, make_file):
    client = connect(shared_server)
    small = make_file("small.txt", 10)
    big = make_file("big.bin", 2 * MiB + 1)
    client.put(small, "listing/")
    client.put(big, "listing/")
    client.put(small, "listing/inner/")
    # Names the server keeps for itself never show, even if someone drops one in by hand.
    (shared_server.root / "listing" / ".ft-reserved").write_bytes(b"internal")

    entries = {entry.name: entry for entry in client.list("listing")}
    assert sorted(entries) == ["big.bin", "inner", "small.txt"]
    assert [e.name for e in client.list("listing")] == ["big.bin", "inner", "small.txt"]
    for path in (small, big):
        entry = entries[path.name]
        assert (entry.type, entry.size) == ("file", path.stat().st_size)
        assert entry.sha256 == sha256(path.read_bytes())
        assert entry.mtime == pytest.approx(path.stat().st_mtime, abs=1e-5)
    assert (entries["inner"].type, entries["inner"].size) == ("dir", 0)

    stat = client.stat("listing/big.bin")
    assert stat == entries["big.bin"]
    assert client.stat("listing/inner").type == "dir"
    # A trailing slash names the same folder.
    assert [e.name for e in client.list("listing/inner/")] == ["small.txt"]


def test_put_into_folder_path_creates_the_folders(shared_server, connect, make_file):
    src = make_file("nested.bin", 1000)
    client = connect(shared_server)
    result = client.put(src, "sub/dir/")
    assert result.remote == "sub/dir/nested.bin"
    assert (shared_server.root / "sub" / "dir" / "nested.bin").read_bytes() == src.read_bytes()
    assert [(e.name, e.type) for e in client.list("sub")] == [("dir", "dir")]
    renamed = client.put(src, "sub/other/renamed.bin")
    assert renamed.remote == "sub/other/renamed.bin"
    assert (shared_server.root / "sub" / "other" / "renamed.bin").exists()


def test_overwrite_replaces_the_whole_file(shared_server, connect, make_file, tmp_path):
    client = connect(shared_server)
    first = make_file("over-1.bin", 3 * MiB)
    second = make_file("over-2.bin", 1000)
    client.put(first, "over.bin")
    client.put(second, "over.bin")
    assert (shared_server.root / "over.bin").read_bytes() == second.read_bytes()
    entry = client.stat("over.bin")
    assert (entry.size, entry.sha256) == (1000, sha256(second.read_bytes()))

    # Growing again works too, and a get replaces an older local copy whole.
    dest = tmp_path / "over.bin"
    dest.write_bytes(b"x" * (5 * MiB))
    client.put(first, "over.bin")
    client.get("over.bin", dest)
    assert dest.read_bytes() == first.read_bytes()


def test_missing_name_raises_not_found_and_connection_goes_on(
        shared_server, connect, make_file, tmp_path):
    client = connect(shared_server)
    with pytest.raises(NotFound):
        client.get("no-such-file.bin", tmp_path / "no-such-file.bin")
    assert not (tmp_path / "no-such-file.bin").exists()
    assert not partial_of(tmp_path / "no-such-file.bin").exists(), "a failed get left litter"
    with pytest.raises(NotFound):
        client.stat("no/such/thing")
    with pytest.raises(NotFound):
        client.list("no-such-folder")

    src = make_file("after-missing.bin", 5000)
    assert client.put(src).size == 5000
    assert client.get(src.name, tmp_path / "copy.bin").size == 5000


def test_get_of_folder_raises_is_a_directory(shared_server, connect, make_file, tmp_path):
    client = connect(shared_server)
    client.put(make_file("inside.bin", 10), "a-folder/")
    with pytest.raises(IsADirectory):
        client.get("a-folder", tmp_path / "a-folder")
    assert not (tmp_path / "a-folder").exists()
    assert not partial_of(tmp_path / "a-folder").exists()
    assert [e.name for e in client.list("a-folder")] == ["inside.bin"]


def test_file_copied_in_by_hand_is_served_and_its_hash_cached(
        shared_server, connect, tmp_path):
    data = os.urandom(2 * MiB + 3)
    by_hand = shared_server.root / "by-hand.bin"
    by_hand.write_bytes(data)
    os.utime(by_hand, ns=(1_500_000_000_987_654_321, 1_500_000_000_987_654_321))
    client = connect(shared_server)

    before = client.stat("by-hand.bin")
    assert (before.type, before.size, before.sha256) == ("file", len(data), None)

    first = client.get("by-hand.bin", tmp_path / "one.bin")
    assert first.sha256 == sha256(data)
    assert (tmp_path / "one.bin").read_bytes() == data
    assert_same_mtime(tmp_path / "one.bin", by_hand)

    # The digest was learnt while streaming: now it is known before the first byte.
    assert client.stat("by-hand.bin").sha256 == sha256(data)
    listed = {e.name: e for e in client.list("")}["by-hand.bin"]
    assert listed.sha256 == sha256(data)
    second = client.get("by-hand.bin", tmp_path / "two.bin")
    assert second == GetResult(str(tmp_path / "two.bin"), len(data), sha256(data), 0)
    assert (tmp_path / "two.bin").read_bytes() == data


def test_get_into_existing_folder_uses_the_remote_name(
        shared_server, connect, make_file, tmp_path):
    src = make_file("into-folder.bin", 4096)
    client = connect(shared_server)
    client.put(src, "deep/er/")
    folder = tmp_path / "target"
    folder.mkdir()
    result = client.get("deep/er/into-folder.bin", folder)
    assert result.local == str(folder / "into-folder.bin")
    assert (folder / "into-folder.bin").read_bytes() == src.read_bytes()


def test_unicode_and_spaced_names_round_trip(shared_server, connect, make_file, tmp_path):
    name = "Été 2026 — rapport final (v2) ✓.pdf"
    src = make_file(name, 777)
    client = connect(shared_server)
    assert client.put(src, "dossiers partagés/").remote == f"dossiers partagés/{name}"
    assert [e.name for e in client.list("dossiers partagés")] == [name]
    result = client.get(f"dossiers partagés/{name}", tmp_path)
    assert Path(result.local) == tmp_path / name
    assert (tmp_path / name).read_bytes() == src.read_bytes()


def test_long_listing_arrives_whole_across_batches(shared_server, connect):
    folder = shared_server.root / "many-entries"
    folder.mkdir()
    names = [f"{i:04d}-" + "n" * 120 for i in range(700)]  # ~100 KiB of entries: several frames
    for name in names:
        (folder / name).write_bytes(b"")
    entries = connect(shared_server).list("many-entries")
    assert [entry.name for entry in entries] == names
    assert all((entry.type, entry.size) == ("file", 0) for entry in entries)
