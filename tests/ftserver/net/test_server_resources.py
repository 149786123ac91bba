"""Promise 6: what a server holds per client is given back when the client is gone.

After a burst of transfers, cut uploads and garbage connections, the server's
open file descriptors and threads (summed over its worker processes in process
mode) return to what they were before the burst.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import ConnectionLost
from ftclient import Client
from tests.procinfo import open_files, quiet_usage, settle
from tests.proxy import cutting_proxy
from tests.serverproc import ServerProcess

MiB = 1 << 20


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_descriptors_and_threads_return_to_baseline(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor)
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(3 * MiB))
    # Warm up every lazily built piece in every worker: with four connections open at
    # once, least-loaded dispatch gives each worker process one of them.
    clients = [Client(server.host, server.port) for _ in range(4)]
    for client in clients:
        client.connect()
    for index, client in enumerate(clients):
        client.put(source, f"warm{index}.bin")
        client.get(f"warm{index}.bin", tmp_path / "warm.bin")
    for client in clients:
        client.close()
    assert server.proc is not None
    baseline = quiet_usage(server.proc.pid)
    files_before = open_files(server.proc.pid)

    errors: list[BaseException] = []

    def transfer(index: int) -> None:
        try:
            with Client(server.host, server.port) as client:
                client.put(source, f"burst/{index}.bin")
                client.get(f"burst/{index}.bin", tmp_path / f"{index}.bin")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=transfer, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    with cutting_proxy(server.port, cut_after=MiB + 12345, max_connections=8) as proxy:
        for index in range(6):
            with pytest.raises(ConnectionLost), \
                    Client("127.0.0.1", proxy.port, retries=0) as client:
                client.put(source, f"cut/{index}.bin")
    for _ in range(5):
        with socket.create_connection((server.host, server.port), timeout=5) as raw:
            raw.sendall(b"\x00\x00\x00\x05hello")  # not JSON: the server closes it
            raw.settimeout(5)
            while raw.recv(4096):
                pass
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert all((tmp_path / f"{i}.bin").read_bytes() == source.read_bytes() for i in range(20))

    after = settle(server.proc.pid, baseline)
    extra = sorted(set(open_files(server.proc.pid)) - set(files_before))
    assert after == baseline, f"still open: {extra}"
    assert "Traceback" not in server.log
