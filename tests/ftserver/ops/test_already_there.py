"""A put of a file the server already holds, byte for byte, moves nothing (issues 17 and 18).

When a put announces a size and SHA-256 equal to the published file's (its digest
cached), the server offers the whole file as held: the sender sends no byte, and
the file is confirmed, its mtime set. The retry of a put whose reply was lost is
such a put, and so is a re-run of a single put. Without a cached digest, or with
another digest, it is an ordinary upload. Real servers, raw frames.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from ftclient import Client
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

MiB = 1 << 20


def put_announcing(server: ServerProcess, name: str, data: bytes, mtime: float,
                   sha256: str) -> tuple[dict, dict]:
    """A put that announces ``sha256`` and sends only what the server does not hold."""
    with RawConnection(server.port) as raw:
        raw.hello()
        ready = raw.request({"op": "put", "path": name, "size": len(data), "mtime": mtime,
                             "sha256": sha256})
        assert ready["ok"] is True, ready
        offset = ready["offset"]
        raw.send({"op": "put_data", "offset": offset})
        raw.send_bytes(data[offset:])
        done = raw.request({"op": "put_end", "sha256": hashlib.sha256(data).hexdigest()})
    return ready, done


def test_an_identical_file_is_confirmed_without_a_byte(
        start_server: Callable[..., ServerProcess], make_file) -> None:
    server = start_server()
    source = make_file("same.bin", 3 * MiB)
    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    with Client("127.0.0.1", server.port) as client:
        client.put(source)  # published, and its digest cached
    published = (server.root / "same.bin").stat()

    ready, done = put_announcing(server, "same.bin", data, 1_700_000_000.25, digest)
    assert (ready["offset"], ready["prefix_sha256"]) == (len(data), digest)
    assert done == {"ok": True, "size": len(data), "sha256": digest}
    now = (server.root / "same.bin").stat()
    assert now.st_ino == published.st_ino  # the very file, not a republished copy
    assert now.st_mtime == 1_700_000_000.25
    assert server.wait_for_log(r"path='same.bin' size=3145728 offset=3145728 bytes=0 "
                               r".*result=ok"), server.log
    with Client("127.0.0.1", server.port) as client:  # and its digest still known
        assert client.stat("same.bin").sha256 == digest


def test_without_a_cached_digest_or_with_another_it_is_an_ordinary_upload(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    data = os.urandom(MiB)
    digest = hashlib.sha256(data).hexdigest()
    (server.root / "by-hand.bin").write_bytes(data)  # copied in by hand: no digest known
    ready, done = put_announcing(server, "by-hand.bin", data, 5.0, digest)
    assert ready["offset"] == 0 and done["ok"] is True

    other = os.urandom(MiB)
    ready, done = put_announcing(server, "by-hand.bin", other, 6.0,
                                 hashlib.sha256(other).hexdigest())
    assert ready["offset"] == 0 and done["ok"] is True
    assert (server.root / "by-hand.bin").read_bytes() == other
