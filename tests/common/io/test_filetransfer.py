"""send_file_hashed and receive_file_hashed over real loopback sockets, plain and TLS.

The sender's digest, the receiver's digest and the bytes written must all agree
with the file, from offset 0 or a resume offset, over plain TCP and over TLS; the
server's sendfile path (a digest it already knows) is covered here too.
"""

from __future__ import annotations

import hashlib
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import pytest

from common.io.channel import Channel
from common.io.durable import pwrite_all
from common.io.filereceive import receive_file_hashed
from common.io.filesend import can_sendfile, send_file, send_file_hashed, sendfile_range
from common.io.hashpipe import BUFFER_SIZE
from common.io.tls import client_context, server_context
from common.protocol.errors import ConnectionLost, SourceChanged, Timeout
from ftserver.config import ServerConfig
from ftserver.net.tlscert import ensure_certificate
from tests.proxy import reset

MiB = 1 << 20


@pytest.fixture(scope="module")
def tls_contexts(tmp_path_factory: pytest.TempPathFactory
                 ) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """The server's own certificate and contexts; these tests are about the byte path,
    not trust, so the client accepts it unpinned."""
    config = ensure_certificate(ServerConfig(state_dir=tmp_path_factory.mktemp("tls")))
    assert config.tls.cert is not None and config.tls.key is not None
    return server_context(str(config.tls.cert), str(config.tls.key)), client_context()


@contextmanager
def loopback_pair(tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None
                  ) -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected (sender, receiver) pair on 127.0.0.1, optionally TLS on both ends."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname(), timeout=30)
        receiver, _ = listener.accept()
    receiver.settimeout(30)
    try:
        if tls is not None:
            server_context, client_context = tls
            wrapped: list[ssl.SSLSocket] = []
            handshake = threading.Thread(target=lambda: wrapped.append(
                server_context.wrap_socket(receiver, server_side=True)))
            handshake.start()
            sender = client_context.wrap_socket(sender)
            handshake.join(30)
            receiver = wrapped[0]
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()


def transfer(tmp_path: Path, data: bytes, offset: int,
             tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None
             ) -> tuple[str, str, bytes, list[int]]:
    """Send ``data[offset:]`` from a file; receive into a file holding ``data[:offset]``."""
    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    source.write_bytes(data)
    target.write_bytes(data[:offset])
    positions: list[int] = []
    received: list[str] = []
    errors: list[BaseException] = []
    with loopback_pair(tls) as (sender, receiver):
        out_fd = os.open(target, os.O_RDWR)
        in_fd = os.open(source, os.O_RDONLY)
        try:
            def receive() -> None:
                try:
                    received.append(receive_file_hashed(
                        Channel(receiver), offset, len(data) - offset,
                        hashlib.sha256(data[:offset]), partial(pwrite_all, out_fd)))
                except BaseException as exc:
                    errors.append(exc)
            thread = threading.Thread(target=receive)
            thread.start()
            sent = send_file_hashed(Channel(sender), in_fd, offset, len(data) - offset,
                                    hashlib.sha256(data[:offset]), 30.0, positions.append)
            thread.join(60)
        finally:
            os.close(in_fd)
            os.close(out_fd)
    assert not errors, errors
    return sent, received[0], target.read_bytes(), positions


SIZES = {"empty": 0, "one-byte": 1, "one-buffer": BUFFER_SIZE,
         "several-MiB": 3 * MiB + 12345}


@pytest.mark.parametrize("size", SIZES.values(), ids=SIZES.keys())
@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
def test_both_ends_agree_with_the_file(tmp_path: Path, tls_contexts, size: int,
                                       use_tls: bool) -> None:
    data = os.urandom(size)
    sent, received, written, positions = transfer(
        tmp_path, data, 0, tls_contexts if use_tls else None)
    expected = hashlib.sha256(data).hexdigest()
    assert sent == received == expected
    assert written == data
    if size:
        assert positions[-1] == size and positions == sorted(positions)


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
def test_resume_offset_continues_the_prefix_hash(tmp_path: Path, tls_contexts,
                                                 use_tls: bool) -> None:
    data = os.urandom(2 * MiB + 999)
    offset = MiB + 5
    sent, received, written, positions = transfer(
        tmp_path, data, offset, tls_contexts if use_tls else None)
    assert sent == received == hashlib.sha256(data).hexdigest()
    assert written == data
    assert positions[0] > offset


def test_only_plain_sockets_can_sendfile(tls_contexts) -> None:
    with loopback_pair() as (plain, _):
        assert can_sendfile(plain)
    with loopback_pair(tls_contexts) as (tls, _):
        assert not can_sendfile(tls)


def _send_hashed(sock: socket.socket, fd: int, count: int, timeout: float) -> None:
    send_file_hashed(Channel(sock), fd, 0, count, hashlib.sha256(), timeout)


def _sendfile(sock: socket.socket, fd: int, count: int, timeout: float) -> None:
    sendfile_range(sock, fd, 0, count, timeout)


