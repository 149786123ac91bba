"""Client-side safety: one download per destination, deadlines that grow with the
server's work, local disk failures reported as ft errors, and a validated --timeout.

Real servers (``start_server``) or a small scripted server on 127.0.0.1 (for the
replies a real server only gives when its disk is slow), real files in tmp_path,
real ``python -m ftclient`` processes for the command line.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.io.channel import Channel
from common.io.hashing import HASH_RATE_FLOOR
from common.protocol.errors import ConnectionLost, FtError, Locked, NoSpace, StorageError, Timeout
from common.protocol.replies import GetEnd, GetReady, HelloReply, PutDone, PutReady
from common.protocol.requests import PROTOCOL_VERSION
from ftclient import Client
from ftclient.localfiles import partial_path_for
from ftclient.results import Progress
from tests.cliutil import one_error_line
from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient"]
MiB = 1 << 20
WAIT = 30.0  # upper bound for any single wait in these tests


# ---------------------------------------------------------------- helpers


def random_bytes(seed: str, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def ftclient(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FTCLIENT_SERVER"}
    return subprocess.run(CLIENT + list(args), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


class ScriptedServer:
    """A listening socket on 127.0.0.1 that plays ``script`` to each of ``connections`` clients.

    It speaks the real protocol through ``Channel`` and the reply classes, but answers
    when and how the script says, which is how a slow disk on the server looks from the
    client. Runs on one thread, which ``close`` joins; every read has a deadline.
    """

    def __init__(self, script: Callable[[Channel], None], connections: int = 1) -> None:
        self.script = script
        self.connections = connections
        self.errors: list[BaseException] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, name="scripted-server", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for _ in range(self.connections):
            try:
                sock, _ = self.listener.accept()
            except OSError as exc:
                self.errors.append(exc)
                return
            with sock:
                sock.settimeout(WAIT)
                try:
                    channel = Channel(sock)
                    hello = channel.receive(deadline=time.monotonic() + WAIT)
                    assert hello["op"] == "hello", hello
                    channel.send(HelloReply(PROTOCOL_VERSION, "scripted", "scripted").to_dict())
                    self.script(channel)
                except BaseException as exc:  # reported by close(), in the test's thread
                    self.errors.append(exc)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes an accept still waiting
        self.thread.join(WAIT)
        self.listener.close()
        assert not self.thread.is_alive(), "the scripted server did not finish"
        if self.errors:
            raise self.errors[0]


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(script: Callable[[Channel], None], connections: int = 1) -> ScriptedServer:
        server = ScriptedServer(script, connections)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def receive_request(channel: Channel, op: str) -> dict[str, Any]:
    request = channel.receive(deadline=time.monotonic() + WAIT)
    assert request.get("op") == op, request
    return request


def receive_upload(channel: Channel, *, ready_after: float = 0.0) -> tuple[int, str]:
    """Play the server's side of a fresh ``put`` up to its ``put_end``; return size and digest.

    ``ready_after`` seconds pass before PutReady, as while a server hashes its partial.
    """
    size = receive_request(channel, "put")["size"]
    time.sleep(ready_after)
    channel.send(PutReady(0, None).to_dict())
    assert receive_request(channel, "put_data")["offset"] == 0
    channel.expect_raw(size)
    hasher = hashlib.sha256()
    view = memoryview(bytearray(MiB))
    left = size
    while left:
        chunk = view[: min(left, MiB)]
        channel.recv_raw_exactly(chunk, deadline=time.monotonic() + WAIT)
        hasher.update(chunk)
        left -= len(chunk)
    end = receive_request(channel, "put_end")
    assert end["sha256"] == hasher.hexdigest()
    return size, hasher.hexdigest()


def wait_for_hangup(channel: Channel) -> None:
    """Say nothing more; return once the client closes the connection."""
    assert channel.receive_or_eof(deadline=time.monotonic() + WAIT) is None


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that costs no disk and reads fast."""
    with open(path, "wb") as stream:
        stream.truncate(size)
    return path


