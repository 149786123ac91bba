"""Many clients at once, two writers to one name, readers during an upload: both executors.

The module's server runs 4 workers. Racing tests accept every legal outcome
(one writer locked out, or both in turn) and check the one promise that holds
in all of them: a name only ever holds one whole, verified version. Where the
order matters, a raw connection holds an upload open half-way so the
interleaving is certain rather than likely.
"""

from __future__ import annotations

import hashlib
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from common.protocol.errors import Busy, Locked
from ftclient import PutResult
from tests.rawwire import RawConnection

MiB = 1 << 20
CLIENTS = 24
EACH = 256 * 1024 + 11
FUTURE_TIMEOUT = 60.0


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_many_clients_put_and_get_at_once(shared_server, connect, make_file, tmp_path):
    assert "4 workers" in shared_server.log
    sources = [make_file(f"crowd-{i:02d}.bin", EACH) for i in range(CLIENTS)]
    clients = [connect(shared_server) for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS, timeout=20)
    out = tmp_path / "crowd"
    out.mkdir()

    def one(index: int) -> bytes:
        client, src = clients[index], sources[index]
        client.connect()
        start.wait()
        put = client.put(src, "crowd/")
        assert put.size == EACH and put.resumed_from == 0
        got = client.get(f"crowd/{src.name}", out / src.name)
        assert got.sha256 == put.sha256
        return (out / src.name).read_bytes()

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(one, i) for i in range(CLIENTS)]
        results = [future.result(timeout=FUTURE_TIMEOUT) for future in futures]
    for src, downloaded in zip(sources, results, strict=True):
        assert downloaded == src.read_bytes()
        assert (shared_server.root / "crowd" / src.name).read_bytes() == src.read_bytes()
    listing = {e.name: e for e in connect(shared_server).list("crowd")}
    assert sorted(listing) == sorted(src.name for src in sources)
    assert all(listing[src.name].sha256 == sha256(src.read_bytes()) for src in sources)


def test_two_simultaneous_uploads_to_one_name_never_mix(shared_server, connect, make_file):
    contents = [random.Random(f"writer-{i}").randbytes(12 * MiB + i) for i in range(2)]
    sources = [make_file(f"writer-{i}.bin", data=contents[i]) for i in range(2)]
    for round_ in range(3):
        remote = f"contested-{round_}.bin"
        clients = [connect(shared_server) for _ in range(2)]
        start = threading.Barrier(2, timeout=20)

        def upload(index: int, remote: str = remote, clients=clients, start=start
                   ) -> PutResult | Locked:
            clients[index].connect()
            start.wait()
            try:
                return clients[index].put(sources[index], remote)
            except Locked as exc:
                return exc

        with ThreadPoolExecutor(2) as pool:
            outcomes = [f.result(timeout=FUTURE_TIMEOUT)
                        for f in [pool.submit(upload, i) for i in range(2)]]
        winners = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, PutResult)]
        assert winners, f"nobody won: {outcomes!r}"
        final = (shared_server.root / remote).read_bytes()
        assert final in contents, "the file holds a mixture of the two uploads"
        if len(winners) == 1:
            assert final == contents[winners[0]]
        assert connect(shared_server).stat(remote).sha256 == sha256(final)


def test_back_to_back_uploads_of_one_name_are_never_locked(shared_server, connect, make_file):
    """Once a put has succeeded its name is free: the next writer, even a moment later, is in."""
    src = make_file("back-to-back.bin", 1000)
    clients = [connect(shared_server), connect(shared_server)]
    for client in clients:
        client.connect()
    for attempt in range(120):
        result = clients[attempt % 2].put(src, "back-to-back.bin")  # never Locked
        assert result.size == 1000


def test_second_writer_is_locked_out_while_an_upload_is_in_flight(
        shared_server, connect, make_file):
    first = random.Random("first").randbytes(4 * MiB)
    second = make_file("second.bin", 3 * MiB)
    client = connect(shared_server)
    with RawConnection(shared_server.port) as holder:
        holder.hello()
        holder.start_put("held.bin", len(first))
        holder.send_bytes(first[: 2 * MiB])
        with pytest.raises(Locked):
            client.put(second, "held.bin")
        assert not (shared_server.root / "held.bin").exists()
        client.list("")  # a refused put leaves the loser's connection in step
        done = holder.finish_put(first[2 * MiB:], whole=first)
        assert done["ok"] is True, done
    assert (shared_server.root / "held.bin").read_bytes() == first

    result = client.put(second, "held.bin")  # the name was freed before "done" was sent
    assert result.resumed_from == 0
    assert (shared_server.root / "held.bin").read_bytes() == second.read_bytes()


