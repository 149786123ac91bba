"""The ceilings: copying a file over loopback with no protocol and no hashing.

The bare floor is what the kernel allows: sendfile(2) from a file on one side,
recv_into a preallocated buffer and write to a file on the other. The TLS floor
is the same copy through ``ssl`` (a self-signed certificate made with
``cryptography``): read, encrypt and send; receive, decrypt and write. ft's
figures are stated as ratios of these.
"""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from benchkit.figures import MiB, timed

RECV_BUFFER = MiB


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


def _run_copy(send: Callable[[], None], receive: Callable[[], None]) -> float:
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


def bare_copy_seconds(source: Path, target: Path) -> float:
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


def tls_copy_seconds(source: Path, target: Path, contexts: tuple[ssl.SSLContext, ssl.SSLContext]
                     ) -> float:
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
