"""Shared fixtures: real ftserver processes on 127.0.0.1, one per executor where it matters."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ftclient import Client
from tests.serverproc import ServerProcess

EXECUTORS = ("thread", "process")
SOURCE_MTIME_NS = 1_600_000_000_123_456_789
"""mtime given to test source files: sub-second, so a lost fraction shows."""


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers on demand; every one is stopped (by pid) when the test ends."""
    started: list[ServerProcess] = []

    def start(executor: str = "thread", name: str = "srv", **settings: Any) -> ServerProcess:
        server = ServerProcess(tmp_path / name, executor=executor, **settings).start()
        started.append(server)
        return server

    yield start
    for server in started:
        try:
            server.terminate(timeout=20)
        except Exception:
            server.kill()


@pytest.fixture(params=EXECUTORS)
def server(request: pytest.FixtureRequest, start_server: Callable[..., ServerProcess]
           ) -> ServerProcess:
    """One running server, under each executor in turn."""
    return start_server(request.param)


@pytest.fixture(scope="module", params=EXECUTORS)
def shared_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[ServerProcess]:
    """One server per test module and executor, for tests that use names of their own.

    Cheaper than ``server`` when a module has many short tests; a test that needs
    special settings, or must see an empty share, uses ``start_server`` instead.
    """
    base = tmp_path_factory.mktemp(f"shared-{request.param}")
    server = ServerProcess(base, executor=request.param).start()
    yield server
    try:
        server.terminate(timeout=20)
    except Exception:
        server.kill()
    assert "Traceback" not in server.log, f"the shared server hit an internal error:\n{server.log}"


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    """Make ``Client`` objects for a server (or any port on 127.0.0.1); all closed at the end.

    They make one attempt per call (``retries=0``) unless a test passes ``retries``.
    """
    clients: list[Client] = []

    def make(server: ServerProcess, *, port: int | None = None, timeout: float = 15.0,
             retries: int = 0, retry_delay: float = 0.05) -> Client:
        # No retries unless a test asks: most tests look at what one attempt does.
        client = Client("127.0.0.1", port or server.port, timeout=timeout, busy_wait=5.0,
                        retries=retries, retry_delay=retry_delay)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def make_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a local source file of random bytes (seeded by name) with a fixed, odd mtime."""
    folder = tmp_path / "local"
    folder.mkdir(exist_ok=True)

    def make(name: str, size: int = 0, *, data: bytes | None = None) -> Path:
        path = folder / name
        path.write_bytes(random.Random(name).randbytes(size) if data is None else data)
        os.utime(path, ns=(SOURCE_MTIME_NS, SOURCE_MTIME_NS))
        return path

    return make


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(autouse=True)
def no_leaks() -> Iterator[None]:
    """Each test gives back the threads and file descriptors it took (as pyftpdlib checks).

    Runs around every test, after the test's own fixtures are torn down, so a client
    socket, proxy thread or server pipe left behind fails the test that leaked it.
    """
    threads_before = threading.active_count()
    fds_before = _open_fds()
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline and (
        threading.active_count() > threads_before or _open_fds() > fds_before
    ):
        time.sleep(0.02)
    leaked_threads = [t.name for t in threading.enumerate()][threads_before:]
    assert threading.active_count() <= threads_before, f"threads left running: {leaked_threads}"
    assert _open_fds() <= fds_before, (
        f"file descriptors left open: {_open_fds() - fds_before}")


@pytest.fixture
def mount_tmpfs() -> Iterator[Callable[..., Path]]:
    """Mount small tmpfs filesystems (for disk-full and cross-filesystem tests); needs root.

    ``mount_tmpfs(folder, size="12m")`` creates and mounts ``folder``; every mount
    is undone when the test ends. Skips the test when not running as root.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(folder: Path, size: str = "128m") -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                       check=True)
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(autouse=True, scope="session")
def no_personal_client_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep the tester's own ~/.config/ftclient/config.yaml, digest cache and FTCLIENT_*
    out of every run.

    ftclient reads its settings from there (ftclient/cli/profiles.py); a tester's
    ``limit-rate`` or ``quiet`` must not change what the tests see.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        for variable in [name for name in os.environ if name.startswith("FTCLIENT_")]:
            patch.delenv(variable)
        yield


@pytest.fixture(autouse=True)
def own_pinned_servers(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own ~/.config/ftclient (pinned servers, settings): a pin one test
    made for 127.0.0.1:PORT would otherwise make ftclient take a later test's server on
    that reused port for a TLS server."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))
