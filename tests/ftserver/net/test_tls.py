"""TLS: a generated certificate that is kept, pinning like ssh's known_hosts, no plaintext fallback.

Real servers with ``tls.enabled`` (both executors where sessions matter), the
real ``Client`` and ``python -m ftclient``, a known_servers file in tmp_path
(never the real home), and, to prove that a refused client sends nothing, an
in-test TLS listener on 127.0.0.1 that counts what arrives after the handshake.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509

from common.io.tls import server_context
from common.protocol.errors import Busy, ConnectionLost, FrameError, Untrusted
from ftclient import Client
from ftserver.config import ServerConfig
from ftserver.net.tlscert import CERT_NAME, KEY_NAME, certificate_fingerprint, ensure_certificate
from tests.cliutil import one_error_line
from tests.serverproc import ServerProcess

TLS = {"tls": {"enabled": True}}
FINGERPRINT_LOG = r"fingerprint: ([0-9a-f]{64})"


def logged_fingerprint(server: ServerProcess) -> str:
    assert server.wait_for_log(FINGERPRINT_LOG)
    match = re.search(FINGERPRINT_LOG, server.log)
    assert match is not None
    return match.group(1)


def tls_client(server_port: int, known: Path, **options: object) -> Client:
    return Client("127.0.0.1", server_port, timeout=15, busy_wait=5, known_servers=known,
                  **options)  # type: ignore[arg-type]


def ftclient(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTCLIENT")}
    env["XDG_CONFIG_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "ftclient", *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)


def test_generated_certificate_is_private_kept_and_printed(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(**TLS)
    cert, key = server.state_dir / CERT_NAME, server.state_dir / KEY_NAME
    for path in (cert, key):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fingerprint = logged_fingerprint(server)
    assert fingerprint == certificate_fingerprint(cert)
    printed = subprocess.run(
        [sys.executable, "-m", "ftserver", "fingerprint", "--config", str(server.config_path)],
        capture_output=True, text=True, timeout=60, check=True)
    assert printed.stdout.split()[-1] == fingerprint
    names = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in {str(a) for a in names.get_values_for_type(x509.IPAddress)}
    assert server.terminate() == 0

    again = start_server(**TLS)  # same state_dir: the same certificate, the same pins
    assert logged_fingerprint(again) == fingerprint


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_round_trip_over_tls_with_accept_new_then_the_pin(
        executor: str, start_server: Callable[..., ServerProcess], make_file, tmp_path: Path
) -> None:
    server = start_server(executor, **TLS)
    known = tmp_path / "known_servers"
    source = make_file("secret.bin", 3 * 1024 * 1024 + 17)
    with tls_client(server.port, known, accept_new=True) as client:
        client.put(source, "dir/")
        first = client.get("dir/secret.bin", tmp_path / "one.bin")
    assert known.read_text().split() == [f"127.0.0.1:{server.port}", logged_fingerprint(server)]
    with tls_client(server.port, known, tls=True) as client:  # pinned now: no flag needed
        # The second get is served from the hash cache (the path that uses sendfile in
        # plaintext); over TLS the bytes must still be encrypted and whole.
        second = client.get("dir/secret.bin", tmp_path / "two.bin")
    assert first.sha256 == second.sha256
    assert (tmp_path / "two.bin").read_bytes() == source.read_bytes()
    assert "Traceback" not in server.log


def test_unknown_server_is_refused_with_its_fingerprint_and_how_to_trust_it(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(**TLS)
    fingerprint = logged_fingerprint(server)
    with pytest.raises(Untrusted) as refused:
        tls_client(server.port, tmp_path / "known", tls=True).connect()
    assert fingerprint in refused.value.message
    assert "--accept-new" in refused.value.message and "--fingerprint" in refused.value.message
    assert not (tmp_path / "known").exists()
    with pytest.raises(Untrusted):
        tls_client(server.port, tmp_path / "known", fingerprint="00" * 32).connect()
    with tls_client(server.port, tmp_path / "known", fingerprint=fingerprint.upper()) as client:
        assert client.list("") == []
    assert (tmp_path / "known").read_text() == f"127.0.0.1:{server.port} {fingerprint}\n"
    with tls_client(server.port, tmp_path / "known", tls=True) as client:  # pinned by it
        assert client.list("") == []

    result = ftclient("--server", f"127.0.0.1:{server.port}", "--tls", "ls", home=tmp_path)
    line = one_error_line(result)
    assert fingerprint in line and "--accept-new" in line
    result = ftclient("--server", f"127.0.0.1:{server.port}", "--accept-new", "ls",
                      home=tmp_path)
    assert result.returncode == 0, result.stderr
    pins = (tmp_path / "ftclient" / "known_servers").read_text()
    assert pins == f"127.0.0.1:{server.port} {fingerprint}\n"


class CountingTlsListener:
    """A TLS server on 127.0.0.1 that completes handshakes and counts the bytes sent after."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir()
        config = ensure_certificate(ServerConfig(state_dir=state_dir))
        assert config.tls.cert is not None and config.tls.key is not None
        self.fingerprint = certificate_fingerprint(config.tls.cert)
        self.context = server_context(str(config.tls.cert), str(config.tls.key))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(20)
        self.port = self.listener.getsockname()[1]
        self.received = -1
        self.thread = threading.Thread(target=self._serve, name="counting-tls")
        self.thread.start()

    def _serve(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        with self.context.wrap_socket(sock, server_side=True) as tls:
            tls.settimeout(3.0)
            received = 0
            try:
                while data := tls.recv(65536):
                    received += len(data)
            except (OSError, ssl.SSLError):
                pass
            self.received = received

    def close(self) -> None:
        self.thread.join(30)
        self.listener.close()


def test_changed_certificate_is_refused_before_anything_is_sent_even_with_accept_new(
        tmp_path: Path) -> None:
    listener = CountingTlsListener(tmp_path / "state")
    known = tmp_path / "known_servers"
    old = "ab" * 32
    known.write_text(f"127.0.0.1:{listener.port} {old}\n")
    try:
        with pytest.raises(Untrusted) as refused:
            tls_client(listener.port, known, accept_new=True).connect()
    finally:
        listener.close()
    assert listener.received == 0  # not even the hello
    message = refused.value.message
    assert "CHANGED" in message and listener.fingerprint in message and old in message
    assert str(known) in message and "remove the line" in message
    assert known.read_text() == f"127.0.0.1:{listener.port} {old}\n"  # the old pin stays


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_plaintext_client_against_a_tls_server_fails_fast_and_clearly(
        executor: str, start_server: Callable[..., ServerProcess], connect) -> None:
    server = start_server(executor, **TLS)
    started = time.monotonic()
    with pytest.raises(FrameError) as refused:
        connect(server).connect()
    assert time.monotonic() - started < 5
    assert "requires TLS" in refused.value.message and "--tls" in refused.value.message


def test_tls_client_against_a_plaintext_server_fails_fast_and_never_falls_back(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    started = time.monotonic()
    with pytest.raises(ConnectionLost) as refused:
        tls_client(server.port, tmp_path / "known", accept_new=True).connect()
    assert time.monotonic() - started < 5
    assert "does not speak TLS" in refused.value.message
    assert not (tmp_path / "known").exists()
    assert "hello" not in server.log  # nothing was sent in plaintext after the refusal


def test_configured_certificate_files_are_used(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    made = ensure_certificate(ServerConfig(state_dir=tmp_path / "pki"))
    assert made.tls.cert is not None and made.tls.key is not None
    server = start_server(tls={"enabled": True, "cert": str(made.tls.cert),
                               "key": str(made.tls.key)})
    assert logged_fingerprint(server) == certificate_fingerprint(made.tls.cert)
    assert not (server.state_dir / CERT_NAME).exists()


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_stalled_tls_handshake_is_closed_by_the_handshake_deadline(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor, limits={"handshake_timeout": 1.0}, **TLS)
    with tls_client(server.port, tmp_path / "known", accept_new=True) as client:
        client.list("")  # the workers are up: time only the wait
    for opening in (b"", b"\x16\x03\x01"):  # silent, then a TLS record that never ends
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(opening)
            started = time.monotonic()
            try:
                while sock.recv(4096):
                    pass
            except ConnectionResetError:
                pass
            waited = time.monotonic() - started
        assert 0.5 < waited < 4, waited
    assert "Traceback" not in server.log


def test_a_full_tls_server_answers_busy_inside_tls_and_the_client_retries(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(limits={"max_per_address": 1}, **TLS)
    known = tmp_path / "known"
    holder = tls_client(server.port, known, accept_new=True)
    holder.connect()  # the address's only slot
    try:
        started = time.monotonic()
        with pytest.raises(Busy) as refused:
            Client("127.0.0.1", server.port, timeout=10, busy_wait=0, tls=True,
                   known_servers=known).connect()
        assert time.monotonic() - started < 3
        assert "retry" in refused.value.message
        threading.Timer(1.0, holder.close).start()
        with Client("127.0.0.1", server.port, timeout=10, busy_wait=10, tls=True,
                    known_servers=known) as waiting:  # waits, retries, gets in
            assert waiting.list("") == []
    finally:
        holder.close()


def test_tls_older_than_1_2_is_refused(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(**TLS)
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # let this client really offer TLS 1.1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # offering it is the point
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, \
            pytest.raises(ssl.SSLError) as refused:
        old.wrap_socket(sock)
    assert "ALERT_PROTOCOL_VERSION" in str(refused.value)  # the server said no, not this client
    new = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    new.check_hostname = False
    new.verify_mode = ssl.CERT_NONE
    new.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock, \
            new.wrap_socket(sock) as tls:
        assert tls.version() == "TLSv1.2"
