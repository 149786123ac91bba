"""ft's own figures: a real ftserver process on 127.0.0.1 and the Client API.

Every server here is started on port 0 and stopped by its pid (tests.serverproc),
with limits raised so that 50 clients from one address are all admitted.
TLS runs only when the installed ft has it (a ``tls`` server setting and a
``tls`` Client option); otherwise the case is skipped with a note.
"""

from __future__ import annotations

import dataclasses
import inspect
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchkit.figures import Took, concurrent_timed, peak_rss_mib, timed
from ftclient import Client
from ftclient.pipeline import PipedFile
from ftserver.config import ServerConfig
from tests.serverproc import ServerProcess

BENCH_LIMITS = {"sessions_per_worker": 32, "max_per_address": 128,
                "transfer_timeout": 120.0, "min_free_bytes": 0}
CLIENT_TIMEOUT = 120.0


@contextmanager
def ft_server(base: Path, executor: str = "thread", workers: int = 4,
              **settings: Any) -> Iterator[ServerProcess]:
    """A running ftserver sharing ``base/share``; stopped (SIGTERM, by pid) on exit."""
    server = ServerProcess(base, executor=executor, workers=workers, limits=BENCH_LIMITS,
                           **settings)
    server.start()
    try:
        yield server
    finally:
        try:
            server.terminate()
        finally:
            shutil.rmtree(base, ignore_errors=True)


def client_for(server: ServerProcess, **options: Any) -> Client:
    return Client("127.0.0.1", server.port, timeout=CLIENT_TIMEOUT, busy_wait=60.0, **options)


# ---------------------------------------------------------------- TLS, when there is TLS


def tls_support() -> str | None:
    """None if the installed ft can run TLS; otherwise why not (for the skip note)."""
    if "tls" not in {f.name for f in dataclasses.fields(ServerConfig)}:
        return "ft TLS: this ft has no `tls` server setting yet (issue 3)"
    if "tls" not in inspect.signature(Client).parameters:
        return "ft TLS: this ft's Client has no `tls` option yet (issue 3)"
    return None


def tls_client_options(server: ServerProcess) -> dict[str, Any]:
    """Client options that pin the server's certificate, from `ftserver fingerprint`."""
    out = subprocess.run([sys.executable, "-m", "ftserver", "fingerprint", "--config",
                          str(server.config_path)], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    options: dict[str, Any] = {"tls": True}
    parameters = inspect.signature(Client).parameters
    if "fingerprint" in parameters:
        options["fingerprint"] = out.split()[-1]
    if "known_servers" in parameters:  # keep the pin out of the user's own known_servers
        options["known_servers"] = server.state_dir / "bench-known_servers"
    return options


# ---------------------------------------------------------------- the cases


def big_file_round(client: Client, source: Path, download: Path) -> tuple[Took, Took]:
    """What it took to put ``source``, and to get it back to ``download`` (removed after)."""
    put = timed(lambda: client.put(source, "big.bin"))
    get = timed(lambda: client.get("big.bin", download))
    download.unlink()
    return put, get


def small_files_put(client: Client, paths: list[Path], folder: str) -> Took:
    """Upload many small files over one connection, pipelined as ``put -r`` sends them:
    requests, bytes and ends go back to back and the replies are read as they come."""
    files = [PipedFile(str(path), f"{folder}/{path.name}") for path in paths]

    def upload_all() -> None:
        client.mkdir(folder, parents=True)
        failed = [result for result in client.put_many(files) if result.error is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} small files failed: {failed[0].error}")
    return timed(upload_all)


def concurrent_put_get(server: ServerProcess, source: Path, folder: Path, count: int
                       ) -> tuple[Took, Took]:
    """``count`` clients each put ``source`` under its own name at once, then all get."""
    folder.mkdir(parents=True, exist_ok=True)
    clients = [client_for(server) for _ in range(count)]
    try:
        for client in clients:
            client.connect()
        put = concurrent_timed(
            count, lambda i: clients[i].put(source, f"many/c{i:03d}.bin"))
        get = concurrent_timed(
            count, lambda i: clients[i].get(f"many/c{i:03d}.bin", folder / f"c{i:03d}.bin"))
    finally:
        for client in clients:
            client.close()
    shutil.rmtree(folder, ignore_errors=True)
    return put, get


def rss_after_puts(base: Path, source: Path, count: int) -> float:
    """Peak RSS (MiB) of a fresh thread-mode server after ``count`` concurrent puts of source."""
    with ft_server(base, "thread") as server:
        clients = [client_for(server) for _ in range(count)]
        try:
            concurrent_timed(count, lambda i: clients[i].put(source, f"rss/c{i:03d}.bin"))
        finally:
            for client in clients:
                client.close()
        assert server.proc is not None
        return peak_rss_mib(server.proc.pid)
