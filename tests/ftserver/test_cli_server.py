"""End-to-end tests of the ``ftserver`` command line: config errors, start-up log, clean stop.

Each test runs ``python -m ftserver`` as a real process on 127.0.0.1 and stops it
by its process id. A bad config must end start-up with exit code 2 and exactly
one line naming the key; a good one logs what is shared, where and to whom, and
SIGTERM ends the server (and, in process mode, all of its workers) with exit 0.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.procinfo import children_of, is_gone
from tests.serverproc import LoggedServer

SERVER = [sys.executable, "-m", "ftserver"]
CLIENT = [sys.executable, "-m", "ftclient"]


# ---------------------------------------------------------------- helpers


def run_server_expecting_exit(args: list[str], cwd: Path | None = None,
                              timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    """Run ftserver that should stop on its own (bad config); kill it if it serves instead."""
    proc = subprocess.Popen(SERVER + args, cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"ftserver kept running instead of refusing its config:\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_config_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("ftserver: "), line
    for needle in needles:
        assert needle in line, line
    return line


class RunningServer(LoggedServer):
    """An ftserver started from the command line, with pytest-style failures."""

    def __init__(self, args: list[str], cwd: Path | None = None) -> None:
        super().__init__(args, cwd)
        self.launch()

    def wait_listening(self, timeout: float = 20.0) -> bool:
        if not super().wait_listening(timeout):
            self.kill()
            pytest.fail(f"ftserver did not report 'listening on':\n{self.log}")
        return True

    def stop(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; return (exit code, seconds it took). Fails (after SIGKILL) if it lingers."""
        started = time.monotonic()
        try:
            code = self.terminate(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"ftserver did not exit within {timeout} s of SIGTERM:\n{self.log}")
        return code, time.monotonic() - started


@pytest.fixture
def launch() -> Iterator[Any]:
    started: list[RunningServer] = []

    def start(args: list[str], cwd: Path | None = None) -> RunningServer:
        server = RunningServer(args, cwd)
        started.append(server)
        server.wait_listening()
        return server

    yield start
    for server in started:
        server.kill()


