"""After an error reply the Client keeps its connection, as the protocol says, unless the
server hangs up after that code (``bad_frame``): then the next request reconnects.

Real servers under both executors on 127.0.0.1. "The same connection" is shown from
both ends: the client's local port does not change, and the server's transfer log
names that one peer for the refused requests and for the one served after them.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import BadPath, FrameError, ProtocolError, UnknownOp
from common.protocol.replies import Done, StatReply
from ftclient import Client
from tests.rawwire import frame_bytes
from tests.serverproc import ServerProcess

WAIT = 10.0


def _local_port(client: Client) -> int:
    port: int = client.channel().sock.getsockname()[1]
    return port


def _logged_peers(server: ServerProcess, path: str, result: str) -> list[str]:
    """The peers of the server's transfer log lines for ``path`` that ended in ``result``,
    once at least one has been logged (the log is read on a thread)."""
    line = re.compile(rf" peer=(\S+) user=\S+ path={re.escape(repr(path))} .*result={result}\b")
    deadline = time.monotonic() + WAIT
    while True:
        peers = line.findall(server.log)
        if peers or time.monotonic() > deadline:
            return peers
        time.sleep(0.02)


def test_bad_path_replies_leave_the_connection_in_use(
        server: ServerProcess, connect: Callable[..., Client], make_file: Callable[..., Path],
        tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    os.symlink(outside, server.root / "kept-link")
    source = make_file("kept.bin", 5000)
    client = connect(server)
    client.put(source, "kept.bin")
    port = _local_port(client)

    with pytest.raises(BadPath):
        client.get("kept-link/secret.txt", tmp_path / "secret.txt")
    with pytest.raises(BadPath):
        client.stat("kept-link/secret.txt")
    with pytest.raises(BadPath):
        client.list("kept-link")
    with pytest.raises(BadPath):
        client.put(source, "kept-link/new.bin")
    assert client.get("kept.bin", tmp_path / "kept.bin").size == 5000
    assert _local_port(client) == port

    peer = f"127.0.0.1:{port}"
    assert _logged_peers(server, "kept-link/secret.txt", "bad_path") == [peer]
    assert _logged_peers(server, "kept-link/new.bin", "bad_path") == [peer]
    assert peer in _logged_peers(server, "kept.bin", "ok")  # the put, then the get
    assert sorted(os.listdir(outside)) == ["secret.txt"]


def test_unknown_op_and_bad_request_replies_leave_the_connection_in_use(
        server: ServerProcess, connect: Callable[..., Client]) -> None:
    (server.root / "here.txt").write_bytes(b"here")
    client = connect(server)
    assert client.stat("here.txt").size == 4
    port = _local_port(client)

    channel = client.channel()
    channel.send({"op": "frobnicate", "path": "here.txt"})
    with pytest.raises(UnknownOp):
        client.reply(Done, channel)
    channel = client.channel()
    channel.send({"op": "stat", "path": 7})  # a name must be a string
    with pytest.raises(ProtocolError) as refused:
        client.reply(StatReply, channel)
    assert refused.value.code == "bad_request"

    assert client.stat("here.txt").size == 4
    assert client.list("")[0].name == "here.txt"
    assert _local_port(client) == port


def test_after_a_bad_frame_reply_the_next_request_reconnects(
        server: ServerProcess, connect: Callable[..., Client]) -> None:
    (server.root / "here.txt").write_bytes(b"here")
    client = connect(server)
    assert client.stat("here.txt").size == 4
    port = _local_port(client)

    channel = client.channel()
    channel.send_raw(frame_bytes(b"[not an object]"))
    with pytest.raises(FrameError):
        client.reply(Done, channel)

    assert client.stat("here.txt").size == 4  # on a new connection: the server hung up
    assert _local_port(client) != port
