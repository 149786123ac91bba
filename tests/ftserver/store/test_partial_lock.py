"""The client's download partials: one lock_partial for ``get`` and pipelined gets alike.

Both refuse a symlink planted under the partial's name (the write must not land
where it points), and both refuse a partial another download holds.
"""

from __future__ import annotations

import fcntl
import os

import pytest

from common.protocol.errors import Locked, StorageError
from ftclient.localfiles import lock_partial, spot_for
from ftclient.pipeline import PipedFile


@pytest.fixture
def served(start_server):
    server = start_server()
    (server.root / "f.bin").write_bytes(b"served bytes")
    return server


def test_a_symlink_planted_as_the_partial_is_not_followed(served, connect, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    down = tmp_path / "down"
    down.mkdir()
    destination = down / "f.bin"
    os.symlink(outside, down / f".{destination.name}.ftpart")
    client = connect(served)

    with pytest.raises(StorageError):
        client.get("f.bin", destination)
    [result] = client.get_many([PipedFile(str(destination), "f.bin")])

    assert isinstance(result.error, StorageError)
    assert outside.read_bytes() == b"precious"
    assert not destination.exists()
    assert client.stat("f.bin").size == 12  # the pipelined connection is still in step


def test_a_partial_held_by_another_download_is_refused(served, connect, tmp_path):
    destination = tmp_path / "f.bin"
    held = lock_partial(spot_for(str(destination)))
    try:
        client = connect(served)
        with pytest.raises(Locked):
            client.get("f.bin", destination)
        [result] = client.get_many([PipedFile(str(destination), "f.bin")])
        assert isinstance(result.error, Locked)
    finally:
        held.close()
    assert not destination.exists()
    again = lock_partial(spot_for(str(destination)))  # free again
    fcntl.flock(again.fd, fcntl.LOCK_UN)
    again.close()
    client.get("f.bin", destination)
    assert destination.read_bytes() == b"served bytes"