def ftclient_ls(port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLIENT + ["--server", f"127.0.0.1:{port}", "ls"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    root, state = tmp_path / "share", tmp_path / "state"
    root.mkdir()
    return root, state


def write_config(tmp_path: Path, dirs: tuple[Path, Path], **settings: Any) -> Path:
    root, state = dirs
    config = {"root": str(root), "state_dir": str(state), "host": "127.0.0.1", "port": 0,
              **settings}
    path = tmp_path / "ftserver.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


# ---------------------------------------------------------------- bad configuration: exit 2


@pytest.mark.parametrize(("settings", "key"), [
    ({"bogus_key": 1}, "bogus_key"),
    ({"workers": "many"}, "workers"),
    ({"workers": 0}, "workers"),
    ({"workers": 2.5}, "workers"),
    ({"port": True}, "port"),
    ({"port": "9021"}, "port"),
    ({"port": 70000}, "port"),
    ({"executor": "fork"}, "executor"),
    ({"host": 127}, "host"),
    ({"root": 5}, "root"),
    ({"limits": 5}, "limits"),
    ({"limits": {"bogus": 1}}, "limits.bogus"),
    ({"limits": {"idle_timeout": -1}}, "limits.idle_timeout"),
    ({"limits": {"max_per_address": "lots"}}, "limits.max_per_address"),
])
def test_bad_config_key(tmp_path: Path, dirs: tuple[Path, Path], settings: dict[str, Any],
                        key: str) -> None:
    config = write_config(tmp_path, dirs, **settings)
    assert_config_error(run_server_expecting_exit(["--config", str(config)]), key)


def test_root_that_does_not_exist(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    missing = tmp_path / "no-such-folder"
    config = write_config(tmp_path, dirs, root=str(missing))
    line = assert_config_error(run_server_expecting_exit(["--config", str(config)]), "root")
    assert "no-such-folder" in line
    assert not missing.exists()


def test_root_that_is_a_file(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    plain = tmp_path / "plain-file"
    plain.write_text("not a folder")
    config = write_config(tmp_path, dirs, root=str(plain))
    assert_config_error(run_server_expecting_exit(["--config", str(config)]), "root")


def test_root_override_that_does_not_exist(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    config = write_config(tmp_path, dirs)
    result = run_server_expecting_exit(["--config", str(config), "--root",
                                        str(tmp_path / "gone")])
    assert_config_error(result, "root")


def test_state_dir_inside_share_is_refused(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    root, _ = dirs
    config = write_config(tmp_path, dirs, state_dir=str(root / "state"))
    assert_config_error(run_server_expecting_exit(["--config", str(config)]), "state_dir")


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a sentence\n", "42\n"])
def test_yaml_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    config = tmp_path / "ftserver.yaml"
    config.write_text(text)
    line = assert_config_error(run_server_expecting_exit(["--config", str(config)]))
    assert "mapping" in line


def test_yaml_that_does_not_parse(tmp_path: Path) -> None:
    config = tmp_path / "ftserver.yaml"
    config.write_text("port: [1, 2\nworkers: {\n")
    line = assert_config_error(run_server_expecting_exit(["--config", str(config)]))
    assert "YAML" in line


def test_config_path_that_does_not_exist(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    line = assert_config_error(run_server_expecting_exit(["--config", str(missing)]))
    assert "missing.yaml" in line


@pytest.mark.parametrize("args", [["--port", "notaport"], ["--executor", "fork"],
                                  ["--workers", "many"], ["--no-such-flag"]])
def test_bad_command_line_is_a_usage_error(tmp_path: Path, dirs: tuple[Path, Path],
                                           args: list[str]) -> None:
    root, state = dirs
    result = run_server_expecting_exit(["--root", str(root), "--state-dir", str(state),
                                        "--host", "127.0.0.1", *args])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "usage:" in result.stderr


def test_port_already_in_use(tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    root, state = dirs
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_server_expecting_exit(["--root", str(root), "--state-dir", str(state),
                                            "--host", "127.0.0.1", "--port", str(port)])
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("ftserver: ") and str(port) in lines[-1], result.stderr


# ---------------------------------------------------------------- start, log, stop


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_start_from_flags_log_and_sigterm(launch: Any, dirs: tuple[Path, Path],
                                          executor: str) -> None:
    root, state = dirs
    (root / "shared.txt").write_text("hi")
    server = launch(["--root", str(root), "--port", "0", "--host", "127.0.0.1",
                     "--state-dir", str(state), "--executor", executor, "--workers", "2"])
    log = server.log
    assert f"listening on 127.0.0.1:{server.port}" in log
    assert server.port > 0
    assert str(root) in log, log  # what it serves
    assert executor in log
    assert "access" in log and "anyone" in log, log  # and to whom
    assert "Traceback" not in log

    listing = ftclient_ls(server.port)
    assert listing.returncode == 0, listing.stderr
    assert "shared.txt" in listing.stdout

    children = children_of(server.proc.pid)
    if executor == "process":
        assert children, "process executor runs no worker processes"
    code, seconds = server.stop(timeout=10)
    assert code == 0, server.log
    assert seconds < 8, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in server.log
    deadline = time.monotonic() + 5
    while not all(is_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(is_gone(pid) for pid in children), f"workers left running: {children}"


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_sigterm_with_an_idle_client_connected(launch: Any, dirs: tuple[Path, Path],
                                               executor: str) -> None:
    """A connected but silent client must not keep the server from stopping promptly."""
    root, state = dirs
    server = launch(["--root", str(root), "--port", "0", "--host", "127.0.0.1",
                     "--state-dir", str(state), "--executor", executor, "--workers", "2"])
    with socket.create_connection(("127.0.0.1", server.port), timeout=10):
        time.sleep(0.3)  # let the server hand it to a worker
        children = children_of(server.proc.pid)
        code, seconds = server.stop(timeout=15)
    assert code == 0, server.log
    assert seconds < 12, f"took {seconds:.1f} s to stop"
    deadline = time.monotonic() + 5
    while not all(is_gone(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(is_gone(pid) for pid in children), f"workers left running: {children}"


def test_config_file_and_override(launch: Any, tmp_path: Path, dirs: tuple[Path, Path]) -> None:
    """A command-line flag beats the same key in the YAML file."""
    other = tmp_path / "other-share"
    other.mkdir()
    (other / "from-override.txt").write_text("o")
    config = write_config(tmp_path, dirs, workers=2)
    server = launch(["--config", str(config), "--root", str(other)])
    assert str(other) in server.log
    listing = ftclient_ls(server.port)
    assert listing.returncode == 0, listing.stderr
    assert "from-override.txt" in listing.stdout
    code, _ = server.stop()
    assert code == 0


def test_default_root_is_created_in_cwd(launch: Any, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    server = launch(["--port", "0", "--host", "127.0.0.1",
                     "--state-dir", str(tmp_path / "state")], cwd=cwd)
    assert (cwd / "ft-share").is_dir()
    assert str(cwd / "ft-share") in server.log
    code, _ = server.stop()
    assert code == 0


def test_help_and_version() -> None:
    result = subprocess.run(SERVER + ["--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout
    assert "ftserver --root" in result.stdout
    for flag in ("--config", "--root", "--host", "--port", "--executor", "--workers"):
        assert flag in result.stdout
    version = subprocess.run(SERVER + ["--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0
    assert version.stdout.startswith("ftserver ")


def test_a_second_server_on_the_same_state_dir_refuses_to_start(
        launch: Any, dirs: tuple[Path, Path], tmp_path: Path) -> None:
    root, state = dirs
    first = launch(["--root", str(root), "--state-dir", str(state), "--host", "127.0.0.1",
                    "--port", "0"])
    other_root = tmp_path / "other"
    other_root.mkdir()
    second = subprocess.run(
        SERVER + ["--root", str(other_root), "--state-dir", str(state), "--host", "127.0.0.1",
                  "--port", "0"], capture_output=True, text=True, timeout=30)
    assert second.returncode == 1
    lines = [line for line in second.stderr.splitlines() if "ftserver:" in line]
    assert any("already using the state folder" in line for line in lines), second.stderr
    assert "Traceback" not in second.stderr
    assert first.stop()[0] == 0
