"""A file rewritten in place while it is being sent, with its size and mtime kept (as
``cp -p`` or ``rsync --inplace -t`` do), is detected by its ctime: never delivered as verified."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from common.io.channel import Channel
from common.protocol.errors import Locked, SourceChanged
from common.protocol.replies import GetReady, HelloReply, check_reply
from common.protocol.requests import PROTOCOL_VERSION, Hello
from ftclient import Client
from ftclient.results import Progress
from tests.serverproc import ServerProcess

MiB = 1 << 20


def rewrite_in_place_keeping_mtime(path: Path, offset: int, data: bytes) -> None:
    before = os.stat(path)
    with open(path, "r+b") as stream:
        stream.seek(offset)
        stream.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_served_file_rewritten_during_an_uncached_get_is_reported_changed(
        server: ServerProcess) -> None:
    size = 48 * MiB
    target = server.root / "live.db"
    target.write_bytes(b"A" * size)  # copied in by hand: no cached digest, hashed as sent
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        channel = Channel(sock)
        channel.send(Hello(PROTOCOL_VERSION, "test").to_dict())
        HelloReply.from_dict(channel.receive())
        channel.send({"op": "get", "path": "live.db", "offset": 0})
        ready = GetReady.from_dict(channel.receive())
        assert ready.sha256 is None
        channel.expect_raw(size)
        buffer = memoryview(bytearray(MiB))
        channel.recv_raw_exactly(buffer)  # the server is now blocked on full buffers
        rewrite_in_place_keeping_mtime(target, size - MiB, b"B" * MiB)
        for _ in range(size // MiB - 1):
            channel.recv_raw_exactly(buffer)
        with pytest.raises(SourceChanged):
            check_reply(channel.receive())


def test_local_file_rewritten_during_a_put_is_not_published(
        server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(b"A" * (8 * MiB))

    rewritten = []

    def rewrite_once(progress: Progress) -> None:
        # sendfile reports whatever each call sent, so the 2 MiB mark is seldom hit exactly
        if progress.done >= 2 * MiB and not rewritten:
            rewrite_in_place_keeping_mtime(source, 6 * MiB, b"B" * MiB)
            rewritten.append(progress.done)

    with Client(server.host, server.port) as client:
        with pytest.raises(SourceChanged):
            client.put(source, "source.bin", progress=rewrite_once)
        assert rewritten
        assert not (server.root / "source.bin").exists()
    deadline = time.monotonic() + 10  # the server may still be closing the cut session
    while True:
        try:
            with Client(server.host, server.port) as client:
                assert client.put(source, "source.bin").size == 8 * MiB  # a clean retry works
            break
        except Locked:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert (server.root / "source.bin").read_bytes() == source.read_bytes()
