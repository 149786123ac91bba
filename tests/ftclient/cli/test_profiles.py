"""Client settings from ``$XDG_CONFIG_HOME/ftclient/config.yaml`` and ``FTCLIENT_*``.

Most checks parse arguments in-process with the real parser and an explicit
environment (XDG_CONFIG_HOME in tmp_path); a few run ``ftclient`` end to end
against a real server on 127.0.0.1 to show the settings reach the connection.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ftclient.cli.main import build_parser
from ftclient.cli.profiles import ProfileError, apply_settings
from tests.cliutil import one_error_line
from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient"]
EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "ftclient.yaml"


def write_settings(tmp_path: Path, text: str) -> dict[str, str]:
    """Write config.yaml under tmp_path/xdg and return an environment that points at it."""
    folder = tmp_path / "xdg" / "ftclient"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(text)
    return {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}


def parse(argv: list[str], environ: dict[str, str],
          parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    parser = parser or build_parser()
    apply_settings(parser, argv, environ)
    return parser.parse_args(argv)


SETTINGS = """\
server: top.example:9021
timeout: 30
profiles:
  office:
    server: office.example
    limit-rate: 2M
  backup:
    server: backup.example:9100
    limit_rate: 512K
    timeout: 5
"""


def test_precedence_flag_env_profile_file_default(tmp_path: Path) -> None:
    environ = write_settings(tmp_path, SETTINGS)
    assert parse(["ls"], {}).server is None  # built-in default (localhost in run())
    assert parse(["ls"], {}).timeout == 60.0
    top = parse(["ls"], environ)
    assert (top.server, top.timeout, top.limit_rate) == ("top.example:9021", 30.0, 0)
    office = parse(["--profile", "office", "ls"], environ)
    assert (office.server, office.timeout, office.limit_rate) == (
        "office.example", 30.0, 2 * 1024 * 1024)
    with_env = parse(["--profile", "office", "ls"], {**environ, "FTCLIENT_SERVER": "env.example"})
    assert with_env.server == "env.example"
    flag = parse(["--server", "flag.example", "--profile", "office", "ls"],
                 {**environ, "FTCLIENT_SERVER": "env.example"})
    assert flag.server == "flag.example"


def test_profile_from_the_environment(tmp_path: Path) -> None:
    environ = {**write_settings(tmp_path, SETTINGS), "FTCLIENT_PROFILE": "backup"}
    args = parse(["get", "x"], environ)
    assert (args.server, args.timeout, args.limit_rate) == ("backup.example:9100", 5.0, 524288)
    assert parse(["--profile", "office", "ls"], environ).server == "office.example"


def test_every_option_reads_its_environment_variable(tmp_path: Path) -> None:
    args = parse(["ls"], {"XDG_CONFIG_HOME": str(tmp_path), "FTCLIENT_TIMEOUT": "7",
                          "FTCLIENT_LIMIT_RATE": "1M", "FTCLIENT_JSON": "yes",
                          "FTCLIENT_QUIET": "1"})
    assert (args.timeout, args.limit_rate, args.json, args.quiet) == (7.0, 1024 * 1024, True,
                                                                       True)
    assert parse(["-q", "ls"], {"XDG_CONFIG_HOME": str(tmp_path),
                                "FTCLIENT_QUIET": "no"}).quiet is True


def test_options_added_later_work_in_profiles(tmp_path: Path) -> None:
    """Keys map onto whatever long options the parser has: --tls, --user, --retries..."""
    environ = write_settings(tmp_path, "profiles:\n  secure: {tls: true, user: anna, "
                                       "retries: 5, accept-new: true}\n")
    args = parse(["--profile", "secure", "ls"], environ)
    assert (args.tls, args.user, args.retries, args.accept_new) == (True, "anna", 5, True)


def test_subcommand_options_in_a_profile(tmp_path: Path) -> None:
    environ = write_settings(tmp_path, "json: true\n")
    assert parse(["ls"], environ).json is True
    assert parse(["discover"], environ).json is True
    assert parse(["--timeout", "3", "discover"], environ).wait == 2.0  # discover's own --timeout


@pytest.mark.parametrize(("text", "needles"), [
    ("colour: red\n", ["unknown setting 'colour'", "config.yaml"]),
    ("profiles: {office: {colour: red}}\n", ["profile 'office'", "'colour'"]),
    ("help: true\n", ["unknown setting 'help'"]),
    ("profile: office\n", ["unknown setting 'profile'"]),
    ("timeout: -1\n", ["'timeout'", "above 0"]),
    ("timeout: [1, 2]\n", ["'timeout'", "single value"]),
    ("quiet: maybe\n", ["'quiet'", "true or false"]),
    ("limit-rate: fast\n", ["'limit-rate'", "10M"]),
    ("server: [a: b\n", ["not valid YAML"]),
    ("- just\n- a list\n", ["mapping"]),
    ("profiles: [office]\n", ["'profiles' must be a mapping"]),
    ("profiles: {office: 5}\n", ["profile 'office' must be a mapping"]),
])
def test_bad_settings_are_named(tmp_path: Path, text: str, needles: list[str]) -> None:
    environ = write_settings(tmp_path, text)
    with pytest.raises(ProfileError) as caught:
        parse(["--profile", "office", "ls"] if "profiles" in text else ["ls"], environ)
    message = str(caught.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_missing_profile_and_missing_file(tmp_path: Path) -> None:
    environ = write_settings(tmp_path, SETTINGS)
    with pytest.raises(ProfileError, match=r"no profile 'home' \(profiles: backup, office\)"):
        parse(["--profile", "home", "ls"], environ)
    with pytest.raises(ProfileError, match="does not exist"):
        parse(["--profile", "office", "ls"], {"XDG_CONFIG_HOME": str(tmp_path / "empty")})
    assert parse(["ls"], {"XDG_CONFIG_HOME": str(tmp_path / "empty")}).server is None


def test_bad_environment_value_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="FTCLIENT_TIMEOUT"):
        parse(["ls"], {"XDG_CONFIG_HOME": str(tmp_path), "FTCLIENT_TIMEOUT": "soon"})
    with pytest.raises(ProfileError, match="FTCLIENT_JSON"):
        parse(["ls"], {"XDG_CONFIG_HOME": str(tmp_path), "FTCLIENT_JSON": "perhaps"})


def test_the_shipped_example_is_valid(tmp_path: Path) -> None:
    environ = write_settings(tmp_path, EXAMPLE.read_text())
    parse(["ls"], environ)
    for name in ("office", "backup"):
        assert parse(["--profile", name, "ls"], environ).server


def run_client(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT_")}
    return subprocess.run(CLIENT + args, env={**env, **environ}, capture_output=True, text=True,
                          timeout=60)


def test_profile_reaches_the_server(tmp_path: Path,
                                    start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    (server.root / "hello.txt").write_text("hi")
    environ = write_settings(tmp_path, f"server: 127.0.0.1:1\nprofiles:\n  office:\n"
                                       f"    server: 127.0.0.1:{server.port}\n")
    listed = run_client(["--profile", "office", "ls"], environ)
    assert listed.returncode == 0, listed.stderr
    assert "hello.txt" in listed.stdout
    # the top level names a port nobody listens on (--retries 0: one line, at once)
    refused = run_client(["--retries", "0", "ls"], environ)
    assert "127.0.0.1:1" in one_error_line(refused, 1)


def test_abbreviated_profile_flag_is_refused(tmp_path: Path) -> None:
    environ = write_settings(tmp_path, SETTINGS)
    line = one_error_line(run_client(["--prof", "office", "ls"], environ), 2)
    assert "--profile in full" in line


def test_malformed_file_is_one_line_exit_2(tmp_path: Path) -> None:
    environ = write_settings(tmp_path, "server: [unclosed\n")
    line = one_error_line(run_client(["ls"], environ), 2)
    assert "config.yaml" in line and "not valid YAML" in line
    environ = write_settings(tmp_path, "speed: 9\n")
    line = one_error_line(run_client(["ls"], environ), 2)
    assert "unknown setting 'speed'" in line