PLAIN_SENDERS = {"hashing": _send_hashed, "sendfile": _sendfile}


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain-sendfile", "tls-copy"])
def test_send_file_sends_the_range_whole(tmp_path: Path, tls_contexts, use_tls: bool) -> None:
    """The server's path for a digest it already knows, from an offset: sendfile(2) on
    plain TCP, the copying loop without a hash on TLS."""
    data = os.urandom(3 * MiB + 17)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    positions: list[int] = []
    received = bytearray()
    with loopback_pair(tls_contexts if use_tls else None) as (sender, receiver):
        drain = threading.Thread(
            target=lambda: received.extend(_read_exactly(receiver, len(data) - 5)))
        drain.start()
        fd = os.open(source, os.O_RDONLY)
        try:
            send_file(Channel(sender), fd, 5, len(data) - 5, 30.0, positions.append)
        finally:
            os.close(fd)
            drain.join(30)
    assert received == data[5:]
    assert positions[-1] == len(data) and positions == sorted(positions)


def _read_exactly(sock: socket.socket, count: int) -> bytes:
    chunks = []
    while count > 0 and (chunk := sock.recv(min(count, MiB))):
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("send", PLAIN_SENDERS.values(), ids=PLAIN_SENDERS.keys())
def test_a_file_that_shrank_is_reported_not_padded(tmp_path: Path, send) -> None:
    """The sender was told 2 MiB but the file holds 1: SourceChanged, not padding."""
    source = tmp_path / "short.bin"
    source.write_bytes(os.urandom(MiB))
    with loopback_pair() as (sender, receiver):
        drain = threading.Thread(target=lambda: _drain(receiver))
        drain.start()
        fd = os.open(source, os.O_RDONLY)
        try:
            with pytest.raises(SourceChanged):
                send(sender, fd, 2 * MiB, 30.0)
        finally:
            os.close(fd)
            sender.shutdown(socket.SHUT_WR)
            drain.join(30)


def _drain(sock: socket.socket) -> None:
    while sock.recv(MiB):
        pass


def test_a_writer_error_stops_the_receiver_and_its_thread(tmp_path: Path) -> None:
    """An error-raising writer (a full disk) surfaces; the hashing thread does not linger."""
    data = os.urandom(2 * MiB)
    source = tmp_path / "source.bin"
    source.write_bytes(data)

    def failing_writer(view: memoryview, position: int) -> None:
        if position >= MiB:
            raise OSError(28, "No space left on device")

    before = threading.active_count()
    with loopback_pair() as (sender, receiver):
        fd = os.open(source, os.O_RDONLY)
        try:
            pusher = threading.Thread(target=lambda: _push(sender, fd, len(data)))
            pusher.start()
            with pytest.raises(OSError, match="No space"):
                receive_file_hashed(Channel(receiver), 0, len(data), hashlib.sha256(),
                                    failing_writer)
            receiver.shutdown(socket.SHUT_RDWR)
            pusher.join(30)
        finally:
            os.close(fd)
    assert threading.active_count() == before


def _push(sock: socket.socket, fd: int, size: int) -> None:
    try:
        send_file_hashed(Channel(sock), fd, 0, size, hashlib.sha256(), 30.0)
    except Exception:
        pass  # the receiver gave up: that is what this test arranges


@pytest.mark.parametrize("send", PLAIN_SENDERS.values(), ids=PLAIN_SENDERS.keys())
def test_a_file_error_is_not_blamed_on_the_network(tmp_path: Path, send) -> None:
    """Reading the file fails (a folder; sendfile says EINVAL): an OSError for the caller
    to report as a disk error, not "the connection dropped"."""
    with loopback_pair() as (sender, _receiver):
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(OSError) as raised:
                send(sender, fd, 2 * MiB, 30.0)
        finally:
            os.close(fd)
    assert not isinstance(raised.value, ConnectionLost)


def _send_known(sock: socket.socket, fd: int, count: int, timeout: float) -> None:
    send_file(Channel(sock), fd, 0, count, timeout)


SENDERS = {"hashing-plain": (_send_hashed, False), "hashing-tls": (_send_hashed, True),
           "sendfile": (_sendfile, False), "known-digest-tls": (_send_known, True)}


@pytest.mark.parametrize(("send", "use_tls"), SENDERS.values(), ids=SENDERS.keys())
def test_a_reader_that_trickles_is_cut_by_the_span_deadline(tmp_path: Path, tls_contexts,
                                                            send, use_tls: bool) -> None:
    """A peer that keeps reading a little (so no single send ever waits for the socket's
    timeout) still cannot hold the sender: each MiB must leave within the timeout. The
    reader hangs up after a bounded time, so a sender without the deadline fails with
    ConnectionLost instead of Timeout rather than hanging the test."""
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(24 * MiB))  # more than the socket buffers can hold
    with loopback_pair(tls_contexts if use_tls else None) as (sender, receiver):
        sender.settimeout(5.0)
        stop = threading.Event()
        reader = threading.Thread(target=_trickle, args=(receiver, stop))
        reader.start()
        fd = os.open(source, os.O_RDONLY)
        try:
            with pytest.raises(Timeout):
                send(sender, fd, 24 * MiB, 0.5)
            assert sender.gettimeout() == 5.0  # the caller's own timeout is given back
        finally:
            os.close(fd)
            stop.set()
            reader.join(30)


def _trickle(sock: socket.socket, stop: threading.Event) -> None:
    """Read 4 KiB every 20 ms (about 200 KB/s) until told to stop; reset after 10 s."""
    for _ in range(500):
        if stop.wait(0.02):
            return
        try:
            sock.recv(4096)
        except OSError:
            return
    reset(sock)
