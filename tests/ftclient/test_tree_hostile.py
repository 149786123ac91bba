"""``get -r`` trusts nothing a server names: a hostile server cannot write outside the destination.

A fake server on 127.0.0.1 speaks just enough protocol to answer ``hello`` and a
``walk`` with one poisoned name (``../x``, an absolute path, a control
character, a reserved name), and would serve any file asked for. The client
must refuse the listing before it writes anything. A symlink planted in the
destination is not followed either (against a real server).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from common.protocol.errors import BadPath
from common.protocol.frames import FrameDecoder, encode_frame
from ftclient import Client
from ftclient.tree import get_tree

HOSTILE_NAMES = ["../x", "../../etc/x", "/tmp/x", "a/../../x", "ok/\x1b[2Jx", "a\x00b",
                 ".ft-partial", "C:evil", "a\\..\\x"]


class HostileServer:
    """Answers hello, then a walk with ``entries``, then serves ``payload`` for any get."""

    def __init__(self, entries: list[dict], payload: bytes = b"owned") -> None:
        self.entries = entries
        self.payload = payload
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(10.0)
        self.port = self.listener.getsockname()[1]
        self.asked: list[dict] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            conn, _ = self.listener.accept()
            with conn:
                conn.settimeout(10.0)
                decoder = FrameDecoder()
                for _ in range(50):  # bounded: a few requests at most
                    frame = decoder.next_frame()
                    if frame is None:
                        data = conn.recv(65536)
                        if not data:
                            return
                        decoder.feed(data)
                        continue
                    self.asked.append(frame)
                    conn.sendall(self._answer(frame))

    def _answer(self, frame: dict) -> bytes:
        op = frame.get("op")
        if op == "hello":
            return encode_frame({"ok": True, "version": 1, "server": "evil", "name": "evil"})
        if op == "walk":
            return encode_frame({"ok": True, "entries": self.entries, "done": True})
        if op == "get":
            digest = hashlib.sha256(self.payload).hexdigest()
            return (encode_frame({"ok": True, "size": len(self.payload), "mtime": 1.0,
                                  "offset": 0, "sha256": digest})
                    + self.payload + encode_frame({"ok": True, "sha256": digest}))
        return encode_frame({"ok": False, "error": {"code": "unknown_op", "message": "no"}})

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=15)


def files_below(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_poisoned_name_in_a_walk_writes_nothing_anywhere(tmp_path, name, kind):
    area = tmp_path / "area"
    destination = area / "inner" / "dest"
    destination.parent.mkdir(parents=True)
    entries = [{"path": "fine.txt", "type": "file", "size": 5, "mtime": 1.0},
               {"path": name, "type": kind, "size": 5 if kind == "file" else 0, "mtime": 1.0}]
    server = HostileServer(entries)
    try:
        with Client("127.0.0.1", server.port, timeout=10.0, busy_wait=1.0) as client, \
                pytest.raises(BadPath):
            get_tree(client, "share", str(destination))
    finally:
        server.close()
    assert files_below(area) == ["inner"]  # not even the harmless file, not the destination
    assert not any(frame.get("op") == "get" for frame in server.asked)


def test_a_symlink_planted_in_the_destination_is_not_followed(start_server, connect,
                                                                tmp_path):
    server = start_server()
    (server.root / "tree/sub").mkdir(parents=True)
    (server.root / "tree/sub/x.txt").write_bytes(b"from the server")
    (server.root / "tree/top.txt").write_bytes(b"top")
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"
    destination.mkdir()
    os.symlink(outside, destination / "sub")
    os.symlink(outside / "top.txt", destination / "top.txt")

    report = get_tree(connect(server), "tree", str(destination))

    assert {name for name, _reason in report.skipped} == {
        str(destination / "sub"), str(destination / "sub/x.txt"), str(destination / "top.txt")}
    assert report.sent == []
    assert os.listdir(outside) == []
