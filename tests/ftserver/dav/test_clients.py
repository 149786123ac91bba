"""The share as a drive for real WebDAV clients: rclone's webdav backend and cadaver.

rclone copies a nested tree up and back, ``rclone check --download`` compares every
byte, and a second copy after one file changed sends that file only (rclone's
ownCloud flavour, which keeps each file's mtime with ``X-OC-Mtime``). cadaver runs
a scripted session: mkcol, put, move, lock, unlock, get. Every client runs as a
process with its own empty configuration, against 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ftserver.session.test_auth import PASSWORDS, users_config
from tests.serverproc import ServerProcess

TIMEOUT = 60


def rclone(server: ServerProcess, tmp_path: Path, *args: str, login: str = ""
           ) -> subprocess.CompletedProcess[str]:
    """rclone with the share as remote ``ft:``; with ``login``, over HTTPS as that user."""
    if shutil.which("rclone") is None:
        pytest.fail("rclone is not installed (apt-get install rclone): .ci/run installs it")
    config = tmp_path / "rclone.conf"
    config.touch()
    scheme = "https" if login else "http"
    env = {**os.environ, "RCLONE_CONFIG": str(config), "RCLONE_CONFIG_FT_TYPE": "webdav",
           "RCLONE_CONFIG_FT_URL": f"{scheme}://127.0.0.1:{server.port}/",
           "RCLONE_CONFIG_FT_VENDOR": "owncloud", "RCLONE_CACHE_DIR": str(tmp_path / "cache")}
    if login:
        obscured = subprocess.run(["rclone", "obscure", PASSWORDS[login]], capture_output=True,
                                  text=True, timeout=TIMEOUT, env=env).stdout.strip()
        env.update(RCLONE_CONFIG_FT_USER=login, RCLONE_CONFIG_FT_PASS=obscured,
                   RCLONE_NO_CHECK_CERTIFICATE="true")
    return subprocess.run(["rclone", "--low-level-retries", "1", "--retries", "1", *args],
                          capture_output=True, text=True, env=env, timeout=TIMEOUT)


def make_tree(root: Path) -> dict[str, bytes]:
    chance = random.Random(7)
    files = {"top.txt": b"minutes of the meeting\n", "a/one.bin": chance.randbytes(300_000),
             "a/b/two.bin": chance.randbytes(70_000), "a/b/c/three.txt": b"x" * 5000,
             "empty.txt": b"", "d/caf\u00e9 menu.txt": "caf\u00e9\n".encode()}
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def transfers(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The names rclone says it copied, from its JSON log."""
    names = []
    for line in result.stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if str(entry.get("msg", "")).startswith("Copied"):
            names.append(entry["object"])
    return sorted(names)


def test_rclone_copies_a_tree_up_and_back_and_a_rerun_sends_only_what_changed(
        server: ServerProcess, tmp_path: Path) -> None:
    source = tmp_path / "source"
    files = make_tree(source)
    up = rclone(server, tmp_path, "copy", "-v", "--use-json-log", str(source), "ft:tree")
    assert up.returncode == 0, up.stderr
    assert transfers(up) == sorted(files)
    for name, data in files.items():
        assert (server.root / "tree" / name).read_bytes() == data
    check = rclone(server, tmp_path, "check", "--download", str(source), "ft:tree")
    assert check.returncode == 0, check.stderr
    assert "0 differences found" in check.stderr
    back = tmp_path / "back"
    down = rclone(server, tmp_path, "copy", "ft:tree",
                  str(back))
    assert down.returncode == 0, down.stderr
    assert {str(p.relative_to(back)): p.read_bytes() for p in back.rglob("*")
            if p.is_file()} == files

    (source / "a" / "b" / "two.bin").write_bytes(b"a new version\n")
    again = rclone(server, tmp_path, "copy", "-v", "--use-json-log", str(source), "ft:tree")
    assert again.returncode == 0, again.stderr
    assert transfers(again) == ["a/b/two.bin"]  # the others were left alone
    assert (server.root / "tree" / "a" / "b" / "two.bin").read_bytes() == b"a new version\n"
    unchanged = rclone(server, tmp_path, "copy", "-v", "--use-json-log", str(source), "ft:tree")
    assert transfers(unchanged) == []


def test_over_https_users_mount_what_their_access_allows(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(tls={"enabled": True}, users=users_config())
    source = tmp_path / "source"
    files = make_tree(source)
    alice = rclone(server, tmp_path, "copy", str(source), "ft:alice", login="alice")  # rw
    assert alice.returncode == 0, alice.stderr
    assert (server.root / "alice" / "a" / "one.bin").read_bytes() == files["a/one.bin"]
    bob = rclone(server, tmp_path, "copy", str(source), "ft:bob", login="bob")  # ro
    assert bob.returncode != 0 and "403" in bob.stderr
    assert not (server.root / "bob").exists()
    listed = rclone(server, tmp_path, "lsf", "-R", "ft:", login="bob")
    assert listed.returncode == 0 and "alice/a/one.bin" in listed.stdout.splitlines()
    carol = rclone(server, tmp_path, "copy", str(source / "top.txt"), "ft:", login="carol")
    assert carol.returncode == 0, carol.stderr
    assert (server.root / "teams" / "sales" / "top.txt").exists()  # her home is her top
    assert "teams" not in rclone(server, tmp_path, "lsf", "ft:", login="carol").stdout


CADAVER_SCRIPT = """\
mkcol docs
put note.txt docs/note.txt
move docs/note.txt docs/renamed.txt
lock docs/renamed.txt
discover docs/renamed.txt
unlock docs/renamed.txt
get docs/renamed.txt back.txt
ls docs
quit
"""


def test_cadaver_runs_a_scripted_session(server: ServerProcess, tmp_path: Path) -> None:
    if shutil.which("cadaver") is None:
        pytest.fail("cadaver is not installed (apt-get install cadaver): .ci/run installs it")
    (tmp_path / "note.txt").write_bytes(b"hello from cadaver\n")
    done = subprocess.run(["cadaver", f"http://127.0.0.1:{server.port}/"],
                          input=CADAVER_SCRIPT, capture_output=True, text=True, cwd=tmp_path,
                          timeout=TIMEOUT, env={**os.environ, "HOME": str(tmp_path)})
    out = done.stdout
    assert out.count("succeeded") >= 7, out
    assert "failed" not in out, out
    assert "Lock token <opaquelocktoken:" in out and "Scope: exclusive" in out, out
    assert (tmp_path / "back.txt").read_bytes() == b"hello from cadaver\n"
    assert (server.root / "docs" / "renamed.txt").read_bytes() == b"hello from cadaver\n"
    assert not (server.root / "docs" / "note.txt").exists()
    assert "renamed.txt" in out.rsplit("ls docs", 1)[1]
