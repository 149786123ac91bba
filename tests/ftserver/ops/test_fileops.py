"""mkdir, move, remove, set_mtime and walk on a real server: what they do, and what they refuse.

Refusals leave everything as it was; symlinks are removed as links and never
followed out of the share; the root cannot be moved or removed; a file or
folder in use by an upload is not moved or removed under it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest

from common.protocol.errors import AlreadyExists, BadPath, Locked, NotEmpty, NotFound, ProtocolError
from ftserver.store.locks import NAMES_FILE, NameLock
from ftserver.store.names import lock_key
from ftserver.store.treelock import TreeLock
from tests.procinfo import usage
from tests.rawwire import RawConnection


@pytest.fixture
def share(start_server):
    return start_server()


def write(path: Path, data: bytes = b"data") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_mkdir_creates_refuses_existing_and_needs_parents_flag(share, connect):
    client = connect(share)
    client.mkdir("reports")
    assert (share.root / "reports").is_dir()
    with pytest.raises(AlreadyExists):
        client.mkdir("reports")
    with pytest.raises(NotFound, match="use -p"):
        client.mkdir("a/b/c")
    assert not (share.root / "a").exists()
    client.mkdir("a/b/c", parents=True)
    client.mkdir("a/b/c", parents=True)  # like mkdir -p: an existing folder is fine
    assert (share.root / "a/b/c").is_dir()
    write(share.root / "file.txt")
    with pytest.raises(AlreadyExists):
        client.mkdir("file.txt/sub", parents=True)
    with pytest.raises(AlreadyExists):
        client.mkdir("file.txt")
    assert (share.root / "file.txt").read_bytes() == b"data"


def test_move_renames_and_never_overwrites(share, connect):
    client = connect(share)
    write(share.root / "draft.txt", b"draft")
    write(share.root / "final.txt", b"final")
    with pytest.raises(AlreadyExists):
        client.move("draft.txt", "final.txt")
    assert (share.root / "draft.txt").read_bytes() == b"draft"
    assert (share.root / "final.txt").read_bytes() == b"final"

    client.mkdir("archive")
    client.move("draft.txt", "archive/draft-1.txt")
    assert (share.root / "archive/draft-1.txt").read_bytes() == b"draft"
    assert not (share.root / "draft.txt").exists()
    with pytest.raises(NotFound):
        client.move("draft.txt", "again.txt")
    with pytest.raises(NotFound):
        client.move("final.txt", "no/such/folder/final.txt")

    client.move("archive", "old-archive")
    assert (share.root / "old-archive/draft-1.txt").exists()
    with pytest.raises(ProtocolError, match="into itself"):
        client.move("old-archive", "old-archive/inner")
    with pytest.raises(BadPath):
        client.move("", "elsewhere")
    with pytest.raises(BadPath):
        client.move("final.txt", "../outside.txt")
    assert (share.root / "final.txt").exists()


def test_move_keeps_a_known_digest(share, connect, make_file):
    client = connect(share)
    source = make_file("hashed.bin", 5000)
    digest = client.put(source).sha256
    client.move("hashed.bin", "renamed.bin")
    assert client.stat("renamed.bin").sha256 == digest


def test_remove_files_folders_and_links_without_following(share, connect, tmp_path):
    client = connect(share)
    outside = write(tmp_path / "outside" / "precious.txt", b"keep me")
    write(share.root / "one.txt")
    (share.root / "empty").mkdir()
    write(share.root / "full/sub/a.txt")
    write(share.root / "full/b.txt")
    os.symlink(outside.parent, share.root / "full/sub/link-to-outside")
    os.symlink(outside, share.root / "top-link")

    client.remove("one.txt")
    client.remove("empty")
    with pytest.raises(NotEmpty, match="-r"):
        client.remove("full")
    assert (share.root / "full/b.txt").exists()
    client.remove("top-link")
    assert not os.path.lexists(share.root / "top-link")
    client.remove("full", recursive=True)
    assert sorted(os.listdir(share.root)) == []
    assert outside.read_bytes() == b"keep me"
    with pytest.raises(NotFound):
        client.remove("one.txt")
    for root_name in ("", "/"):
        with pytest.raises(BadPath):
            client.remove(root_name, recursive=True)
    assert share.root.is_dir()


def test_a_file_being_uploaded_cannot_be_moved_or_removed(share, connect):
    client = connect(share)
    write(share.root / "busy/doc.txt", b"version 1")
    new = b"version 2" * 100
    with RawConnection(share.port) as raw:
        raw.hello()
        raw.start_put("busy/doc.txt", len(new))
        raw.send_bytes(new[:10])  # the upload is in progress, holding its locks
        with pytest.raises(Locked):
            client.remove("busy/doc.txt")
        with pytest.raises(Locked):
            client.move("busy/doc.txt", "elsewhere.txt")
        with pytest.raises(Locked):
            client.remove("busy", recursive=True)
        with pytest.raises(Locked):
            client.move("busy", "moved")
        assert raw.finish_put(new[10:], new)["ok"] is True
    assert (share.root / "busy/doc.txt").read_bytes() == new
    client.move("busy", "moved")
    client.remove("moved", recursive=True)
    assert not (share.root / "moved").exists()


def test_an_upload_holds_off_only_the_folders_around_it(share, connect):
    """A folder goes or moves only when nothing is uploaded inside it, at any depth:
    folders around the upload are ``locked``; other folders, also one reached through
    a symlink, can be removed and moved while it runs, and the upload still wins whole."""
    client = connect(share)
    for name in ("proj/sub/keep.txt", "other/a.txt", "old/b.txt", "proj/side/c.txt"):
        write(share.root / name, b"x")
    os.symlink("proj/sub", share.root / "shortcut")
    data = b"the upload" * 1000
    with RawConnection(share.port) as raw:
        raw.hello()
        raw.start_put("shortcut/new.bin", len(data))  # really proj/sub/new.bin
        raw.send_bytes(data[:10])
        for folder in ("proj", "proj/sub"):
            with pytest.raises(Locked, match="uploads into that folder"):
                client.remove(folder, recursive=True)
            with pytest.raises(Locked):
                client.move(folder, "elsewhere")
        client.remove("old", recursive=True)
        client.move("other", "proj/side/other")  # into a folder around the upload: fine
        client.remove("proj/side", recursive=True)  # a sibling of the upload's folder
        client.remove("shortcut")  # the link, not the folder it points at
        client.mkdir("proj/sub/more")
        assert raw.finish_put(data[10:], data)["ok"] is True
    assert (share.root / "proj/sub/new.bin").read_bytes() == data
    assert sorted(os.listdir(share.root)) == [".ft-partials", "proj"]  # no one else's name
    client.move("proj/sub", "moved")  # free again once the upload is done
    assert [path.name for path in (share.state_dir / "locks").iterdir()] == [NAMES_FILE]


def test_folder_locks_cost_an_upload_one_descriptor_however_deep_its_path(share, connect):
    """Every folder above an upload is locked, but through one open of the locks file:
    a path hundreds of folders deep must not run the server out of descriptors (which
    would fail other clients' requests too). The folders stay locked all the same."""
    client = connect(share)
    client.list("")  # the server is up and idle
    before = usage(share.proc.pid)[0]
    deep = "/".join(["d"] * 300)
    (share.root / deep).mkdir(parents=True)  # deeper than clients may create: made here
    data = b"deep" * 1000
    with RawConnection(share.port) as raw:
        raw.hello()
        raw.start_put(f"{deep}/file.bin", len(data))
        raw.send_bytes(data[:10])  # in progress, holding its folders
        during = usage(share.proc.pid)[0]
        assert during - before < 10, (before, during)
        with pytest.raises(Locked):
            client.remove("/".join(["d"] * 150), recursive=True)
        assert raw.finish_put(data[10:], data)["ok"] is True
    assert (share.root / deep / "file.bin").read_bytes() == data
    client.remove("d", recursive=True)


def test_mkdir_of_a_name_being_uploaded_is_locked_and_the_upload_wins_whole(share, connect):
    """Two writers to one name: the upload holds it, so mkdir (with or without -p) is
    told ``locked`` at once, instead of the upload failing at publishing after every
    byte; a mkdir of another name goes ahead meanwhile."""
    client = connect(share)
    data = b"the upload" * 100
    with RawConnection(share.port) as raw:
        raw.hello()
        raw.start_put("inbox/report", len(data))
        raw.send_bytes(data[:10])  # in progress, holding the name
        with pytest.raises(Locked, match="being uploaded"):
            client.mkdir("inbox/report")
        with pytest.raises(Locked):
            client.mkdir("inbox/report", parents=True)
        client.mkdir("inbox/elsewhere")  # folder locks are shared with uploads
        assert raw.finish_put(data[10:], data)["ok"] is True
    assert (share.root / "inbox/report").read_bytes() == data
    assert (share.root / "inbox/elsewhere").is_dir()
    with pytest.raises(AlreadyExists):
        client.mkdir("inbox/report")


def test_mkdir_p_of_one_folder_from_many_clients_at_once_all_succeed(share, connect):
    """The name lock must not turn an idempotent ``mkdir -p`` racing itself into
    ``locked``: each waits its turn for the moment the other holds the name."""
    clients = [connect(share) for _ in range(4)]
    failures: list[BaseException] = []

    def make(client) -> None:
        try:
            for attempt in range(15):
                client.mkdir(f"same/{attempt}", parents=True)
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=make, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert failures == []
    assert sorted(os.listdir(share.root / "same")) == sorted(str(n) for n in range(15))


def test_mkdir_waits_for_a_folder_move_or_removal_to_finish(share, connect):
    """mkdir holds the folder locks above it shared, as uploads do: while a folder move
    or ``rm -r`` holds its folder exclusively (here this test, as a second process
    would), mkdir creates nothing; once it is released, the mkdir goes ahead and
    answers ok."""
    connect(share).list("")  # the server is up and has made its locks folder
    top = os.path.realpath(share.root)
    with RawConnection(share.port, timeout=20) as raw:
        raw.hello()
        with TreeLock(str(share.state_dir / "locks"), top).exclusive(top + "/during"):
            raw.send({"op": "mkdir", "path": "during/removal", "parents": True})
            time.sleep(0.3)
            assert not (share.root / "during").exists()
        assert raw.receive() == {"ok": True}
    assert (share.root / "during/removal").is_dir()


def test_a_mkdir_waiting_for_its_name_does_not_hold_off_a_folder_removal(share, connect):
    """While mkdir waits for its name (held here by this test, as another mkdir would
    hold it for a moment), it holds no folder lock: an ``rm -r`` meanwhile goes ahead,
    and the mkdir still answers ok once the name is free."""
    client = connect(share)
    client.mkdir("old/deep", parents=True)
    held_key = lock_key(os.path.realpath(share.root) + "/held")
    name = NameLock(str(share.state_dir / "locks"), held_key)
    with name:
        assert name.try_acquire()
        with RawConnection(share.port, timeout=20) as raw:
            raw.hello()
            raw.send({"op": "mkdir", "path": "held"})
            time.sleep(0.3)  # the mkdir now waits for the name
            client.remove("old", recursive=True)  # refused "locked" if mkdir held the tree
            assert not (share.root / "old").exists()
            name.release()
            assert raw.receive() == {"ok": True}
    assert (share.root / "held").is_dir()


def test_walk_lists_the_subtree_with_relative_paths(share, connect, tmp_path):
    client = connect(share)
    write(share.root / "top/a.txt", b"a")
    write(share.root / "top/sub/b.txt", b"bb")
    (share.root / "top/sub/empty").mkdir()
    os.symlink(tmp_path, share.root / "top/outside")  # leaves the share: never listed
    os.symlink(share.root / "top", share.root / "top/sub/loop")  # a folder link: not entered
    walked = [(entry.path, entry.type, entry.size) for entry in client.walk("top")]
    assert walked == [("a.txt", "file", 1), ("sub", "dir", 0), ("sub/b.txt", "file", 2),
                      ("sub/empty", "dir", 0), ("sub/loop", "dir", 0)]
    with pytest.raises(NotFound):
        client.walk("nothing-here")


def test_stat_with_digest_hashes_a_file_copied_in_by_hand_once(share, connect):
    client = connect(share)
    data = os.urandom(70_000)
    write(share.root / "by-hand.bin", data)
    assert client.stat("by-hand.bin").sha256 is None  # not known yet, and not computed
    entry = client.stat("by-hand.bin", digest=True)
    assert entry.sha256 == hashlib.sha256(data).hexdigest() and entry.size == len(data)
    assert [e.sha256 for e in client.walk("")] == [entry.sha256]  # now cached
    assert client.stat("by-hand.bin").sha256 == entry.sha256
    client.mkdir("folder")
    assert client.stat("folder", digest=True).sha256 is None


def test_set_mtime_sets_files_and_folders_and_keeps_the_digest(share, connect, make_file):
    client = connect(share)
    client.put(make_file("a.txt", 3000), "docs/a.txt")
    atime_ns = os.stat(share.root / "docs/a.txt").st_atime_ns
    digest = client.stat("docs/a.txt").sha256
    assert digest is not None

    client.set_mtime("docs/a.txt", 1_500_000_000.25)
    client.set_mtime("docs", 1_400_000_000.5)

    st = os.stat(share.root / "docs/a.txt")
    assert abs(st.st_mtime_ns - 1_500_000_000_250_000_000) < 1_000
    assert st.st_atime_ns == atime_ns
    assert abs(os.stat(share.root / "docs").st_mtime_ns - 1_400_000_000_500_000_000) < 1_000
    # Setting the mtime changed ctime, yet the server still knows the file's digest.
    assert client.stat("docs/a.txt").sha256 == digest
    assert [entry.mtime for entry in client.walk("")] == [1_400_000_000.5, 1_500_000_000.25]
    with pytest.raises(NotFound):
        client.set_mtime("docs/missing.txt", 1.0)
    with pytest.raises(NotFound):
        client.set_mtime("nowhere/a.txt", 1.0)


def test_set_mtime_refuses_escapes_the_root_and_files_being_uploaded(share, connect, tmp_path):
    client = connect(share)
    outside = write(tmp_path / "outside" / "precious.txt", b"keep me")
    os.utime(outside, ns=(1, 2_000_000_000))
    os.utime(outside.parent, ns=(1, 3_000_000_000))
    os.symlink(outside.parent, share.root / "link-out")
    os.symlink(outside, share.root / "file-link-out")
    write(share.root / "inside.txt")

    with pytest.raises(BadPath):
        client.set_mtime("link-out/precious.txt", 1_000_000_000.0)
    client.set_mtime("link-out", 1_000_000_000.0)  # the link itself, never its target
    client.set_mtime("file-link-out", 1_000_000_000.0)
    assert os.lstat(share.root / "link-out").st_mtime == 1_000_000_000.0
    assert os.stat(outside).st_mtime_ns == 2_000_000_000
    assert os.stat(outside.parent).st_mtime_ns == 3_000_000_000

    with RawConnection(share.port) as raw:  # what the client would refuse to send
        raw.hello()
        for path in ("../outside/precious.txt", "a/../inside.txt", "", "/inside.txt"):
            code = raw.error_code({"op": "set_mtime", "path": path, "mtime": 1.0})
            assert code == "bad_path", path
        for mtime in ("1.0", True, None, 2.0**41):
            code = raw.error_code({"op": "set_mtime", "path": "inside.txt", "mtime": mtime})
            assert code == "bad_request", mtime
    assert os.stat(outside).st_mtime_ns == 2_000_000_000

    with RawConnection(share.port) as holder:  # an upload in progress holds that name
        holder.hello()
        holder.start_put("inside.txt", 100)
        with pytest.raises(Locked):
            client.set_mtime("inside.txt", 1_000_000_000.0)
    assert os.stat(share.root / "inside.txt").st_mtime != 1_000_000_000.0