def zeros_digest(size: int) -> str:
    hasher = hashlib.sha256()
    block = bytes(MiB)
    for _ in range(size // MiB):
        hasher.update(block)
    hasher.update(bytes(size % MiB))
    return hasher.hexdigest()


# ---------------------------------------------------------------- 1. one download per destination


def test_second_get_to_the_same_destination_is_locked_out(
        start_server: Callable[..., ServerProcess], connect: Callable[..., Client],
        tmp_path: Path) -> None:
    server = start_server()
    first_data = random_bytes("first", 24 * MiB)
    second_data = random_bytes("second", 24 * MiB)
    (server.root / "first.bin").write_bytes(first_data)
    (server.root / "second.bin").write_bytes(second_data)
    destination = tmp_path / "out.bin"

    paused, resume = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def pause_once(progress: Progress) -> None:
        if progress.done > 0 and not paused.is_set():
            paused.set()
            resume.wait(WAIT)

    def first_download() -> None:
        try:
            outcome["result"] = connect(server).get("first.bin", destination, progress=pause_once)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=first_download, name="first-get")
    worker.start()
    try:
        assert paused.wait(WAIT), "the first download never started"
        with pytest.raises(Locked, match="another download to .* is in progress"):
            connect(server).get("second.bin", destination)
        # ... and from another process too: the lock is a file lock
        line = one_error_line(ftclient("--server", f"127.0.0.1:{server.port}", "-q", "get",
                                       "second.bin", str(destination)))
        assert "another download" in line
    finally:
        resume.set()
        worker.join(WAIT)
    assert not worker.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["result"].resumed_from == 0
    assert destination.read_bytes() == first_data
    assert not Path(partial_path_for(str(destination))).exists()

    # Once the first is done, the destination is free again.
    result = connect(server).get("second.bin", destination)
    assert result.resumed_from == 0
    assert destination.read_bytes() == second_data


# ---------------------------------------------------------------- 2. deadlines that grow


