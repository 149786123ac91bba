"""put and get send files where cp and scp would (issue 17).

``ftclient put *.txt`` with four matches made a remote folder named after the last
one and put the other three in it; ``put a.txt reports`` with ``reports`` an
existing remote folder said "'reports' is a folder"; ``get 'inbox/*.pdf' ~/in/``
was not understood. Real ftclient processes against a real server.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.cliutil import one_error_line
from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient", "--retries", "0"]


def ftclient(server: ServerProcess, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLIENT, "--server", f"127.0.0.1:{server.port}", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def make_files(folder: Path, *names: str) -> list[str]:
    folder.mkdir(exist_ok=True)
    for name in names:
        (folder / name).write_text(f"this is {name}")
    return list(names)  # as the shell expands them, in ``folder``


def test_several_files_need_a_remote_folder_last(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    files = make_files(tmp_path / "here", "w.txt", "x.txt", "y.txt", "z.txt")

    here = tmp_path / "here"
    refused = ftclient(server, "put", *files, cwd=here)  # as `put *.txt` expands

    line = one_error_line(refused)
    assert "'z.txt'" in line and "folder last" in line and "end it with /" in line
    assert sorted(path.name for path in server.root.iterdir() if not path.name.startswith(
        ".")) == []  # nothing moved, no folder z.txt made

    into_new = ftclient(server, "put", *files[:3], "inbox/", cwd=here)
    assert into_new.returncode == 0, into_new.stderr
    assert sorted(path.name for path in (server.root / "inbox").iterdir()) == [
        "w.txt", "x.txt", "y.txt"]

    (server.root / "notes.txt").write_text("a file")
    onto_a_file = ftclient(server, "put", *files[:2], "notes.txt", cwd=here)
    assert "is a file, not a folder" in one_error_line(onto_a_file)
    assert (server.root / "notes.txt").read_text() == "a file"


def test_put_into_an_existing_remote_folder_by_its_name(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    (server.root / "reports").mkdir()
    [report] = make_files(tmp_path / "here", "a.txt")
    result = ftclient(server, "put", report, "reports", cwd=tmp_path / "here")
    assert result.returncode == 0, result.stderr
    assert (server.root / "reports" / "a.txt").read_text() == "this is a.txt"
    renamed = ftclient(server, "put", report, "b.txt", cwd=tmp_path / "here")  # as cp
    assert renamed.returncode == 0 and (server.root / "b.txt").read_text() == "this is a.txt"


def test_get_with_a_remote_pattern_takes_the_matching_files(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    inbox = server.root / "inbox"
    inbox.mkdir()
    for name in ("a.pdf", "b.pdf", "c.txt"):
        (inbox / name).write_text(name)
    (inbox / "d.pdf").mkdir()  # a folder that matches is not a file to get
    local = tmp_path / "in"
    local.mkdir()

    result = ftclient(server, "get", "inbox/*.pdf", str(local), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in local.iterdir()) == ["a.pdf", "b.pdf"]

    here = tmp_path / "here"
    here.mkdir()
    alone = ftclient(server, "get", "inbox/?.txt", cwd=here)  # no folder given: here
    assert alone.returncode == 0, alone.stderr
    assert sorted(path.name for path in here.iterdir()) == ["c.txt"]

    nothing = ftclient(server, "get", "inbox/*.zip", str(local), cwd=tmp_path)
    assert "no remote file matches 'inbox/*.zip'" in one_error_line(nothing)
