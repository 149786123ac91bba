"""No way out of the share: sibling folders sharing the root's prefix, symlinks swapped in while a
transfer runs or between check and open, and special files that are never opened.

Real servers under both executors, raw protocol connections where the timing
of a swap matters, and a bounded race loop (count and time) that flips names
between a file or folder inside and a symlink to a secret outside.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import BadPath, FtError
from ftserver.store.confine import SWAPPED_TO_LINK, make_dirs_beneath, open_path_beneath
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

SECRET = b"S" * 7777  # a size no inside file has, so a leaked stat shows too


def test_a_sibling_folder_sharing_the_roots_prefix_is_outside(server: ServerProcess) -> None:
    sibling = Path(str(server.root) + "2")  # /x/share vs /x/share2
    sibling.mkdir()
    (sibling / "secret.txt").write_bytes(SECRET)
    os.symlink(sibling, server.root / "to-sibling")
    os.symlink(sibling / "secret.txt", server.root / "sibling-file")
    os.symlink(f"../{sibling.name}/secret.txt", server.root / "relative")
    with RawConnection(server.port) as raw:
        raw.hello()
        for path in ("to-sibling/secret.txt", "sibling-file", "relative"):
            assert raw.error_code({"op": "get", "path": path, "offset": 0}) == "bad_path"
            assert raw.error_code({"op": "stat", "path": path}) == "bad_path"
        assert raw.error_code({"op": "list", "path": "to-sibling"}) == "bad_path"
        assert raw.error_code({"op": "put", "path": "to-sibling/new.txt", "size": 1,
                               "mtime": 1.0}) == "bad_path"
        assert raw.request({"op": "list", "path": ""})["entries"] == []
    assert sorted(os.listdir(sibling)) == ["secret.txt"]


def test_a_folder_swapped_for_a_symlink_during_an_upload_is_not_followed(
        server: ServerProcess, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (server.root / "drop").mkdir()
    data = os.urandom(200_000)
    with RawConnection(server.port, timeout=20) as raw:
        raw.hello()
        assert raw.start_put("drop/new.bin", len(data))["offset"] == 0
        raw.send_bytes(data[:100_000])
        os.rename(server.root / "drop", server.root / "drop-before")
        os.symlink(outside, server.root / "drop")
        raw.send_bytes(data[100_000:])
        raw.send({"op": "put_end", "sha256": hashlib.sha256(data).hexdigest()})
        reply = raw.receive()
    assert reply is not None and reply["ok"] is False
    assert reply["error"]["code"] == "bad_path"
    assert os.listdir(outside) == []
    assert os.listdir(server.root / "drop-before") == []
    assert "Traceback" not in server.log


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_swapping_names_for_symlinks_never_serves_anything_from_outside(
        executor: str, start_server: Callable[..., ServerProcess], connect, tmp_path: Path
) -> None:
    server = start_server(executor)
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_bytes(SECRET)
    (outside / "sub" / "f.txt").write_bytes(SECRET)
    (server.root / "sub").mkdir()
    (server.root / "sub" / "f.txt").write_bytes(b"inside")
    (server.root / "file.txt").write_bytes(b"inside")

    stop = threading.Event()
    flippers = [
        threading.Thread(target=_flip_file, args=(server.root / "file.txt",
                                                  outside / "secret.txt", stop)),
        threading.Thread(target=_flip_folder, args=(server.root / "sub", outside / "sub", stop)),
    ]
    for thread in flippers:
        thread.start()
    client = connect(server)
    served = refused = 0
    deadline = time.monotonic() + 3.0
    try:
        for attempt in range(300):
            if time.monotonic() > deadline:
                break
            name = ("file.txt", "sub/f.txt")[attempt % 2]
            try:
                result = client.get(name, tmp_path / "got.bin")
            except FtError:
                refused += 1
                continue
            assert result.size == 6
            assert (tmp_path / "got.bin").read_bytes() == b"inside"
            served += 1
            try:
                assert client.stat(name).size == 6
                for entry in client.list("sub" if "/" in name else ""):
                    assert entry.size != len(SECRET)
            except FtError:
                pass
    finally:
        stop.set()
        for thread in flippers:
            thread.join(10)
    assert served + refused > 20
    assert (outside / "secret.txt").read_bytes() == SECRET
    assert sorted(os.listdir(outside)) == ["secret.txt", "sub"]
    assert "Traceback" not in server.log, server.log[server.log.find("Traceback") - 300:][:3000]


def _flip_file(name: Path, outside: Path, stop: threading.Event) -> None:
    spare = name.with_name(".spare-" + name.name)
    link = name.with_name(".link-" + name.name)
    spare.write_bytes(b"inside")
    for _ in range(5000):
        if stop.is_set():
            return
        os.symlink(outside, link)
        os.replace(link, name)  # now a symlink to the secret
        time.sleep(0.0005)
        os.link(spare, link)
        os.replace(link, name)  # a regular file again
        time.sleep(0.0005)


def _flip_folder(name: Path, outside: Path, stop: threading.Event) -> None:
    aside = name.with_name(".aside-" + name.name)
    for _ in range(5000):
        if stop.is_set():
            return
        os.rename(name, aside)
        os.symlink(outside, name)  # now a symlink to a folder outside
        time.sleep(0.0005)
        os.unlink(name)
        os.rename(aside, name)  # the real folder again
        time.sleep(0.0005)


def test_fifos_and_devices_are_never_opened_or_served(
        server: ServerProcess) -> None:
    fifo = server.root / "pipe"
    os.mkfifo(fifo)
    specials = ["pipe"]
    if os.geteuid() == 0:
        os.mknod(server.root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        specials.append("null")
    (server.root / "plain.txt").write_bytes(b"x")
    with RawConnection(server.port) as raw:
        raw.hello()
        for name in specials:
            started = time.monotonic()
            assert raw.error_code({"op": "get", "path": name, "offset": 0}) == "permission"
            assert raw.error_code({"op": "stat", "path": name}) == "permission"
            assert time.monotonic() - started < 5
        names = [e["name"] for e in raw.request({"op": "list", "path": ""})["entries"]]
        assert names == ["plain.txt"]
    # Nobody holds the FIFO open for reading: a non-blocking writer finds no reader.
    with pytest.raises(OSError) as no_reader:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert no_reader.value.errno == errno.ENXIO


@pytest.mark.parametrize("leads_to", ["an existing folder", "nothing"])
def test_a_folder_found_swapped_for_a_link_mid_walk_is_a_bad_path_naming_it(
        tmp_path: Path, leads_to: str) -> None:
    """The walk from the root meets ``a/b`` as a symlink where the check saw a folder:
    ``bad_path`` naming ``a/b`` inside the share, worded the same wherever the link leads
    (so the answer tells nothing of what exists outside), never ``not_found``."""
    root = tmp_path / "share"
    (root / "a").mkdir(parents=True)
    outside = tmp_path / "outside"
    if leads_to == "an existing folder":
        (outside / "c").mkdir(parents=True)
        (outside / "c" / "file.txt").write_bytes(SECRET)
    os.symlink(outside, root / "a" / "b")
    messages = []
    for deep in ("a/b/c/file.txt", "a/b/c", "a/b/file.txt"):
        with pytest.raises(BadPath) as refused:
            os.close(open_path_beneath(str(root), str(root / deep)))
        messages.append(refused.value.message)
    with pytest.raises(BadPath) as refused:
        make_dirs_beneath(str(root), str(root / "a" / "b" / "new"))
    messages.append(refused.value.message)
    assert set(messages) == {f"'a/b' {SWAPPED_TO_LINK}"}
    assert str(tmp_path) not in messages[0]
    assert not (outside / "new").exists()
    # The link itself, last on the path, is refused the same way.
    with pytest.raises(BadPath) as last:
        os.close(open_path_beneath(str(root), str(root / "a" / "b")))
    assert last.value.message == f"'a/b' {SWAPPED_TO_LINK}"


def test_a_file_or_a_gap_on_the_path_is_still_not_found(tmp_path: Path) -> None:
    """Only a symlink is a bad path: a file where a folder was, or nothing, keeps its
    OSError for the caller to word as ``not_found``."""
    root = tmp_path / "share"
    root.mkdir()
    (root / "file.txt").write_bytes(b"x")
    with pytest.raises(NotADirectoryError):
        open_path_beneath(str(root), str(root / "file.txt" / "below"))
    with pytest.raises(FileNotFoundError):
        open_path_beneath(str(root), str(root / "gone" / "below"))
