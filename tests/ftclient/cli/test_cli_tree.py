"""The folder and file-management commands of ``ftclient``, run as real processes.

``put -r``/``get -r`` with their one overall progress bar and summary, the re-run
that moves nothing (the client's digest cache lives in a test-owned
``XDG_CACHE_HOME``), several files at once, ``mkdir``/``mv``/``rm``/``stat``
with exit 1 and one clear line for every refusal, and ``ls -l``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cliutil import one_error_line
from tests.ftclient.cli.test_cli_client import client_env, ftclient


@pytest.fixture
def srv(start_server):
    return start_server()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = client_env()
    environment["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return environment


def make_tree(root: Path) -> None:
    for name, data in {"a.txt": b"alpha", "sub dir/b 'q'.txt": b"beta" * 100,
                       "sub dir/ünï.txt": b"unicode"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "empty").mkdir()
    os.symlink("/etc/hostname", root / "link")


def test_put_r_and_get_r_round_trip_and_a_rerun_skips_everything(srv, env, tmp_path):
    source = tmp_path / "src"
    make_tree(source)

    first = ftclient("put", "-r", str(source), "proj", server=srv, env=env)
    assert first.returncode == 0, first.stderr
    assert "skipped link: symlink, not followed" in first.stderr
    assert "put: 3 transferred" in first.stderr
    assert "\r" not in first.stderr  # into a pipe: no bar frames (test_progress_display)
    assert (srv.root / "proj/sub dir/b 'q'.txt").read_bytes() == b"beta" * 100
    assert (srv.root / "proj/empty").is_dir()
    assert not (srv.root / "proj/link").exists()

    again = ftclient("put", "-r", str(source), "proj", server=srv, env=env)
    assert again.returncode == 0, again.stderr
    assert "put: 0 transferred (0 B), 3 unchanged" in again.stderr
    assert os.listdir(tmp_path / "cache" / "ftclient") != []

    down = tmp_path / "down"
    got = ftclient("-q", "get", "-r", "proj", str(down), server=srv, env=env)
    assert got.returncode == 0 and got.stderr == "", got.stderr
    assert (down / "sub dir/ünï.txt").read_bytes() == b"unicode"
    assert (down / "empty").is_dir()
    assert os.stat(down / "a.txt").st_mtime == pytest.approx(
        os.stat(source / "a.txt").st_mtime, abs=1e-5)


def test_several_files_at_once_both_ways(srv, env, tmp_path):
    files = []
    for index in range(3):
        path = tmp_path / f"f{index}.txt"
        path.write_bytes(b"x" * index)
        files.append(str(path))
    put = ftclient("-q", "put", *files, "inbox/", server=srv, env=env)
    assert put.returncode == 0, put.stderr
    assert sorted(os.listdir(srv.root / "inbox")) == ["f0.txt", "f1.txt", "f2.txt"]

    out = tmp_path / "out"
    out.mkdir()
    got = ftclient("-q", "get", "inbox/f1.txt", "inbox/f2.txt", str(out), server=srv, env=env)
    assert got.returncode == 0, got.stderr
    assert sorted(os.listdir(out)) == ["f1.txt", "f2.txt"]

    partly = ftclient("-q", "get", "inbox/f0.txt", "inbox/missing.txt", str(out),
                      server=srv, env=env)
    assert one_error_line(partly) == "ftclient: " + str(out / "missing.txt") + \
        ": 'inbox/missing.txt': not found"
    assert (out / "f0.txt").exists()


def test_mkdir_mv_rm_and_their_errors(srv, env):
    def run(*args: str):
        return ftclient(*args, server=srv, env=env)

    assert run("mkdir", "-p", "a/b").returncode == 0
    assert one_error_line(run("mkdir", "a")) == "ftclient: 'a' already exists"
    assert "does not exist" in one_error_line(run("mkdir", "x/y"))
    (srv.root / "a/b/doc.txt").write_bytes(b"doc")
    assert run("mv", "a/b/doc.txt", "a/").returncode == 0
    assert (srv.root / "a/doc.txt").read_bytes() == b"doc"
    (srv.root / "other.txt").write_bytes(b"other")
    assert "already exists" in one_error_line(run("mv", "other.txt", "a/doc.txt"))
    assert run("mv", "other.txt", "a/b").returncode == 0  # an existing folder receives it
    assert (srv.root / "a/b/other.txt").read_bytes() == b"other"
    assert "does not exist" in one_error_line(run("mv", "nope.txt", "b.txt"))
    assert "-r" in one_error_line(run("rm", "a"))
    assert "not found" in one_error_line(run("stat", "a/nope.txt"))
    assert run("rm", "-r", "a").returncode == 0
    assert not (srv.root / "a").exists()
    assert "does not exist" in one_error_line(run("rm", "a"))


def test_ls_l_shows_type_exact_size_time_and_name(srv, env):
    (srv.root / "folder").mkdir()
    (srv.root / "file name.txt").write_bytes(b"12345")
    os.utime(srv.root / "file name.txt", (1_700_000_000, 1_700_000_000))
    result = ftclient("ls", "-l", server=srv, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("- ") and lines[0].endswith("  file name.txt")
    assert " 5  " in lines[0]
    assert lines[1].startswith("d ") and lines[1].endswith("  folder/")
