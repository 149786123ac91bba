"""A hostile server against the client: names it sends pass the path rules, its words are escaped.

An in-test server on 127.0.0.1 greets properly, then answers the first request
with whatever the test says: a listing with an escaping name, or an error whose
message holds terminal control sequences. The real ``Client`` and the real CLI
must refuse the one and print the other harmlessly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from common.io.channel import Channel
from common.protocol.errors import ProtocolError
from common.protocol.replies import HelloReply
from common.protocol.requests import PROTOCOL_VERSION
from ftclient import Client

WAIT = 20.0


class OneAnswerServer:
    """Greets each of ``connections`` clients, then answers their first request with ``reply``."""

    def __init__(self, reply: dict[str, Any], connections: int = 1) -> None:
        self.reply = reply
        self.connections = connections
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="hostile-server")
        self.thread.start()

    def _serve(self) -> None:
        for _ in range(self.connections):
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with sock, contextlib.suppress(Exception):
                sock.settimeout(WAIT)
                channel = Channel(sock)
                channel.receive(deadline=time.monotonic() + WAIT)
                channel.send(HelloReply(PROTOCOL_VERSION, "evil", "evil").to_dict())
                channel.receive(deadline=time.monotonic() + WAIT)
                channel.send(self.reply)
                channel.receive_or_eof(deadline=time.monotonic() + 2)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.thread.join(WAIT)
        self.listener.close()


@pytest.mark.parametrize("name", ["../../.bashrc", "/etc/passwd", "a/b", "C:evil", "x\x1b[2J"])
def test_escaping_names_in_a_listing_are_refused(name: str) -> None:
    entry = {"name": name, "type": "file", "size": 1, "mtime": 1.0}
    server = OneAnswerServer({"ok": True, "entries": [entry], "done": True})
    try:
        with Client("127.0.0.1", server.port, timeout=10) as client, \
                pytest.raises(ProtocolError):
            client.list("")
    finally:
        server.close()


def test_control_sequences_in_server_messages_are_escaped_by_the_cli(tmp_path: Path) -> None:
    evil = "\x1b]0;pwned\x07\x1b[2J\u009b31m gotcha"
    server = OneAnswerServer({"ok": False, "error": {"code": "not_found", "message": evil}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ftclient", "--server", f"127.0.0.1:{server.port}", "stat",
             "x"], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        server.close()
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert b"\x1b" not in output and b"\x07" not in output and "\u009b".encode() not in output
    assert b"\\x1b]0;pwned" in result.stderr and b"gotcha" in result.stderr


def test_a_walk_entry_thousands_of_folders_deep_is_skipped_not_a_traceback(
        tmp_path: Path) -> None:
    deep = "/".join(["d"] * 1500)
    entries = [{"path": deep, "type": "dir", "size": 0, "mtime": 1.0}]
    server = OneAnswerServer({"ok": True, "entries": entries, "done": True}, connections=4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "ftclient", "--server", f"127.0.0.1:{server.port}",
             "--timeout", "5", "--retries", "0", "get", "-r", "tree", str(tmp_path / "out")],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    finally:
        server.close()
    assert b"Traceback" not in result.stderr, result.stderr[-2000:]
    assert b"folders deep" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "d").exists()
