"""Users over HTTP: Basic over HTTPS against the SCRAM verifiers, never a password in clear.

Over plain HTTP no password is asked for (no ``WWW-Authenticate: Basic``) or taken,
and exactly what ``anonymous`` allows is served. Over HTTPS, ``ro`` users read, ``rw``
users also write, ``home`` confines, and failed logins are slowed as in ft.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ftserver.http.httptools import curl_head, curl_status
from tests.ftserver.session.test_auth import PASSWORDS, users_config
from tests.serverproc import ServerProcess

DELAY = 0.5


@pytest.fixture
def secure(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = start_server(tls={"enabled": True}, users=users_config(),
                          limits={"auth_failure_delay": DELAY})
    (server.root / "teams" / "sales").mkdir(parents=True)
    (server.root / "teams" / "sales" / "q3.txt").write_bytes(b"sales figures\n")
    (server.root / "top.txt").write_bytes(b"top secret\n")
    return server


def https(server: ServerProcess, path: str) -> str:
    return f"https://127.0.0.1:{server.port}{path}"


def test_a_login_over_https_reads_and_a_rw_user_writes(secure: ServerProcess,
                                                       tmp_path: Path) -> None:
    status, body = curl_status("-k", "-u", f"alice:{PASSWORDS['alice']}", https(secure, "/top.txt"))
    assert status == 200 and body == b"top secret\n"
    assert secure.wait_for_log("user=alice method=GET path='top.txt' status=200")
    source = tmp_path / "new.txt"
    source.write_bytes(b"new\n")
    status, _ = curl_status("-k", "-u", f"alice:{PASSWORDS['alice']}", "-T", str(source),
                            https(secure, "/new.txt"))
    assert status == 201 and (secure.root / "new.txt").read_bytes() == b"new\n"
    status, _ = curl_status("-k", "-u", f"bob:{PASSWORDS['bob']}", "-T", str(source),
                            https(secure, "/bob.txt"))
    assert status == 403 and not (secure.root / "bob.txt").exists()  # ro
    status, body = curl_status("-k", "-u", f"carol:{PASSWORDS['carol']}", https(secure, "/q3.txt"))
    assert status == 200 and body == b"sales figures\n"  # her home is her top
    status, _ = curl_status("-k", "-u", f"carol:{PASSWORDS['carol']}", https(secure, "/top.txt"))
    assert status == 404


def test_without_a_login_https_asks_for_one(secure: ServerProcess) -> None:
    head = curl_head("-k", https(secure, "/top.txt"))
    assert head[":status"] == "401"
    assert head["www-authenticate"].startswith("Basic")


def test_a_wrong_password_is_refused_after_the_throttles_delay(secure: ServerProcess) -> None:
    started = time.monotonic()
    status, _ = curl_status("-k", "-u", "alice:wrong", https(secure, "/top.txt"))
    assert status == 401 and time.monotonic() - started >= DELAY
    started = time.monotonic()
    status, _ = curl_status("-k", "-u", "nobody:wrong", https(secure, "/top.txt"))
    assert status == 401 and time.monotonic() - started >= DELAY  # unknown: the same
    assert secure.wait_for_log("failed HTTP login as 'nobody'")


def test_plain_http_never_asks_for_or_takes_a_password(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), anonymous="ro")
    (server.root / "open.txt").write_bytes(b"for everyone\n")
    head = curl_head(f"http://127.0.0.1:{server.port}/open.txt")
    assert head[":status"] == "200" and "www-authenticate" not in head
    status, body = curl_status("-u", f"alice:{PASSWORDS['alice']}",
                               f"http://127.0.0.1:{server.port}/open.txt")
    assert status == 403 and b"use https://" in body
    status, _ = curl_status("-X", "PUT", "--data-binary", "x",
                            f"http://127.0.0.1:{server.port}/x.txt")
    assert status == 403
    head = curl_head("-X", "PUT", "--data-binary", "x", f"http://127.0.0.1:{server.port}/x.txt")
    assert "www-authenticate" not in head
    assert not server.wait_for_log("logged in over HTTPS", timeout=0.5)


def test_plain_http_without_anonymous_access_says_to_use_https(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config())  # anonymous: none
    status, body = curl_status(f"http://127.0.0.1:{server.port}/")
    assert status == 403 and b"use https://" in body
