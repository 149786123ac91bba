"""Shared fixtures: real ftserver processes on 127.0.0.1, one per executor where it matters."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess

EXECUTORS = ("thread", "process")


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
