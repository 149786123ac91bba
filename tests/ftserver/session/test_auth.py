"""Users: SCRAM-SHA-256 logins, access levels, home folders, and how failures are answered.

Real servers configured with verifiers from ``common.protocol.scram`` (4096 iterations,
so the tests stay quick), the real ``Client`` and ``python -m ftclient``, and a
wire tap that shows the password never crosses the network.
"""

from __future__ import annotations

import base64
import os
import pty
import select
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import AuthFailed, BadPath, FtError, PermissionDenied
from common.protocol.scram import ScramClient, make_verifier, parse_client_first, parse_verifier
from ftclient import Client
from tests.cliutil import one_error_line
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess
from tests.tap import WireTap

PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-2", "carol": "carol-pass-3"}


def users_config() -> dict:
    def verifier(name: str) -> str:
        return make_verifier(PASSWORDS[name], iterations=4096).to_text()

    return {
        "alice": {"password": verifier("alice"), "access": "rw"},
        "bob": {"password": verifier("bob"), "access": "ro"},
        "carol": {"password": verifier("carol"), "access": "rw", "home": "teams/sales"},
    }


def login(server: ServerProcess, user: str | None, password: str | None = None) -> Client:
    if user is not None and password is None:
        password = PASSWORDS[user]
    client = Client("127.0.0.1", server.port, timeout=15, busy_wait=5, user=user,
                    password=password)
    client.connect()
    return client


def test_passwd_prints_a_salted_verifier_and_never_the_password() -> None:
    outputs = []
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "ftserver", "passwd", "--stdin"],
                                input="s3cret pass\n", capture_output=True, text=True,
                                timeout=60, check=True)
        assert "s3cret" not in result.stdout + result.stderr
        outputs.append(result.stdout.strip())
    verifiers = [parse_verifier(text) for text in outputs]
    assert outputs[0].startswith("SCRAM-SHA-256$") and len(outputs[0].splitlines()) == 1
    assert verifiers[0].salt != verifiers[1].salt  # salted afresh each time


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_access_levels_and_home_folders(
        executor: str, start_server: Callable[..., ServerProcess], make_file, tmp_path: Path
) -> None:
    server = start_server(executor, users=users_config())
    assert server.wait_for_log(r"anonymous access: none")
    source = make_file("report.txt", 1000)

    with login(server, None) as anonymous, pytest.raises(PermissionDenied) as refused:
        anonymous.list("")
    assert "--user" in refused.value.message

    with login(server, "alice") as alice:
        assert alice.access == "rw"
        alice.put(source, "shared/")
        assert [e.name for e in alice.list("shared")] == ["report.txt"]

    with login(server, "bob") as bob:
        assert bob.access == "ro"
        assert [e.name for e in bob.list("shared")] == ["report.txt"]
        bob.get("shared/report.txt", tmp_path / "bob.txt")
        with pytest.raises(PermissionDenied):
            bob.put(source, "shared/bob-was-here.txt")
        before = os.stat(server.root / "shared" / "report.txt").st_mtime_ns
        for name in ("shared/report.txt", "shared"):
            with pytest.raises(PermissionDenied):
                bob.set_mtime(name, 1_000_000_000.0)
        assert os.stat(server.root / "shared" / "report.txt").st_mtime_ns == before
    assert (tmp_path / "bob.txt").read_bytes() == source.read_bytes()
    assert sorted(os.listdir(server.root / "shared")) == ["report.txt"]

    os.makedirs(server.root / "teams" / "sales")
    os.symlink(server.root / "shared", server.root / "teams" / "sales" / "to-shared")
    with login(server, "carol") as carol:
        carol.put(source, "mine.txt")
        assert [e.name for e in carol.list("")] == ["mine.txt"]  # the link leaves her home
        with pytest.raises(BadPath):
            carol.stat("to-shared/report.txt")
    assert (server.root / "teams" / "sales" / "mine.txt").read_bytes() == source.read_bytes()
    assert "Traceback" not in server.log


def test_anonymous_read_only(start_server: Callable[..., ServerProcess], make_file) -> None:
    server = start_server(anonymous="ro")
    assert server.wait_for_log(r"anonymous access: ro")
    (server.root / "notice.txt").write_bytes(b"read me")
    with login(server, None) as client:
        assert [e.name for e in client.list("")] == ["notice.txt"]
        with pytest.raises(PermissionDenied):
            client.put(make_file("x.txt", 10))
    assert sorted(os.listdir(server.root)) == ["notice.txt"]


def test_the_password_never_crosses_the_wire(start_server: Callable[..., ServerProcess],
                                             make_file) -> None:
    server = start_server(users=users_config())  # no TLS: the tap sees everything
    password = PASSWORDS["alice"].encode()
    with WireTap(server.port) as tap:
        client = Client("127.0.0.1", tap.port, timeout=15, user="alice",
                        password=PASSWORDS["alice"])
        with client:
            client.put(make_file("a.txt", 100))
    sent = bytes(tap.client_bytes)
    assert b"SCRAM-SHA-256" in sent and b"a.txt" in sent  # the tap did see the login
    for form in (password, base64.b64encode(password), password.hex().encode()):
        assert form not in sent and form not in tap.server_bytes


def failed_login(server: ServerProcess, user: str, password: str) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(AuthFailed) as refused:
        login(server, user, password).close()
    return refused.value.message, time.monotonic() - started