def test_tiny_socket_timeout_still_moves_30_mib(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    data = random_bytes("thirty", 30 * MiB)
    source = tmp_path / "thirty.bin"
    source.write_bytes(data)
    with Client("127.0.0.1", server.port, timeout=0.5, busy_wait=5.0) as client:
        put = client.put(source, "thirty.bin")
        got = client.get("thirty.bin", tmp_path / "copy.bin")
    assert put.size == got.size == len(data)
    assert (tmp_path / "copy.bin").read_bytes() == data


SLOW_SIZE = 64 * MiB  # allows the client 64 MiB / HASH_RATE_FLOOR = 3.4 s on top of its timeout
SLOW_REPLY = 1.0  # how long the scripted server "hashes" or "fsyncs" before it answers
TINY_TIMEOUT = 0.3


def test_slow_put_ready_and_put_done_are_waited_for(
        scripted: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    assert SLOW_SIZE / HASH_RATE_FLOOR > 2 * SLOW_REPLY

    def slow_disk(channel: Channel) -> None:
        size, digest = receive_upload(channel, ready_after=SLOW_REPLY)
        time.sleep(SLOW_REPLY)  # fsync and rename of a big file
        channel.send(PutDone(size, digest).to_dict())

    server = scripted(slow_disk)
    source = sparse_file(tmp_path / "big.img", SLOW_SIZE)
    with Client("127.0.0.1", server.port, timeout=TINY_TIMEOUT, busy_wait=0,
                retries=0) as client:
        result = client.put(source, "big.img")
        assert client._channel is not None  # still connected ...
        assert client._channel.sock.gettimeout() == TINY_TIMEOUT  # ... as before
    assert (result.size, result.sha256) == (SLOW_SIZE, zeros_digest(SLOW_SIZE))


def test_slow_get_ready_for_a_big_resumed_prefix_is_waited_for(
        scripted: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    digest = zeros_digest(SLOW_SIZE)

    def slow_prefix_check(channel: Channel) -> None:
        request = receive_request(channel, "get")
        assert (request["offset"], request["prefix_sha256"]) == (SLOW_SIZE, digest)
        time.sleep(SLOW_REPLY)  # hashing the client's claimed prefix
        channel.send(GetReady(SLOW_SIZE, 1_600_000_000.5, SLOW_SIZE, digest).to_dict())
        channel.send(GetEnd(digest).to_dict())

    server = scripted(slow_prefix_check)
    destination = tmp_path / "big.img"
    sparse_file(Path(partial_path_for(str(destination))), SLOW_SIZE)  # a complete partial
    with Client("127.0.0.1", server.port, timeout=TINY_TIMEOUT, busy_wait=0,
                retries=0) as client:
        result = client.get("big.img", destination)
    assert (result.resumed_from, result.sha256) == (SLOW_SIZE, digest)
    assert destination.stat().st_size == SLOW_SIZE


def never_confirm(channel: Channel) -> None:
    receive_upload(channel)
    wait_for_hangup(channel)


def hang_up_instead_of_confirming(channel: Channel) -> None:
    receive_upload(channel)


def test_unconfirmed_put_says_the_outcome_is_unknown(
        scripted: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"ten bytes!")
    server = scripted(never_confirm)
    started = time.monotonic()
    with Client("127.0.0.1", server.port, timeout=TINY_TIMEOUT, busy_wait=0,
                retries=0) as client, pytest.raises(Timeout) as caught:
        client.put(source, "dir/notes.txt")
    assert time.monotonic() - started < 10
    message = caught.value.message
    assert "unknown" in message and "ftclient stat dir/notes.txt" in message, message

    server = scripted(hang_up_instead_of_confirming)
    with Client("127.0.0.1", server.port, timeout=5, busy_wait=0, retries=0) as client, \
            pytest.raises(ConnectionLost) as lost:
        client.put(source, "dir/notes.txt")
    assert "ftclient stat dir/notes.txt" in lost.value.message


def test_cli_reports_an_unconfirmed_put_in_one_line(
        scripted: Callable[..., ScriptedServer], tmp_path: Path) -> None:
    source = tmp_path / "my notes.txt"
    source.write_bytes(b"ten bytes!")
    server = scripted(never_confirm)
    result = ftclient("--server", f"127.0.0.1:{server.port}", "--timeout", str(TINY_TIMEOUT),
                      "--retries", "0", "-q", "put", str(source))
    line = one_error_line(result)
    assert "ftclient stat 'my notes.txt'" in line, line


# ---------------------------------------------------------------- 4. --timeout is validated


@pytest.mark.parametrize("args", [
    ["--timeout", "-1"], ["--timeout=-1"], ["--timeout", "nan"], ["--timeout", "0"],
    ["--timeout", "inf"], ["--timeout", "-inf"], ["--timeout", "1e400"], ["--timeout", "soon"],
])
def test_bad_timeout_is_a_usage_error(args: list[str]) -> None:
    result = ftclient("--server", "127.0.0.1:9", *args, "ls")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("ftclient:")]
    assert len(errors) == 1 and "--timeout" in errors[0], result.stderr


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf")])
def test_client_refuses_a_bad_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match="timeout"):
        Client("127.0.0.1", 9, timeout=timeout)


# ---------------------------------------------------------------- 5. local disk failures


def test_destination_under_a_file_is_a_storage_error(
        start_server: Callable[..., ServerProcess], connect: Callable[..., Client],
        tmp_path: Path) -> None:
    server = start_server()
    (server.root / "a.txt").write_bytes(b"hello")
    not_a_folder = tmp_path / "afile"
    not_a_folder.write_bytes(b"I am a file")
    with pytest.raises(StorageError, match="Not a directory"):
        connect(server).get("a.txt", not_a_folder / "x")
    line = one_error_line(ftclient("--server", f"127.0.0.1:{server.port}", "-q", "get",
                                   "a.txt", str(not_a_folder / "x")))
    assert "Not a directory" in line
    assert not_a_folder.read_bytes() == b"I am a file"


def test_failed_publish_is_an_ft_error_and_keeps_the_download(
        start_server: Callable[..., ServerProcess], connect: Callable[..., Client],
        tmp_path: Path) -> None:
    server = start_server()
    data = random_bytes("publish", 8 * MiB)
    (server.root / "p.bin").write_bytes(data)
    destination = tmp_path / "p.bin"

    def folder_appears(progress: Progress) -> None:  # someone makes a folder of that name
        if progress.done == progress.total and not destination.exists():
            destination.mkdir()

    with pytest.raises(FtError, match="kept") as caught:
        connect(server).get("p.bin", destination, progress=folder_appears)
    assert isinstance(caught.value, StorageError)
    partial = Path(partial_path_for(str(destination)))
    assert partial.stat().st_size == len(data)
    destination.rmdir()
    result = connect(server).get("p.bin", destination)
    assert result.resumed_from == len(data)
    assert destination.read_bytes() == data


def test_local_disk_full_is_no_space_and_resumes_once_there_is_room(
        start_server: Callable[..., ServerProcess], connect: Callable[..., Client],
        mount_tmpfs: Callable[..., Path], tmp_path: Path) -> None:
    small_folder = mount_tmpfs(tmp_path / "small", size="4m")
    server = start_server()
    data = random_bytes("full", 6 * MiB)
    (server.root / "full.bin").write_bytes(data)
    destination = small_folder / "full.bin"
    with pytest.raises(NoSpace, match="kept"):
        connect(server).get("full.bin", destination)
    assert not destination.exists()
    held = Path(partial_path_for(str(destination))).stat().st_size
    assert 0 < held < len(data)

    subprocess.run(["mount", "-o", "remount,size=16m", str(small_folder)], check=True)
    result = connect(server).get("full.bin", destination)
    assert result.resumed_from == held
    assert destination.read_bytes() == data
