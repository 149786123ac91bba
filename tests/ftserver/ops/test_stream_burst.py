"""Bursts of streamed puts: replies held until their folder's fsync, in order, never stale.

A server answers a burst of pipelined streamed puts together (streamburst.py).
These tests check, through a real server, that the replies keep their order
around other requests and refusals, that a burst spread over several folders
publishes and caches every file, that a connection cut in mid-burst leaves only
whole files, and that a batched digest is never served for changed content.
Without a disk that fails on demand, the folder-fsync failure is checked on the
two steps that decide it: a real fsync that fails, and the answers built from it.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import time
from pathlib import Path

from common.io.hashcache import HashCache
from common.protocol.errors import Locked
from common.protocol.frames import FrameDecoder, encode_frame
from common.protocol.replies import PutDone
from ftclient.pipeline import PipedFile
from ftserver.ops.upload import Uploaded
from ftserver.session.ftburst import settle
from ftserver.store.batch import sync_folders
from ftserver.store.diskerrors import storage_error
from ftserver.store.names import Target
from ftserver.store.places import LocalPlace, published_from
from tests.rawwire import RawConnection


def streamed_put(path: str, data: bytes) -> list[dict]:
    """The frames of one streamed put, with ``data`` to go between them."""
    return [{"op": "put", "path": path, "size": len(data), "mtime": 1_600_000_000.5,
             "stream": True},
            {"op": "put_end", "sha256": hashlib.sha256(data).hexdigest()}]


def pipelined(puts: list[tuple[str, bytes]], then: dict | None = None) -> bytes:
    """Several streamed puts (and one more request) back to back, as one send."""
    out = bytearray()
    for path, data in puts:
        start, end = streamed_put(path, data)
        out += encode_frame(start) + data + encode_frame(end)
    if then is not None:
        out += encode_frame(then)
    return bytes(out)


def test_a_burst_is_answered_in_order_around_refusals_and_other_requests(start_server):
    server = start_server()
    (server.root / "taken").mkdir()
    first, second = os.urandom(3000), os.urandom(5000)
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send_bytes(pipelined([("b/one.bin", first), ("taken", b"xyz"),
                                  ("b/two.bin", second)],
                                 then={"op": "stat", "path": "b/one.bin"}))
        replies = [raw.receive() for _ in range(4)]

    assert replies[0] == PutDone(3000, hashlib.sha256(first).hexdigest()).to_dict()
    assert replies[1]["ok"] is False and replies[1]["error"]["code"] == "is_a_directory"
    assert replies[2] == PutDone(5000, hashlib.sha256(second).hexdigest()).to_dict()
    assert replies[3]["ok"] is True and replies[3]["entry"]["size"] == 3000
    assert (server.root / "b/one.bin").read_bytes() == first
    assert (server.root / "b/two.bin").read_bytes() == second
    assert list(server.partials.glob("*.stream")) == []


def test_a_burst_over_several_folders_publishes_and_caches_every_file(start_server, connect,
                                                                     tmp_path):
    server = start_server()
    source = tmp_path / "source"
    source.mkdir()
    files, contents = [], {}
    for index in range(150):
        data = os.urandom(100 + index * 37)
        (source / f"f{index}").write_bytes(data)
        remote = f"many/{['a', 'b/c', 'b/d/e', 'f', 'g'][index % 5]}/f{index}"
        files.append(PipedFile(str(source / f"f{index}"), remote))
        contents[remote] = data
    client = connect(server)

    results = client.put_many(files)

    assert [result.error for result in results] == [None] * len(files)
    for remote, data in contents.items():
        assert (server.root / remote).read_bytes() == data
    digests = {f"many/{entry.path}": entry.sha256
               for entry in client.walk("many") if entry.type == "file"}
    assert digests == {remote: hashlib.sha256(data).hexdigest()
                       for remote, data in contents.items()}  # the burst's rows were stored
    assert list(server.partials.glob("*.stream")) == []


def test_a_batched_digest_is_never_served_for_changed_content(start_server, connect,
                                                             make_file):
    server = start_server()
    old = os.urandom(4096)
    client = connect(server)
    assert client.put_many([PipedFile(str(make_file("old.bin", data=old)), "d/x.bin")]
                           )[0].error is None
    on_server = server.root / "d/x.bin"
    kept = on_server.stat()
    new = os.urandom(4096)  # same size, and the mtime is put back: only ctime tells
    on_server.write_bytes(new)
    os.utime(on_server, ns=(kept.st_atime_ns, kept.st_mtime_ns))

    listed = {entry.name: entry.sha256 for entry in client.list("d")}
    assert listed["x.bin"] in (None, hashlib.sha256(new).hexdigest())
    assert client.stat("d/x.bin", digest=True).sha256 == hashlib.sha256(new).hexdigest()


def test_put_many_rows_describe_only_the_file_they_were_computed_for(tmp_path):
    cache = HashCache(str(tmp_path / "hashes.sqlite3"))
    try:
        files = [tmp_path / f"f{index}" for index in range(3)]
        for path in files:
            path.write_bytes(b"before")
        cache.put_many([(str(path), path.stat(), "a" * 64) for path in files])
        assert [cache.get(str(path), path.stat()) for path in files] == ["a" * 64] * 3
        replaced = tmp_path / "replacement"
        replaced.write_bytes(b"after!")  # same size, another inode, renamed over
        os.replace(replaced, files[1])
        assert cache.get(str(files[1]), files[1].stat()) is None
        assert cache.get(str(files[0]), files[0].stat()) == "a" * 64
    finally:
        cache.close()


def test_a_connection_cut_in_mid_burst_leaves_only_whole_files(start_server, connect):
    server = start_server()
    whole, cut = os.urandom(6000), os.urandom(9000)
    with RawConnection(server.port) as raw:
        raw.hello()
        stream = pipelined([("cut/whole.bin", whole), ("cut/cut.bin", cut)])
        raw.send_bytes(stream[: len(stream) - 5000])  # the second file is cut short
    assert server.wait_for_log(
        r"op=put peer=\S+ user=\S+ path='cut/whole.bin' size=6000 .*result=ok")
    client = connect(server)
    assert (server.root / "cut/whole.bin").read_bytes() == whole
    assert not (server.root / "cut/cut.bin").exists()
    assert client.stat("cut/whole.bin", digest=True).sha256 == hashlib.sha256(whole).hexdigest()


def test_a_failed_folder_fsync_turns_every_file_published_there_into_an_error(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    bad.write_bytes(b"not a folder: opening it as one for fsync fails for real")
    fds = {str(good): os.open(good, os.O_PATH), str(bad): os.open(bad, os.O_PATH)}
    try:
        unsynced = sync_folders(fds)
    finally:
        for fd in fds.values():
            os.close(fd)
    assert list(unsynced) == [str(bad)]

    def published(folder: Path, name: str) -> Uploaded:
        path = tmp_path / name
        path.write_bytes(b"x")
        place = LocalPlace(Target(name, str(folder / name), "k"), None, None)  # type: ignore
        return Uploaded(place, 1, "b" * 64, 0, published_from(path.stat()))

    entries = [({"n": 1}, published(good, "g1"), 0.0), ({"n": 2}, published(bad, "b1"), 0.0),
               ({"n": 3}, Locked("busy name"), 0.0), ({"n": 4}, published(bad, "b2"), 0.0),
               ({"n": 5}, published(good, "g2"), 0.0)]
    # What the batch's settle makes of it: each file published into the failed folder.
    failed = {name: storage_error(unsynced[str(bad)], f"making {name!r} durable")
              for name in ("b1", "b2")}
    answers, replies = settle(entries, failed)

    decoder = FrameDecoder()
    decoder.feed(b"".join(replies))
    frames = [decoder.next_frame() for _ in entries]
    assert [frame["ok"] for frame in frames] == [True, False, False, False, True]
    assert [frame["error"]["code"] for frame in frames if not frame["ok"]] == \
        ["not_a_directory", "locked", "not_a_directory"]
    assert [answer.frame["n"] for answer in answers] == [1, 2, 3, 4, 5]


def test_sigterm_while_a_burst_is_made_durable_still_sends_its_replies(start_server):
    # The burst's digest rows wait for a hash-cache write lock held here, so the
    # signal lands while the session holds a published file's reply: that session is
    # not idle, and the reply must go out within the grace period.
    server = start_server(shutdown_grace=5.0)
    assert server.proc is not None
    data = os.urandom(7000)
    blocker = sqlite3.connect(server.state_dir / "hashes.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with RawConnection(server.port, timeout=10.0) as raw, \
                RawConnection(server.port, timeout=10.0) as idle:
            raw.hello()
            idle.hello()
            raw.send_bytes(pipelined([("held.bin", data)]))
            published = server.root / "held.bin"
            for _ in range(200):  # renamed into place: its reply now waits for the cache
                if published.exists():
                    break
                time.sleep(0.02)
            assert published.read_bytes() == data
            time.sleep(0.2)
            server.proc.send_signal(signal.SIGTERM)
            assert idle.closed_by_server(timeout=5.0), "an idle connection was kept open"
            blocker.execute("ROLLBACK")
            reply = raw.receive()
        assert reply == PutDone(len(data), hashlib.sha256(data).hexdigest()).to_dict()
        assert server.proc.wait(timeout=10.0) == 0
    finally:
        blocker.close()


def test_a_folder_swapped_for_a_link_mid_upload_is_not_followed_across_filesystems(
        start_server, mount_tmpfs, tmp_path):
    # The state folder is on another filesystem than the share, as is the link's target:
    # a rename by path into the swapped folder would land there, outside the share.
    elsewhere = mount_tmpfs(tmp_path / "elsewhere")
    outside = elsewhere / "outside"
    outside.mkdir()
    server = start_server(state_dir=str(elsewhere / "state"))
    folder = server.root / "a"
    folder.mkdir()
    data = os.urandom(64 * 1024)
    start, end = streamed_put("a/two.bin", data)
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send_bytes(encode_frame(start) + data[:1000])
        for _ in range(250):  # the folder is walked to and the upload under way
            if any(server.partials.glob("*.stream")):
                break
            time.sleep(0.02)
        assert any(server.partials.glob("*.stream"))
        folder.rename(server.root / "a-moved")
        folder.symlink_to(outside)
        raw.send_bytes(data[1000:] + encode_frame(end))
        reply = raw.receive()
    assert reply is not None
    assert list(outside.iterdir()) == []
    if reply["ok"]:
        assert (server.root / "a-moved" / "two.bin").read_bytes() == data


def test_a_read_only_burst_is_refused_file_by_file_and_stays_in_step(start_server):
    server = start_server(anonymous="ro")
    (server.root / "notice.txt").write_bytes(b"read me")
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send_bytes(pipelined([("a.bin", os.urandom(2000)), ("b/c.bin", os.urandom(10)),
                                  ("d.bin", b"")],
                                 then={"op": "stat", "path": "notice.txt"}))
        replies = [raw.receive() for _ in range(4)]
    assert [reply["error"]["code"] for reply in replies[:3]] == ["permission"] * 3
    assert replies[3]["ok"] is True and replies[3]["entry"]["size"] == 7
    assert sorted(os.listdir(server.root)) == ["notice.txt"]


def test_files_that_arrive_with_their_headers_are_still_checked_byte_for_byte(start_server):
    # All in one send, so each file's bytes are already buffered when its put is read:
    # the path that hashes and writes them at once, without the receive loop.
    server = start_server()
    good, altered, empty = os.urandom(4096), bytearray(os.urandom(4096)), b""
    start, end = streamed_put("fast/altered.bin", bytes(altered))
    altered[1234] ^= 1  # one bit flipped after the digest was taken
    stream = (pipelined([("fast/good.bin", good)])
              + encode_frame(start) + bytes(altered) + encode_frame(end)
              + pipelined([("fast/empty.bin", empty), ("fast/last.bin", good[::-1])]))
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send_bytes(stream)
        replies = [raw.receive() for _ in range(4)]

    assert replies[0] == PutDone(4096, hashlib.sha256(good).hexdigest()).to_dict()
    assert replies[1]["ok"] is False and replies[1]["error"]["code"] == "integrity"
    assert replies[2] == PutDone(0, hashlib.sha256(empty).hexdigest()).to_dict()
    assert replies[3] == PutDone(4096, hashlib.sha256(good[::-1]).hexdigest()).to_dict()
    assert (server.root / "fast/good.bin").read_bytes() == good
    assert not (server.root / "fast/altered.bin").exists()
    assert (server.root / "fast/empty.bin").read_bytes() == empty
    assert (server.root / "fast/last.bin").read_bytes() == good[::-1]
    assert list(server.partials.glob("*.stream")) == []


def test_a_burst_larger_than_the_free_space_answers_each_file_whole_or_no_space(
        start_server, mount_tmpfs, tmp_path):
    # One statvfs serves the burst while its files fit in what it had spare; past that
    # the disk is asked again. Either way no file is published unless whole.
    mount_tmpfs(tmp_path / "full", size="12m")
    server = start_server(name="full", limits={"min_free_bytes": 0})
    files = [(f"full/f{index}.bin", os.urandom(2_500_000)) for index in range(6)]
    with RawConnection(server.port, timeout=30) as raw:
        raw.hello()
        raw.send_bytes(pipelined(files, then={"op": "stat", "path": "full/f0.bin"}))
        replies = [raw.receive() for _ in range(len(files) + 1)]

    codes = [reply["error"]["code"] if reply["ok"] is False else "ok" for reply in replies]
    assert set(codes[:-1]) == {"ok", "no_space"}, codes
    assert codes[-1] == "ok"  # still in step
    for (name, data), code in zip(files, codes[:-1], strict=True):
        on_disk = server.root / name
        if code == "ok":
            assert on_disk.read_bytes() == data
        else:
            assert not on_disk.exists()
    assert list(server.partials.glob("*.stream")) == []


def test_later_files_of_a_burst_into_one_folder_meet_links_and_folders_as_the_first_does(
        start_server, tmp_path):
    # The first file resolves its folder from the root; the later ones into the same
    # folder look only at their own name there, and must still follow a link that stays
    # in the share, refuse one that leaves it, and refuse a folder.
    server = start_server()
    (server.root / "d" / "sub").mkdir(parents=True)
    (server.root / "e").mkdir()
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"keep")
    (server.root / "d" / "inlink").symlink_to("../e/real.bin")
    (server.root / "d" / "outlink").symlink_to(outside)
    files = [(f"d/{name}", os.urandom(1000 + index))
             for index, name in enumerate(["first.bin", "inlink", "sub", "outlink", "last.bin"])]
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send_bytes(pipelined(files))
        replies = [raw.receive() for _ in files]

    codes = [reply["error"]["code"] if reply["ok"] is False else "ok" for reply in replies]
    assert codes == ["ok", "ok", "is_a_directory", "bad_path", "ok"]
    assert (server.root / "d/first.bin").read_bytes() == files[0][1]
    assert (server.root / "d/inlink").is_symlink()
    assert (server.root / "e/real.bin").read_bytes() == files[1][1]
    assert (server.root / "d/sub").is_dir()
    assert (server.root / "d/outlink").is_symlink() and outside.read_bytes() == b"keep"
    assert (server.root / "d/last.bin").read_bytes() == files[4][1]


def test_a_burst_holds_its_names_until_its_replies_and_may_name_one_twice(start_server):
    """A burst keeps each file's name locked until its replies are settled: another
    connection's put of that name is refused meanwhile, and can go on once they are."""
    server = start_server()
    first, again, late = os.urandom(4096), os.urandom(4000), os.urandom(2000)
    with RawConnection(server.port) as burst, RawConnection(server.port) as other:
        burst.hello()
        other.hello()
        held = pipelined([("n/held.bin", first), ("n/held.bin", again)])
        start, _ = streamed_put("n/late.bin", late)
        burst.send_bytes(held + encode_frame(start) + late[:1000])  # the burst waits for more
        published = server.root / "n" / "held.bin"
        for _ in range(400):  # both published (the second over the first), not answered
            if published.exists() and published.read_bytes() == again:
                break
            time.sleep(0.025)
        assert published.read_bytes() == again
        other.send_bytes(pipelined([("n/held.bin", b"other")]))
        refused = other.receive()
        assert refused is not None and refused["error"]["code"] == Locked.code

        _, end = streamed_put("n/late.bin", late)
        burst.send_bytes(late[1000:] + encode_frame(end))
        assert [burst.receive() for _ in range(3)] == [
            PutDone(len(data), hashlib.sha256(data).hexdigest()).to_dict()
            for data in (first, again, late)]
        other.send_bytes(pipelined([("n/held.bin", b"other")]))
        assert other.receive() == PutDone(5, hashlib.sha256(b"other").hexdigest()).to_dict()
    assert published.read_bytes() == b"other"


def test_a_streamed_put_whose_mtime_no_float_can_hold_is_refused_alone(start_server):
    server = start_server()
    data = b"kept"
    huge = (b'{"op":"put","path":"b/huge.bin","size":1,"mtime":' + b"1" * 400
            + b',"stream":true}')
    end = {"op": "put_end", "sha256": hashlib.sha256(b"x").hexdigest()}
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.send_bytes(len(huge).to_bytes(4, "big") + huge + b"x" + encode_frame(end)
                       + pipelined([("b/kept.bin", data)]))
        refused, kept = raw.receive(), raw.receive()
        listing = raw.request({"op": "list", "path": "b"})

    assert refused["error"]["code"] == "bad_request", refused
    assert "mtime" in refused["error"]["message"]
    assert kept == PutDone(len(data), hashlib.sha256(data).hexdigest()).to_dict()
    assert [entry["name"] for entry in listing["entries"]] == ["kept.bin"]
    assert (server.root / "b" / "kept.bin").read_bytes() == data
    assert "Traceback" not in server.log