def test_reader_during_an_upload_gets_the_old_version_whole(
        shared_server, connect, make_file, tmp_path):
    old = make_file("reader-old.bin", 3 * MiB + 1)
    new = random.Random("reader-new").randbytes(5 * MiB + 3)
    client = connect(shared_server)
    client.put(old, "read-while-writing.bin")
    with RawConnection(shared_server.port) as writer:
        writer.hello()
        writer.start_put("read-while-writing.bin", len(new))
        writer.send_bytes(new[: 4 * MiB])
        got = client.get("read-while-writing.bin", tmp_path / "during.bin")
        assert got.sha256 == sha256(old.read_bytes())
        assert (tmp_path / "during.bin").read_bytes() == old.read_bytes()
        assert writer.finish_put(new[4 * MiB:], whole=new)["ok"] is True
    got = client.get("read-while-writing.bin", tmp_path / "after.bin")
    assert (tmp_path / "after.bin").read_bytes() == new


def test_readers_racing_uploads_see_one_whole_version(shared_server, connect, make_file,
                                                      tmp_path):
    versions = [random.Random(f"version-{i}").randbytes((3 + i) * MiB + i) for i in range(4)]
    writer = connect(shared_server)
    writer.put(make_file("race-v0.bin", data=versions[0]), "raced.bin")
    finished = threading.Event()

    def write_versions() -> None:
        try:
            for i in range(1, len(versions)):
                writer.put(make_file(f"race-v{i}.bin", data=versions[i]), "raced.bin")
        finally:
            finished.set()

    def read_until_finished(index: int) -> int:
        reader = connect(shared_server)
        reads = 0
        while reads < 25 and (reads < 2 or not finished.is_set()):
            dest = tmp_path / f"reader-{index}-{reads}.bin"
            result = reader.get("raced.bin", dest)
            data = dest.read_bytes()
            assert data in versions, "a reader got a mixture of versions"
            assert result.sha256 == sha256(data)
            dest.unlink()
            reads += 1
        return reads

    with ThreadPoolExecutor(3) as pool:
        writing = pool.submit(write_versions)
        readers = [pool.submit(read_until_finished, i) for i in range(2)]
        writing.result(timeout=FUTURE_TIMEOUT)
        assert all(r.result(timeout=FUTURE_TIMEOUT) >= 2 for r in readers)
    assert (shared_server.root / "raced.bin").read_bytes() == versions[-1]


def test_uploads_to_different_names_run_side_by_side(shared_server, connect, make_file):
    """A lock on one name never blocks another name, even in the same folder."""
    data = random.Random("side").randbytes(2 * MiB)
    with RawConnection(shared_server.port) as holder:
        holder.hello()
        holder.start_put("side/one.bin", len(data))
        holder.send_bytes(data[:MiB])
        other = make_file("two.bin", MiB)
        assert connect(shared_server).put(other, "side/").resumed_from == 0
        assert holder.finish_put(data[MiB:], whole=data)["ok"] is True
    assert (shared_server.root / "side" / "one.bin").read_bytes() == data
    assert (shared_server.root / "side" / "two.bin").read_bytes() == other.read_bytes()


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_connection_limit_answers_busy_and_admits_again(start_server, connect, executor):
    server = start_server(executor, name="limited", limits={"max_per_address": 2})
    with RawConnection(server.port) as first, RawConnection(server.port) as second:
        first.hello()
        second.hello()
        impatient = connect(server)
        impatient.busy_wait = 0.1
        with pytest.raises(Busy):
            impatient.list("")
        with RawConnection(server.port) as refused:  # the answer comes without a hello
            reply = refused.receive()
            assert reply is not None and reply["error"]["code"] == "busy"
            assert "retry" in reply["error"]["message"]
        first.close()
        patient = connect(server)  # waits and retries until the freed slot is released
        assert patient.list("") == []
