"""A cut-off upload belongs to whoever sent it, for the file they announced (issue 18, #1).

The attack: Alice's upload of a new version is cut; her complete old version is
published. Mallory, who may write the same name, announces a ``put`` whose size is
what the server holds, sends no byte and a ``put_end`` carrying the prefix digest
the server offered: before, that published Alice's half-sent bytes over her whole
old file. Now a partial is resumed only by the same user, for the same announced
size and mtime (and SHA-256 where one was sent); anyone else starts their own and
is never told the other exists. Real servers, raw sockets acting as Mallory, and
two accounts.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.scram import ScramClient, make_verifier
from ftclient import Client
from tests.proxy import cutting_proxy
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

MiB = 1 << 20
PASSWORDS = {"alice": "alice-pass-1", "mallory": "mallory-pass-2"}


def two_accounts() -> dict:
    return {name: {"password": make_verifier(password, iterations=4096).to_text(),
                   "access": "rw"} for name, password in PASSWORDS.items()}


def raw_login(raw: RawConnection, user: str) -> None:
    scram = ScramClient(user, PASSWORDS[user])
    first = raw.request({"op": "auth", "mechanism": "SCRAM-SHA-256", "message": scram.first()})
    assert first["ok"] is True, first
    final = raw.request({"op": "auth_final", "message": scram.final(first["message"])})
    assert final["ok"] is True, final


def cut_upload_of_new_version(server: ServerProcess, source: Path, user: str | None,
                              cut: int) -> None:
    """``user`` uploads ``source`` as report.bin through a link that dies after ``cut``."""
    password = PASSWORDS[user] if user else None
    with cutting_proxy(server.port, cut_after=cut, direction="c2s") as proxy:
        client = Client("127.0.0.1", proxy.port, timeout=15, retries=0, user=user,
                        password=password)
        with client, pytest.raises(Exception):  # noqa: B017 - the cut, whatever it is called
            client.put(source, "report.bin")


def try_to_publish_what_the_server_holds(raw: RawConnection, size: int) -> dict:
    """Mallory's move: claim the held bytes are the whole file, with the digest offered
    (when the server offers anything: otherwise there is nothing to take)."""
    ready = raw.request({"op": "put", "path": "report.bin", "size": size, "mtime": 1.0})
    assert ready["ok"] is True, ready
    offered = ready["offset"]
    reply = None
    if offered == size:
        raw.send({"op": "put_data", "offset": offered})
        reply = raw.request({"op": "put_end", "sha256": ready["prefix_sha256"]})
    return {"offered": offered, "prefix": ready.get("prefix_sha256"), "reply": reply}


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_another_user_can_neither_see_nor_publish_a_cut_upload(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor, users=two_accounts())
    old = os.urandom(3 * MiB)
    (server.root / "report.bin").write_bytes(old)  # Alice's complete old version
    new = tmp_path / "report.bin"
    new.write_bytes(os.urandom(6 * MiB))
    cut_upload_of_new_version(server, new, "alice", 3 * MiB)
    held = max(p.stat().st_size for p in server.partials.glob("*.part"))
    assert held > MiB

    with RawConnection(server.port) as raw:
        raw.hello()
        raw_login(raw, "mallory")
        attempt = try_to_publish_what_the_server_holds(raw, held)
    assert attempt["offered"] == 0 and attempt["prefix"] is None  # told nothing
    assert (server.root / "report.bin").read_bytes() == old  # her old version, whole

    # Mallory announcing Alice's very size and mtime is still not Alice.
    with RawConnection(server.port) as raw:
        raw.hello()
        raw_login(raw, "mallory")
        ready = raw.request({"op": "put", "path": "report.bin", "size": 6 * MiB,
                             "mtime": new.stat().st_mtime})
    assert ready["ok"] is True and ready["offset"] == 0 and "prefix_sha256" not in ready

    with Client("127.0.0.1", server.port, user="alice", password=PASSWORDS["alice"]) as alice:
        result = alice.put(new, "report.bin")
    assert result.resumed_from == held  # and she resumes exactly where she was cut
    assert (server.root / "report.bin").read_bytes() == new.read_bytes()


def test_without_users_only_the_same_announced_file_resumes(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    """Anonymous writers are all one user: the announced file is what tells them apart."""
    server = start_server()
    old = os.urandom(2 * MiB)
    (server.root / "report.bin").write_bytes(old)
    new = tmp_path / "report.bin"
    new.write_bytes(os.urandom(6 * MiB))
    cut_upload_of_new_version(server, new, None, 3 * MiB)
    held = max(p.stat().st_size for p in server.partials.glob("*.part"))

    with RawConnection(server.port) as raw:
        raw.hello()
        attempt = try_to_publish_what_the_server_holds(raw, held)
    assert attempt["offered"] == 0 and attempt["prefix"] is None
    with RawConnection(server.port) as raw:  # the same size with a guessed mtime: nothing
        raw.hello()
        guess = raw.request({"op": "put", "path": "report.bin", "size": 6 * MiB, "mtime": 2.0})
    assert guess["ok"] is True and guess["offset"] == 0
    assert (server.root / "report.bin").read_bytes() == old

    with Client("127.0.0.1", server.port) as client:
        assert client.put(new, "report.bin").resumed_from == held


def test_a_different_announced_sha256_starts_over(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    data = os.urandom(2 * MiB)
    digest = hashlib.sha256(data).hexdigest()
    with RawConnection(server.port) as raw:
        raw.hello()
        ready = raw.request({"op": "put", "path": "x.bin", "size": len(data), "mtime": 5.0,
                             "sha256": digest})
        assert ready["offset"] == 0
        raw.send({"op": "put_data", "offset": 0})
        raw.send_bytes(data[:MiB])
    other = "ab" * 32
    with RawConnection(server.port) as raw:
        raw.hello()
        for _ in range(200):  # until the cut session has let go of the name
            ready = raw.request({"op": "put", "path": "x.bin", "size": len(data), "mtime": 5.0,
                                 "sha256": other})
            if ready["ok"] or ready["error"]["code"] != "locked":
                break
        assert ready["ok"] is True and ready["offset"] == 0  # another file: no resume
    with RawConnection(server.port) as raw:
        raw.hello()
        ready = raw.request({"op": "put", "path": "x.bin", "size": len(data), "mtime": 5.0})
        assert ready["offset"] == 0  # and the other file's partial was emptied, not kept
