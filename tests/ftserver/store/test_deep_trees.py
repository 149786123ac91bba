"""Deep trees (issue 18, item 7): any tree can be removed, and clients cannot make absurd ones.

A tree 2,000 folders deep (made here by hand, through folder descriptors, as an
older server's ``mkdir -p`` could) is removed by ``rm -r`` whole, links inside
removed and never followed. ``mkdir -p`` and uploads create folders at most
MAX_FOLDER_DEPTH levels deep, with a clear ``bad_path``; deeper folders made
locally still take uploads. Real server, real client.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import BadPath
from ftclient import Client
from ftserver.store.confine import MAX_FOLDER_DEPTH
from tests.serverproc import ServerProcess


def deep_tree(top: Path, depth: int, outside: Path) -> None:
    """``top/d/d/.../d``, ``depth`` folders, a file every 100 levels, a link out at the bottom."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            os.mkdir("d", dir_fd=fd)
            if level % 100 == 0:
                os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
            inner = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = inner
        os.symlink(outside, "link-out", dir_fd=fd)
    finally:
        os.close(fd)


def test_rm_r_removes_a_tree_two_thousand_folders_deep(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_bytes(b"keep me")
    (server.root / "deep").mkdir()
    try:
        deep_tree(server.root / "deep", 2000, outside)
        with Client("127.0.0.1", server.port, timeout=60) as client:
            client.remove("deep", recursive=True)
            assert [entry.name for entry in client.list("")] == []
    finally:  # pytest's own clean-up of tmp_path would recurse 2,000 deep and fail
        subprocess.run(["rm", "-rf", str(server.root / "deep")], check=False, timeout=60)
    assert set(os.listdir(server.root)) <= {".ft-partials"}
    assert (outside / "precious.txt").read_bytes() == b"keep me"
    assert "Traceback" not in server.log


def test_mkdir_p_and_uploads_create_folders_only_so_deep(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    deepest = "/".join(["d"] * MAX_FOLDER_DEPTH)
    source = tmp_path / "x.txt"
    source.write_bytes(b"x")
    with Client("127.0.0.1", server.port, timeout=60) as client:
        client.mkdir(deepest, parents=True)  # as deep as allowed: fine
        with pytest.raises(BadPath, match=f"at most {MAX_FOLDER_DEPTH} levels deep"):
            client.mkdir(deepest + "/one-too-many", parents=True)
        with pytest.raises(BadPath, match=f"at most {MAX_FOLDER_DEPTH} levels deep"):
            client.put(source, deepest + "/one-too-many/x.txt")
        client.put(source, deepest + "/x.txt")  # into the deepest allowed folder: fine

        # A deeper folder made on the server's own disk still takes uploads into it.
        local = server.root.joinpath(*(["d"] * (MAX_FOLDER_DEPTH + 20)))
        local.mkdir(parents=True)
        name = "/".join(["d"] * (MAX_FOLDER_DEPTH + 20)) + "/y.txt"
        client.put(source, name)
        assert (local / "y.txt").read_bytes() == b"x"
        client.remove("d", recursive=True)
    assert not (server.root / "d").exists()
