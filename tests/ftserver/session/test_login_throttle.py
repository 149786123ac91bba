"""The login throttle as an attacker meets it (issue 18, item 4): real servers, real SCRAM logins.

Failures are counted per address and per target user. A success forgets only its
own address's failures for its own user, so logging in with an account of one's
own between guesses no longer resets the delay; guessing one user's password from
many loopback addresses is slowed down too; malformed proofs count; and the decoy
of an unknown name looks like some user's real verifier.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from common.protocol.scram import ScramClient, make_verifier
from tests.ftserver.session.test_auth import PASSWORDS, failed_login, login, users_config
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

BASE = 0.1
"""auth_failure_delay for these servers: three failures at 0.1 s, then 0.2, 0.4, 0.8..."""


def raw_guess(server: ServerProcess, user: str, password: str, source: str) -> float:
    """One full SCRAM login with a wrong password from loopback address ``source``: its time."""
    started = time.monotonic()
    with RawConnection(server.port, timeout=40, source=source) as raw:
        raw.hello()
        scram = ScramClient(user, password)
        challenge = raw.request({"op": "auth", "mechanism": "SCRAM-SHA-256",
                                 "message": scram.first()})
        assert challenge["ok"] is True, challenge
        code = raw.error_code({"op": "auth_final", "message": scram.final(challenge["message"])})
    assert code == "auth_failed"
    return time.monotonic() - started


def test_an_own_login_between_guesses_does_not_reset_the_delay(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), limits={"auth_failure_delay": BASE})
    times = []
    for n in range(6):
        times.append(failed_login(server, "alice", f"guess-{n}")[1])
        with login(server, "bob") as client:  # the attacker's own read-only account
            assert client.access == "ro"
    # 0.1 s thrice, then 0.2, 0.4, 0.8: bob's successes took back none of it. Before,
    # each success cleared the address, and every guess cost 0.1 s.
    assert times[-1] >= 8 * BASE, times
    assert times[-1] > 2 * min(times[:3]) + 0.2, times


def test_a_success_forgets_only_its_own_typing_errors(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), limits={"auth_failure_delay": BASE})
    for n in range(5):  # carol mistypes five times: her fifth answer waited 0.4 s
        failed_login(server, "carol", f"typo-{n}")
    with login(server, "carol"):
        pass
    _, after = failed_login(server, "carol", "typo-again")
    assert after < 4 * BASE, after  # her own failures were forgotten: back near 0.1 s


def test_guesses_at_one_user_from_many_addresses_are_slowed(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), limits={"auth_failure_delay": BASE})
    times = [raw_guess(server, "alice", f"guess-{n}", f"127.0.0.{10 + n}") for n in range(6)]
    assert times[-1] >= 8 * BASE, times  # each address is new, but alice's count is not
    # alice herself, from her own address, still logs in at once
    with login(server, "alice") as client:
        assert client.access == "rw"


def test_malformed_proofs_are_counted_logged_and_delayed(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config(), limits={"auth_failure_delay": BASE})
    for _ in range(4):
        with RawConnection(server.port, timeout=20) as raw:
            raw.hello()
            first = ScramClient("alice", "x").first()
            assert raw.request({"op": "auth", "mechanism": "SCRAM-SHA-256",
                                "message": first})["ok"] is True
            assert raw.error_code({"op": "auth_final", "message": "c=biws,r=nope,p=!!"}) \
                == "bad_request"
    assert server.wait_for_log(r"malformed auth_final .* as 'alice'"), server.log
    _, wrong = failed_login(server, "alice", "wrong")
    assert wrong >= 4 * BASE, wrong  # the fifth failure: 0.1 * 2**2
    assert "Traceback" not in server.log


def test_an_unknown_names_decoy_draws_its_iterations_from_the_users(
        start_server: Callable[..., ServerProcess]) -> None:
    users = users_config()
    users["bob"]["password"] = make_verifier(PASSWORDS["bob"], iterations=8192).to_text()
    server = start_server(users=users, limits={"auth_failure_delay": BASE})
    seen = set()
    for n in range(60):  # one connection per name: a challenge asks for its final
        with RawConnection(server.port) as raw:
            raw.hello()
            reply = raw.request({"op": "auth", "mechanism": "SCRAM-SHA-256",
                                 "message": ScramClient(f"ghost-{n}", "x").first()})
        seen.add(dict(part.split("=", 1) for part in reply["message"].split(","))["i"])
    # Both counts appear for unknown names (2 of 3 users at 4096, 1 at 8192): the odds that
    # 60 names all draw 4096 are (2/3)**60, about 3e-11. Before, every decoy said 4096.
    assert seen == {"4096", "8192"}, seen
    assert server.wait_for_log("different iteration counts"), server.log
    with login(server, "bob") as client:  # and the unusual one still logs in
        assert client.access == "ro"
