"""The ceilings: copying a file over loopback with no protocol.

The bare floor is what the kernel allows: sendfile(2) from a file on one side,
recv_into a preallocated buffer and write to a file on the other. The TLS floor
is the same copy through ``ssl`` (a self-signed certificate made with
``cryptography``): read, encrypt and send; receive, decrypt and write. ft's
figures are stated as ratios of these.

The hashed copies are the ceiling for any copy that proves its bytes, as ft
does: the sender (a process of its own, as ft's client is) reads 256 KiB,
hashes it with SHA-256 and sends it; the receiver reads with recv_into, writes,
and hashes, either inline or on a thread of its own, then compares the two
digests. They are not targets: they show what hashing at both ends costs on
this machine, apart from anything ft's protocol does.
"""

from __future__ import annotations

import datetime
import hashlib
import multiprocessing
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from benchkit.figures import MiB, Took, cpu_seconds, timed

RECV_BUFFER = MiB
HASHED_BUFFER = 256 * 1024
"""Bytes per step of the hashed copies: ft's own step."""
HASHED_BUFFERS = 4
"""Buffers the threaded receiver cycles through (ft's HashPipe depth)."""


def _listener() -> socket.socket:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    return server


def _receive_to_file(sock: socket.socket, target: Path, size: int) -> None:
    buffer = memoryview(bytearray(RECV_BUFFER))
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        left = size
        while left:
            got = sock.recv_into(buffer[: min(left, RECV_BUFFER)])
            if not got:
                raise ConnectionError("the sender closed early")
            view = buffer[:got]
            while view:
                view = view[os.write(fd, view):]
            left -= got
    finally:
        os.close(fd)


def _run_copy(send: Callable[[], None], receive: Callable[[], None]) -> Took:
    """Time one copy: ``send`` on a thread, ``receive`` here; both must finish."""
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            send()
        except BaseException as exc:  # reported below, in the measuring thread
            errors.append(exc)

    thread = threading.Thread(target=sender, name="floor-sender")

    def copy() -> None:
        thread.start()
        try:
            receive()
        finally:
            thread.join()
            if errors:  # the sender's failure explains the receiver's
                raise errors[0]

    return timed(copy)


def bare_copy(source: Path, target: Path) -> Took:
    """sendfile from ``source`` → loopback → recv_into → write ``target``."""
    size = source.stat().st_size
    with _listener() as server:
        port = server.getsockname()[1]

        def send() -> None:
            with socket.create_connection(("127.0.0.1", port)) as sock, open(source, "rb") as f:
                offset = 0
                while offset < size:
                    offset += os.sendfile(sock.fileno(), f.fileno(), offset, size - offset)

        def receive() -> None:
            conn, _ = server.accept()
            with conn:
                _receive_to_file(conn, target, size)

        return _run_copy(send, receive)


def self_signed_contexts(folder: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed P-256 certificate, and a client that trusts it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ft-bench")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "bench-cert.pem", folder / "bench-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_2
    server_context.load_cert_chain(cert_path, key_path)
    client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE  # a ceiling to measure, not a trust decision
    cert_path.unlink()
    key_path.unlink()
    return server_context, client_context


def tls_copy(source: Path, target: Path, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
             ) -> Took:
    """read ``source`` → TLS over loopback → recv_into → write ``target``."""
    server_context, client_context = contexts
    size = source.stat().st_size
    received = threading.Event()
    with _listener() as server:
        port = server.getsockname()[1]

        def send() -> None:
            raw = socket.create_connection(("127.0.0.1", port))
            with client_context.wrap_socket(raw) as sock, open(source, "rb") as f:
                buffer = memoryview(bytearray(RECV_BUFFER))
                while got := f.readinto(buffer):
                    sock.sendall(buffer[:got])
                # Closing with the server's unread session tickets queued would reset
                # the connection and drop data still in flight: wait for the receiver.
                received.wait(600)

        def receive() -> None:
            conn, _ = server.accept()
            with server_context.wrap_socket(conn, server_side=True) as tls:
                try:
                    _receive_to_file(tls, target, size)
                finally:
                    received.set()

        return _run_copy(send, receive)


def _send_hashed(port: int, source: str, known_digest: bytes | None) -> None:
    """The hashed copy's sender, in a process of its own, then the digest: read, hash and
    send each buffer; or, given the digest (as ft's server has it cached), sendfile."""
    with socket.create_connection(("127.0.0.1", port)) as sock, \
            open(source, "rb", buffering=0) as stream:
        if known_digest is not None:
            sock.sendfile(stream)
            sock.sendall(known_digest)
            return
        digest = hashlib.sha256()
        buffer = memoryview(bytearray(HASHED_BUFFER))
        while got := stream.readinto(buffer):
            digest.update(buffer[:got])
            sock.sendall(buffer[:got])
        sock.sendall(digest.digest())


def _recv_exactly(sock: socket.socket, view: memoryview) -> None:
    filled = 0
    while filled < len(view):
        got = sock.recv_into(view[filled:])
        if not got:
            raise ConnectionError("the sender closed early")
        filled += got


def _receive_hashed(sock: socket.socket, target: Path, size: int, threaded: bool) -> bytes:
    """recv_into, write and hash (inline, or on a thread fed by a bounded pool); the digest."""
    digest = hashlib.sha256()
    free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
    for _ in range(HASHED_BUFFERS if threaded else 1):
        free.put(memoryview(bytearray(HASHED_BUFFER)))

    def hash_all() -> None:
        while (item := full.get()) is not None:
            buffer, length = item
            digest.update(buffer[:length])
            free.put(buffer)

    hasher = threading.Thread(target=hash_all, name="floor-hash") if threaded else None
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        if hasher:
            hasher.start()
        position = 0
        while position < size:
            buffer = free.get()
            piece = buffer[: min(HASHED_BUFFER, size - position)]
            _recv_exactly(sock, piece)
            os.pwrite(fd, piece, position)
            if hasher:
                full.put((buffer, len(piece)))
            else:
                digest.update(piece)
                free.put(buffer)
            position += len(piece)
    finally:
        if hasher:
            full.put(None)
            hasher.join()
        os.close(fd)
    return digest.digest()


def file_digest(path: Path) -> bytes:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").digest()


def hashed_copy(source: Path, target: Path, sender_hashes: bool, receiver_thread: bool,
                digest: bytes) -> Took:
    """Copy ``source`` (whose SHA-256 is ``digest``) proving every byte; fails if it differs.

    The receiver always hashes (on a thread, or inline); the sender hashes too, or
    sends with sendfile and the ``digest`` it was given, as ft's server does with a
    cached one. The time runs from the sender's connection to the receiver's last
    byte; the CPU counted is both processes' over that time.
    """
    size = source.stat().st_size
    with _listener() as server:
        sender = multiprocessing.get_context("spawn").Process(
            target=_send_hashed,
            args=(server.getsockname()[1], str(source), None if sender_hashes else digest))
        sender.start()
        try:
            server.settimeout(60)
            conn, _ = server.accept()
            with conn:
                cpu_before, started = cpu_seconds(), time.perf_counter()
                received = _receive_hashed(conn, target, size, receiver_thread)
                announced = memoryview(bytearray(len(received)))
                _recv_exactly(conn, announced)
                # before the join: the sender's exit is no part of the copy
                took = Took(time.perf_counter() - started, cpu_seconds() - cpu_before)
        finally:
            sender.join(60)
            if sender.exitcode is None:
                sender.kill()
                sender.join()
    if not received == announced == digest or sender.exitcode != 0:
        raise RuntimeError("the hashed copy failed: the digests differ or the sender failed")
    return took
