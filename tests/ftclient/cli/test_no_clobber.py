"""``--no-clobber`` (``-n``, rsync's ``--ignore-existing``), and what a summary says moved.

With -n a put never replaces a name the server has, and a get never replaces a local
file, whatever either holds: single files, several files into a folder, and -r. The
summary counts them as kept. A tree whose big file resumed from what the server held
says both the size transferred and the bytes that crossed the link.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient", "--retries", "0"]
MiB = 1 << 20


def ftclient(port: int, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLIENT, "--server", f"127.0.0.1:{port}", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_put_and_get_with_n_keep_what_the_other_side_has(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    (server.root / "report.txt").write_bytes(b"the server's version")
    (tmp_path / "report.txt").write_bytes(b"my version")
    (tmp_path / "new.txt").write_bytes(b"new")
    kept = ftclient(server.port, "put", "-n", "report.txt", cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "kept report.txt" in kept.stderr and "--no-clobber" in kept.stderr
    assert (server.root / "report.txt").read_bytes() == b"the server's version"
    sent = ftclient(server.port, "put", "--no-clobber", "new.txt", "inbox/", cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert (server.root / "inbox" / "new.txt").read_bytes() == b"new"
    again = ftclient(server.port, "put", "--ignore-existing", "new.txt", "inbox/", cwd=tmp_path)
    assert "kept inbox/new.txt" in again.stderr
    without = ftclient(server.port, "put", "report.txt", cwd=tmp_path)
    assert without.returncode == 0
    assert (server.root / "report.txt").read_bytes() == b"my version"  # no -n: replaced

    (server.root / "report.txt").write_bytes(b"the server's newer version")
    got = ftclient(server.port, "get", "-n", "report.txt", cwd=tmp_path)
    assert got.returncode == 0 and "kept" in got.stderr, got.stderr
    assert (tmp_path / "report.txt").read_bytes() == b"my version"
    fetched = ftclient(server.port, "get", "-n", "report.txt", "fresh.txt", cwd=tmp_path)
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "fresh.txt").read_bytes() == b"the server's newer version"


def test_trees_and_many_files_with_n_leave_every_existing_name_alone(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    local = tmp_path / "docs"
    (local / "sub").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "sub/c.txt"):
        (local / name).write_bytes(f"local {name}".encode())
    (server.root / "docs" / "sub").mkdir(parents=True)
    (server.root / "docs" / "a.txt").write_bytes(b"server a")
    (server.root / "docs" / "sub" / "c.txt").write_bytes(b"server c")
    up = ftclient(server.port, "put", "-r", "-n", "docs", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert re.search(r"put: 1 transferred .*0 unchanged, 2 kept \(--no-clobber\)", up.stderr)
    assert (server.root / "docs" / "a.txt").read_bytes() == b"server a"
    assert (server.root / "docs" / "sub" / "c.txt").read_bytes() == b"server c"
    assert (server.root / "docs" / "b.txt").read_bytes() == b"local b.txt"

    many = ftclient(server.port, "put", "-n", "docs/a.txt", "docs/b.txt", "docs/", cwd=tmp_path)
    assert "2 kept (--no-clobber)" in many.stderr, many.stderr

    (server.root / "docs" / "d.txt").write_bytes(b"server d")
    down = ftclient(server.port, "get", "-r", "-n", "docs", cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    # b.txt is the very file sent up (unchanged); a.txt and c.txt differ and are kept.
    assert "1 transferred" in down.stderr and "1 unchanged, 2 kept (--no-clobber)" in \
        down.stderr, down.stderr
    assert (local / "a.txt").read_bytes() == b"local a.txt"  # not the server's
    assert (local / "d.txt").read_bytes() == b"server d"
    files = ftclient(server.port, "get", "-n", "docs/a.txt", "docs/d.txt", str(local),
                     cwd=tmp_path)
    assert "2 kept (--no-clobber)" in files.stderr, files.stderr


def test_a_tree_whose_big_file_resumed_says_what_moved(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    tree = tmp_path / "media"
    tree.mkdir()
    (tree / "film.mkv").write_bytes(os.urandom(4 * MiB))
    (tree / "notes.txt").write_bytes(b"notes")
    with CuttingProxy(server.port, cut_after=2 * MiB, cut_first=1) as proxy:
        cut = ftclient(proxy.port, "put", "media/film.mkv", "media/film.mkv", cwd=tmp_path)
    assert cut.returncode != 0  # the link dropped half way; the server kept what came
    done = ftclient(server.port, "put", "-r", "media", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    match = re.search(r"put: 2 transferred \(([\d.]+) MiB, ([\d.]+) MiB moved: the rest "
                      r"was held already\)", done.stderr)
    assert match is not None, done.stderr
    assert float(match.group(1)) == 4.0
    assert 1.0 <= float(match.group(2)) <= 3.0
    assert (server.root / "media" / "film.mkv").read_bytes() == (tree / "film.mkv").read_bytes()