def test_unknown_user_and_wrong_password_look_alike(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), limits={"auth_failure_delay": 0.5})
    wrong_message, wrong_time = failed_login(server, "alice", "not-her-password")
    ghost_message, ghost_time = failed_login(server, "ghost", "whatever")
    assert wrong_message == ghost_message
    assert wrong_time >= 0.5 and ghost_time >= 0.5
    assert abs(wrong_time - ghost_time) < 0.4

    def challenge(user: str) -> dict[str, str]:
        with RawConnection(server.port) as raw:
            raw.hello()
            first = ScramClient(user, "x", nonce="abcdefghijklmnop").first()
            reply = raw.request({"op": "auth", "mechanism": "SCRAM-SHA-256", "message": first})
            parse_client_first(first)
            return dict(part.split("=", 1) for part in reply["message"].split(","))

    ghost, ghost_again, alice = challenge("ghost"), challenge("ghost"), challenge("alice")
    assert ghost["s"] == ghost_again["s"]  # a decoy salt that does not change between tries
    assert ghost["i"] == alice["i"] == "4096"
    assert len(base64.b64decode(ghost["s"])) == len(base64.b64decode(alice["s"]))


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_repeated_failures_from_one_address_are_slowed_down(
        executor: str, start_server: Callable[..., ServerProcess]) -> None:
    """Counted across worker processes too: each new connection may land on another worker."""
    server = start_server(executor, users=users_config(), limits={"auth_failure_delay": 0.1})
    times = [failed_login(server, "alice", f"guess-{n}")[1] for n in range(6)]
    assert times[-1] > 2 * min(times[:3]) + 0.2, times  # 0.1 s thrice, then 0.2, 0.4, 0.8
    with login(server, "alice") as client:  # the right password still gets in
        assert client.access == "rw"


def test_cli_logs_in_with_the_password_from_the_environment(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(users=users_config())
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    command = [sys.executable, "-m", "ftclient", "--server", f"127.0.0.1:{server.port}",
               "--user", "bob", "ls"]
    ok = subprocess.run(command, env={**env, "FTCLIENT_PASSWORD": PASSWORDS["bob"]},
                        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    no_password = subprocess.run(command, env=env, stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=60)
    assert "FTCLIENT_PASSWORD" in one_error_line(no_password)
    wrong = subprocess.run(command, env={**env, "FTCLIENT_PASSWORD": "nope"},
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert "login failed" in one_error_line(wrong)


def test_hostile_login_messages_cost_nothing_but_an_error(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), limits={"auth_failure_delay": 0.1})
    with RawConnection(server.port) as raw:
        raw.hello()
        for request in (
            {"op": "auth", "mechanism": "PLAIN", "message": "n,,n=alice,r=abcdefgh"},
            {"op": "auth", "mechanism": "SCRAM-SHA-256", "message": "n,,n=alice"},
            {"op": "auth", "mechanism": "SCRAM-SHA-256", "message": "p=tls-unique,,n=a,r=x"},
            {"op": "auth", "mechanism": "SCRAM-SHA-256", "message": "n,,n=a,r=" + "x" * 2000},
            {"op": "auth", "mechanism": "SCRAM-SHA-256", "message": 7},
            {"op": "auth_final", "message": "c=biws,r=abc,p=AAAA"},
        ):
            assert raw.error_code(request) == "bad_request"
        first = "n,,n=alice,r=abcdefghijkl"
        assert raw.request({"op": "auth", "mechanism": "SCRAM-SHA-256",
                            "message": first})["ok"] is True
        assert raw.error_code({"op": "auth_final", "message": "c=biws,r=nope,p=!!"}) \
            == "bad_request"
        assert raw.error_code({"op": "list", "path": ""}) == "permission"  # still anonymous
    with login(server, "alice") as client:
        assert client.access == "rw"
    assert "Traceback" not in server.log


def test_a_home_that_cannot_be_a_folder_refuses_the_login_cleanly(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), anonymous="ro")
    (server.root / "teams").write_bytes(b"a file where carol's home should start")
    with pytest.raises(FtError) as refused:
        login(server, "carol")
    assert refused.value.code == "not_a_directory"
    with login(server, None) as anonymous:  # the server carries on, rights unchanged
        assert [e.name for e in anonymous.list("")] == ["teams"]
    assert "Traceback" not in server.log


def test_cli_prompts_for_the_password_on_a_terminal_without_echoing_it(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(users=users_config())
    (server.root / "seen.txt").write_bytes(b"x")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    argv = [sys.executable, "-m", "ftclient", "--server", f"127.0.0.1:{server.port}",
            "--user", "bob", "ls"]
    pid, terminal = pty.fork()  # the child gets a real controlling terminal, as a user has
    if pid == 0:  # pragma: no cover - the child only execs
        os.execve(sys.executable, argv, env)
    output = bytearray()
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(terminal, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            output.extend(data)
            if not answered and b"Password for bob@" in output:
                os.write(terminal, PASSWORDS["bob"].encode() + b"\n")
                answered = True
    finally:
        os.close(terminal)
        _, status = os.waitpid(pid, 0)
    assert answered, bytes(output)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(output)
    assert b"seen.txt" in output
    assert PASSWORDS["bob"].encode() not in output  # not echoed
