"""Log lines an admin can use: who did it, in key=value, and what was refused too (issue 17).

A real server with users: a transfer line names the user, a file operation is
logged as key=value (not a Python dict), and a failed or denied mkdir, mv or rm is
logged with its error code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import FtError
from tests.ftserver.session.test_auth import login, users_config
from tests.serverproc import ServerProcess


def test_lines_name_the_user_and_file_operations_are_key_value(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(users=users_config())
    source = tmp_path / "a.txt"
    source.write_bytes(b"hello")
    with login(server, "alice") as alice:
        alice.put(str(source), "a.txt")
        alice.mkdir("projects/2026", parents=True)
        alice.move("a.txt", "projects/a.txt")
    assert server.wait_for_log(r"op=put peer=127\.0\.0\.1:\d+ user=alice path='a\.txt' size=5 ")
    assert server.wait_for_log(r"op=mkdir peer=127\.0\.0\.1:\d+ user=alice "
                               r"path='projects/2026' parents=True result=ok")
    assert server.wait_for_log(r"op=move peer=\S+ user=alice src='a\.txt' "
                               r"dst='projects/a\.txt' result=ok")
    assert "{'op'" not in server.log
    # The login line carries the port that the transfer lines carry: they tie together.
    assert server.wait_for_log(r"127\.0\.0\.1:\d+: logged in as 'alice'")


def test_failed_and_denied_file_operations_are_logged(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(users=users_config())
    with login(server, "bob") as bob:  # read-only
        with pytest.raises(FtError):
            bob.mkdir("nope")
    with login(server, "alice") as alice, pytest.raises(FtError):
        alice.remove("missing.txt")
    assert server.wait_for_log(r"op=mkdir peer=\S+ user=bob path='nope' parents=False "
                               r"result=permission message=")
    assert server.wait_for_log(r"op=remove peer=\S+ user=alice path='missing\.txt' "
                               r"recursive=False result=not_found message=")
