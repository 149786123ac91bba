"""Pinned servers from the command line: TLS remembered after pinning, and ``forget``.

Once ``--tls --accept-new`` pinned a server, later commands to it use TLS without
``--tls``. ``ftclient forget HOST:PORT`` removes the pin (only that one), after which
the server is unknown again: a plaintext command to it is refused by the TLS server,
and a replaced certificate can be pinned anew.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient", "--retries", "0"]


def ftclient(port: int, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT")}
    env["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run([*CLIENT, "--server", f"127.0.0.1:{port}", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_pinned_server_needs_no_tls_flag_until_it_is_forgotten(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(tls={"enabled": True})
    (server.root / "secret.txt").write_bytes(b"over TLS")
    home = tmp_path / "home"
    plain = ftclient(server.port, "ls", home=home)
    assert plain.returncode != 0 and "--tls" in plain.stderr  # not pinned: plaintext, refused
    first = ftclient(server.port, "--tls", "--accept-new", "ls", home=home)
    assert first.returncode == 0 and "secret.txt" in first.stdout, first.stderr
    known = home / "ftclient" / "known_servers"
    key = f"127.0.0.1:{server.port}"
    other = "10.9.8.7:9021 " + "ab" * 32 + "\n"
    known.write_text(known.read_text() + other)
    again = ftclient(server.port, "ls", home=home)  # no --tls: remembered by the pin
    assert again.returncode == 0 and "secret.txt" in again.stdout, again.stderr

    forgot = ftclient(server.port, "forget", key, home=home)
    assert forgot.returncode == 0 and f"forgot {key}" in forgot.stderr, forgot.stderr
    assert known.read_text() == other  # only that server's line went
    assert (known.stat().st_mode & 0o777) == 0o600
    after = ftclient(server.port, "ls", home=home)
    assert after.returncode != 0 and "--tls" in after.stderr
    unknown = ftclient(server.port, "--tls", "ls", home=home)
    assert unknown.returncode != 0 and "not a known server" in unknown.stderr
    twice = ftclient(server.port, "forget", key, home=home)
    assert twice.returncode == 1 and "has no pinned certificate" in twice.stderr
    assert "Traceback" not in twice.stderr + after.stderr + unknown.stderr


def test_a_fingerprint_given_by_hand_goes_on_but_replaces_a_pin_only_when_asked(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(tls={"enabled": True})
    home = tmp_path / "home"
    first = ftclient(server.port, "--tls", "--accept-new", "ls", home=home)
    assert first.returncode == 0, first.stderr
    known = home / "ftclient" / "known_servers"
    key, real = known.read_text().split()
    old = "cd" * 32  # as if the server had another certificate when it was pinned
    known.write_text(f"{key} {old}\n")
    refused = ftclient(server.port, "ls", home=home)
    assert refused.returncode != 0 and "CHANGED" in refused.stderr
    checked = ftclient(server.port, "--fingerprint", real, "ls", home=home)
    assert checked.returncode == 0, checked.stderr  # checked by hand: this run goes on
    assert known.read_text() == f"{key} {old}\n"  # the pin stays until the user asks
    assert ftclient(server.port, "forget", key, home=home).returncode == 0
    repinned = ftclient(server.port, "--fingerprint", real, "ls", home=home)
    assert repinned.returncode == 0 and known.read_text() == f"{key} {real}\n"
