"""Published files and folders honour the server's umask, as cp would (issue 17).

The shipped systemd unit runs the server with ``UMask=0002`` beside a setgid folder
of group ``ftshare``, so that colleagues can manage each other's files: every file
used to be 0600. A real server started with a given umask; uploads by the real
Client and by a burst of small files, into a folder the upload creates.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ftclient import Client
from ftclient.pipeline import PipedFile
from tests.serverproc import ServerProcess


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """Run what starts inside (the server) with ``mask``; ours again afterwards."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: os.PathLike[str]) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(("mask", "file_mode", "folder_mode"),
                         [(0o002, 0o664, 0o775), (0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_uploads_take_the_servers_umask(
        mask: int, file_mode: int, folder_mode: int,
        start_server: Callable[..., ServerProcess], make_file) -> None:
    with umask(mask):
        server = start_server()
    big, small = make_file("big.bin", 2 << 20), make_file("small.txt", 100)
    with Client("127.0.0.1", server.port) as client:
        client.put(big, "team/big.bin")
        assert client.put_many([PipedFile(str(small), "burst/small.txt")])[0].error is None
        client.mkdir("made/by/mkdir", parents=True)
    assert mode(server.root / "team" / "big.bin") == file_mode
    assert mode(server.root / "burst" / "small.txt") == file_mode
    for folder in ("team", "burst", "made", "made/by/mkdir"):
        assert mode(server.root / folder) == folder_mode, folder
    assert mode(server.partials) == 0o700  # the partials stay the server's own
