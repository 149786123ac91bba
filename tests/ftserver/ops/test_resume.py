"""Resume after a dropped link, never splicing two sources, and nothing half-written in sight.

Links are cut by ``tests.proxy.CuttingProxy``: it forwards exactly N bytes of
one direction, then resets both sides, as a dying Wi-Fi link would. Both ends
write partial data in chunks of at most 1 MiB, so cut points sit several MiB into
an 8 MiB file, and a resumed offset is expected within 2 MiB below the cut.
"""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import pytest

from common.protocol.errors import ConnectionLost, Locked, NotFound
from ftclient import Client, PutResult
from tests.proxy import cutting_proxy
from tests.rawwire import RawConnection, server_holds

MiB = 1 << 20
BIG = 8 * MiB + 4321
HEADER_CUTS = {"in-hello": 20, "in-put-header": 100}
DATA_CUTS = {"at-3MiB": 3 * MiB + 17, "at-5MiB": 5 * MiB + 5, "at-7MiB": 7 * MiB + 999}
LOCK_WAIT = 10.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def partial_of(destination: Path) -> Path:
    return destination.with_name(f".{destination.name}.ftpart")


def put_when_unlocked(client: Client, src: Path, remote: str | None = None) -> PutResult:
    """``put``, retrying while the server still holds the name for the session just cut."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            return client.put(src, remote)
        except Locked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def cut_put(server, connect, src: Path, cut: int, remote: str | None = None) -> None:
    """Upload ``src`` through a proxy that resets the link after ``cut`` client bytes."""
    with cutting_proxy(server.port, cut_after=cut, direction="c2s") as proxy:
        with pytest.raises(ConnectionLost):
            connect(server, port=proxy.port).put(src, remote)
        assert proxy.cut.wait(5)
        assert proxy.forwarded["c2s"] == cut


def cut_get(server, connect, remote: str, dest: Path, cut: int) -> int:
    """Download through a proxy that resets the link after ``cut`` server bytes; return held."""
    with cutting_proxy(server.port, cut_after=cut, direction="s2c") as proxy:
        with pytest.raises(ConnectionLost):
            connect(server, port=proxy.port).get(remote, dest)
        assert proxy.cut.wait(5)
        assert proxy.forwarded["s2c"] == cut
    return partial_of(dest).stat().st_size


def write_by_hand(root: Path, name: str, data: bytes) -> Path:
    path = root / name
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------- the proxy itself


def test_proxy_without_a_budget_relays_a_whole_transfer(shared_server, connect, make_file):
    """(With a budget, ``cut_put`` and ``cut_get`` check it forwarded exactly that many bytes.)"""
    src = make_file("proxy-check.bin", 2 * MiB)
    with cutting_proxy(shared_server.port) as proxy:  # no budget: a plain relay
        assert connect(shared_server, port=proxy.port).put(src).size == 2 * MiB
    assert proxy.cuts == 0 and proxy.forwarded["c2s"] > 2 * MiB


# ---------------------------------------------------------------- put resumes


@pytest.mark.parametrize("cut", HEADER_CUTS.values(), ids=HEADER_CUTS.keys())
def test_put_cut_in_header_phase_starts_over_cleanly(shared_server, connect, make_file, cut):
    src = make_file(f"put-header-{cut}.bin", BIG)
    cut_put(shared_server, connect, src, cut)
    assert not (shared_server.root / src.name).exists()
    result = put_when_unlocked(connect(shared_server), src)
    assert result.resumed_from == 0
    assert (shared_server.root / src.name).read_bytes() == src.read_bytes()


@pytest.mark.parametrize("cut", DATA_CUTS.values(), ids=DATA_CUTS.keys())
def test_put_cut_in_data_resumes_where_it_stopped(shared_server, connect, make_file, cut):
    src = make_file(f"put-data-{cut}.bin", BIG)
    cut_put(shared_server, connect, src, cut)
    assert not (shared_server.root / src.name).exists()

    held = server_holds(shared_server.port, src.name, BIG, src.stat().st_mtime)
    assert cut - 2 * MiB < held <= cut
    result = put_when_unlocked(connect(shared_server), src)
    assert result.resumed_from == held
    assert result.sha256 == sha256(src.read_bytes())
    assert (shared_server.root / src.name).read_bytes() == src.read_bytes()
    assert os.stat(shared_server.root / src.name).st_mtime == pytest.approx(
        src.stat().st_mtime, abs=1e-5)


def test_put_survives_repeated_cuts(shared_server, connect, make_file):
    """Three cuts in a row each add to what the server holds; the fourth attempt finishes."""
    src = make_file("put-repeated.bin", BIG)
    held = 0
    for cut in (2 * MiB + 7, 2 * MiB + 7, 2 * MiB + 7):  # 6 MiB in all: the file is longer
        cut_put(shared_server, connect, src, cut)
        now = server_holds(shared_server.port, src.name, BIG, src.stat().st_mtime)
        assert now > held
        held = now
    result = put_when_unlocked(connect(shared_server), src)
    assert result.resumed_from == held > 3 * MiB
    assert (shared_server.root / src.name).read_bytes() == src.read_bytes()


def test_put_resumes_from_a_complete_partial(shared_server, connect, make_file):
    """All bytes arrived but the link died before the closing header: only that is left."""
    src = make_file("put-complete-partial.bin", 2 * MiB + 1)
    data = src.read_bytes()
    mtime = src.stat().st_mtime  # the same announced file as the client's put below
    with RawConnection(shared_server.port) as raw:
        raw.hello()
        raw.start_put(src.name, len(data), mtime)
        raw.send_bytes(data)
    assert server_holds(shared_server.port, src.name, len(data), mtime) == len(data)
    assert not (shared_server.root / src.name).exists()
    result = put_when_unlocked(connect(shared_server), src)
    assert result.resumed_from == len(data)
    assert (shared_server.root / src.name).read_bytes() == data


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_put_resumes_after_a_server_restart(start_server, connect, make_file, executor):
    """Partials live in the state folder and outlast the server process that wrote them."""
    server = start_server(executor, name="restarted")
    src = make_file("restart.bin", BIG)
    cut_put(server, connect, src, 5 * MiB)
    server.terminate()
    again = start_server(executor, name="restarted")  # same share and state folder
    assert again.root == server.root
    result = put_when_unlocked(connect(again), src)
    assert 3 * MiB < result.resumed_from <= 5 * MiB
    assert (again.root / src.name).read_bytes() == src.read_bytes()


# ---------------------------------------------------------------- get resumes


@pytest.mark.parametrize("cut", [3 * MiB + 17, 6 * MiB + 5], ids=["at-3MiB", "at-6MiB"])
@pytest.mark.parametrize("origin", ["uploaded", "copied-in"])
def test_get_cut_in_data_resumes_where_it_stopped(
        shared_server, connect, make_file, tmp_path, cut, origin):
    """``uploaded`` files have a cached digest (sent with sendfile); ``copied-in`` ones do not."""
    name = f"get-{origin}-{cut}.bin"
    data = random.Random(name).randbytes(BIG)
    if origin == "uploaded":
        connect(shared_server).put(make_file(name, data=data))
    else:
        write_by_hand(shared_server.root, name, data)
    dest = tmp_path / "dl" / name
    dest.parent.mkdir()

    held = cut_get(shared_server, connect, name, dest, cut)
    assert cut - 2 * MiB < held <= cut
    assert partial_of(dest).read_bytes() == data[:held]
    assert not dest.exists()

    result = connect(shared_server).get(name, dest)
    assert (result.resumed_from, result.size, result.sha256) == (held, BIG, sha256(data))
    assert dest.read_bytes() == data
    assert not partial_of(dest).exists()
    assert os.stat(dest).st_mtime == pytest.approx(
        os.stat(shared_server.root / name).st_mtime, abs=1e-5)


@pytest.mark.parametrize("origin", ["uploaded", "copied-in"])
def test_get_resumes_from_a_complete_partial(shared_server, connect, make_file, tmp_path,
                                             origin):
    """The client holds every byte (the closing header was lost): it just gets verified."""
    name = f"get-complete-{origin}.bin"
    data = random.Random(name).randbytes(MiB + 7)
    if origin == "uploaded":
        connect(shared_server).put(make_file(name, data=data))
    else:
        write_by_hand(shared_server.root, name, data)
    dest = tmp_path / name
    partial_of(dest).write_bytes(data)
    result = connect(shared_server).get(name, dest)
    assert (result.resumed_from, result.sha256) == (len(data), sha256(data))
    assert dest.read_bytes() == data
    assert not partial_of(dest).exists()


# ---------------------------------------------------------------- never splice


def test_put_of_changed_source_starts_over(shared_server, connect, make_file):
    src = make_file("splice-put.bin", BIG)
    cut_put(shared_server, connect, src, 5 * MiB)
    assert server_holds(shared_server.port, src.name, BIG, src.stat().st_mtime) > 3 * MiB

    new = bytearray(src.read_bytes())
    new[:4096] = bytes(b ^ 0xFF for b in new[:4096])  # same size, different first bytes
    kept = src.stat()
    src.write_bytes(new)
    # The same size and mtime: the server offers the partial of that upload, and only the
    # prefix's digest tells the client its first bytes are not the ones the server holds.
    os.utime(src, ns=(kept.st_atime_ns, kept.st_mtime_ns))
    assert server_holds(shared_server.port, src.name, BIG, src.stat().st_mtime) > 3 * MiB
    result = put_when_unlocked(connect(shared_server), src)
    assert result.resumed_from == 0
    assert (shared_server.root / src.name).read_bytes() == bytes(new)


def test_put_smaller_than_the_servers_partial_starts_over(shared_server, connect, make_file):
    big = make_file("shrunk-big.bin", BIG)
    cut_put(shared_server, connect, big, 5 * MiB, remote="shrunk.bin")
    assert server_holds(shared_server.port, "shrunk.bin", BIG, big.stat().st_mtime) > 3 * MiB
    # Even a file that is a prefix of what the server holds must not reuse the longer partial.
    small = make_file("shrunk-small.bin", data=big.read_bytes()[: 2 * MiB])
    result = put_when_unlocked(connect(shared_server), small, "shrunk.bin")
    assert result.resumed_from == 0
    assert (shared_server.root / "shrunk.bin").read_bytes() == small.read_bytes()


def test_get_with_corrupted_partial_starts_over(shared_server, connect, make_file, tmp_path):
    src = make_file("splice-get.bin", BIG)
    connect(shared_server).put(src)
    dest = tmp_path / src.name
    held = cut_get(shared_server, connect, src.name, dest, 5 * MiB)
    assert held > 3 * MiB

    with open(partial_of(dest), "r+b") as partial:
        first = partial.read(16)
        partial.seek(0)
        partial.write(bytes(b ^ 0x5A for b in first))
    result = connect(shared_server).get(src.name, dest)
    assert result.resumed_from == 0
    assert dest.read_bytes() == src.read_bytes()
    assert not partial_of(dest).exists()


def test_get_after_remote_file_changed_starts_over(shared_server, connect, make_file, tmp_path):
    old = random.Random("old").randbytes(BIG)
    new = random.Random("new").randbytes(BIG)
    client = connect(shared_server)
    client.put(make_file("changed-remote.bin", data=old))
    dest = tmp_path / "changed-remote.bin"
    assert cut_get(shared_server, connect, dest.name, dest, 5 * MiB) > 3 * MiB

    client.put(make_file("changed-remote.bin", data=new))  # same size, other bytes
    result = client.get(dest.name, dest)
    assert result.resumed_from == 0
    assert dest.read_bytes() == new


def test_get_partial_longer_than_remote_is_discarded(shared_server, connect, make_file,
                                                     tmp_path):
    src = make_file("longer-partial.bin", MiB)
    connect(shared_server).put(src)
    dest = tmp_path / src.name
    # The right bytes, then more: still not provably the same file.
    partial_of(dest).write_bytes(src.read_bytes() + b"trailing junk" * 100)
    result = connect(shared_server).get(src.name, dest)
    assert result.resumed_from == 0
    assert dest.read_bytes() == src.read_bytes()
    assert not partial_of(dest).exists()


# ---------------------------------------------------------------- nothing half-written


def listed_names(client: Client, folder: str = "") -> set[str]:
    return {entry.name for entry in client.list(folder)}


def test_cut_put_of_a_new_name_leaves_nothing_visible(start_server, connect, make_file,
                                                      tmp_path):
    server = start_server("thread", name="fresh")
    src = make_file("invisible.bin", BIG)
    cut_put(server, connect, src, 5 * MiB, remote="folder/invisible.bin")
    client = connect(server)
    assert not (server.root / "folder" / "invisible.bin").exists()
    # Nothing appears in the share but the folder: the partial waits in the reserved
    # hidden folder at its top, which no client can list, fetch or name.
    on_disk = [p.relative_to(server.root).as_posix() for p in server.root.rglob("*")]
    assert [name for name in on_disk if not name.startswith(".ft-partials")] == ["folder"]
    assert any(name.endswith(".part") for name in on_disk)
    assert listed_names(client, "") == {"folder"}
    assert listed_names(client, "folder") == set()
    with pytest.raises(NotFound):
        client.stat("folder/invisible.bin")
    with pytest.raises(NotFound):
        client.get("folder/invisible.bin", tmp_path / "x.bin")


def test_cut_put_keeps_the_previous_version_intact(shared_server, connect, make_file, tmp_path):
    old = make_file("intact-old.bin", MiB + 5)
    new = make_file("intact-new.bin", BIG)
    client = connect(shared_server)
    client.put(old, "intact.bin")
    cut_put(shared_server, connect, new, 5 * MiB, remote="intact.bin")

    assert (shared_server.root / "intact.bin").read_bytes() == old.read_bytes()
    entry = client.stat("intact.bin")
    assert (entry.size, entry.sha256) == (old.stat().st_size, sha256(old.read_bytes()))
    assert client.get("intact.bin", tmp_path / "seen.bin").sha256 == sha256(old.read_bytes())
    assert (tmp_path / "seen.bin").read_bytes() == old.read_bytes()

    result = put_when_unlocked(client, new, "intact.bin")
    assert result.resumed_from > 3 * MiB
    assert (shared_server.root / "intact.bin").read_bytes() == new.read_bytes()


def test_integrity_failure_publishes_nothing(shared_server, connect, make_file):
    old = make_file("integrity-old.bin", 1000)
    connect(shared_server).put(old, "integrity.bin")
    data = os.urandom(MiB + 1)
    with RawConnection(shared_server.port) as raw:
        raw.hello()
        raw.start_put("integrity.bin", len(data))
        reply = raw.finish_put(data, whole=b"some other content")
        assert reply["ok"] is False and reply["error"]["code"] == "integrity"
        # The stream stayed in step: the connection still answers.
        assert raw.request({"op": "stat", "path": "integrity.bin"})["entry"]["size"] == 1000
    assert (shared_server.root / "integrity.bin").read_bytes() == old.read_bytes()
    # The rejected bytes are gone, not kept for a resume.
    assert server_holds(shared_server.port, "integrity.bin", len(data)) == 0


def test_cut_get_leaves_existing_local_file_intact(shared_server, connect, make_file,
                                                   tmp_path):
    src = make_file("local-intact.bin", BIG)
    connect(shared_server).put(src)
    dest = tmp_path / "local-intact.bin"
    dest.write_bytes(b"the user's own older copy")
    assert cut_get(shared_server, connect, src.name, dest, 5 * MiB) > 3 * MiB
    assert dest.read_bytes() == b"the user's own older copy"
    assert connect(shared_server).get(src.name, dest).resumed_from > 3 * MiB
    assert dest.read_bytes() == src.read_bytes()
