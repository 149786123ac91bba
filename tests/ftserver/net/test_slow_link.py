"""A put over a slow link with a short ``--timeout`` must not report "outcome unknown".

``sendall`` returns once the last bytes are in kernel buffers; on a slow link
megabytes still wait there. The client must start waiting for the server's
confirmation only once they have left (issue 4, defect from the core).

On loopback the client's kernel queue stays short however slow the proxy is,
so this end-to-end check passes with or without the fix; the mechanism itself
(waiting while the queue drains, failing when it stalls) is pinned by
test_sendqueue.py on sockets with a deep send queue.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ftclient.cli.test_cli_client import ThrottleProxy
from tests.serverproc import ServerProcess

MiB = 1 << 20
SLOW_RATE = 2 * MiB  # bytes per second
SIZE = 6 * MiB
SHALLOW_BUFFER = 32 * 1024


@pytest.fixture
def shared_server(start_server) -> ServerProcess:  # noqa: ANN001 - a conftest fixture
    """The fix is in the client: one executor is enough."""
    return start_server("thread")


@pytest.fixture
def slow_link(shared_server: ServerProcess) -> Iterator[ThrottleProxy]:
    proxy = ThrottleProxy(("127.0.0.1", shared_server.port), SLOW_RATE)
    # A slow link buffers nothing itself: unsent bytes wait, unacknowledged, in the
    # sender's queue (up to megabytes), so the proxy takes in no more than it passes
    # on. Accepted sockets inherit the small receive buffer from the listener.
    try:
        proxy.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SHALLOW_BUFFER)
        yield proxy
    finally:
        proxy.close()


def test_put_over_a_slow_link_with_a_short_timeout_is_confirmed(
        shared_server: ServerProcess, slow_link: ThrottleProxy, make_file, tmp_path: Path
) -> None:
    source = make_file("slow-link.bin", SIZE)
    result = subprocess.run(
        [sys.executable, "-m", "ftclient", "--server", slow_link.address, "--timeout", "1",
         "--retries", "0", "-q", "put", str(source)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (shared_server.root / "slow-link.bin").read_bytes() == source.read_bytes()
