"""The client's side of TLS (with pinning) and of the SCRAM-SHA-256 login.

``open_tls`` wraps a connected socket, reads the server's certificate and
lets ``ftclient.trust`` accept or refuse it before a single request is sent.
It never falls back to plaintext: a server that does not answer TLS fails the
connection with a message saying so. ``log_in`` runs the SCRAM exchange over
a greeted Channel; the password never leaves this process.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from common.io.channel import Channel
from common.protocol.errors import AuthFailed, ConnectionLost, ProtocolError, Timeout, WrongProtocol
from common.protocol.replies import AuthChallenge, AuthDone
from common.protocol.requests import AuthFinal, AuthStart
from ftclient.trust import default_known_servers

if TYPE_CHECKING:
    import ssl

# ssl, the TLS context and SCRAM are imported by the first connection that needs them:
# a plaintext, anonymous ``ls`` starts without them.


@dataclass(frozen=True)
class Security:
    """How a Client protects its connection; the defaults are plaintext and anonymous."""

    tls: bool = False
    fingerprint: str | None = None
    accept_new: bool = False
    known_servers: Path | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def pins_file(self) -> Path:
        return self.known_servers or default_known_servers()


def open_tls(sock: socket.socket, host: str, port: int, security: Security) -> ssl.SSLSocket:
    """Complete the TLS handshake and check the server's fingerprint; close ``sock`` on failure."""
    import ssl

    from common.io.tls import client_context, fingerprint_of
    from ftclient.trust import check_server

    try:
        tls = client_context().wrap_socket(sock, server_hostname=None)
    except TimeoutError:
        sock.close()
        raise Timeout(f"{host}:{port} did not complete a TLS handshake in time "
                      "(is it a TLS server?)") from None
    except ssl.SSLError as exc:
        sock.close()
        reason = exc.reason or str(exc)
        if reason in ("WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"):
            raise WrongProtocol(f"{host}:{port} does not speak TLS (a plaintext ft server?); "
                                "this client never falls back to plaintext") from None
        raise ConnectionLost(f"TLS handshake with {host}:{port} failed ({reason}); is it a "
                             "plaintext ft server, or not an ft server at all?") from None
    except OSError as exc:
        sock.close()
        raise ConnectionLost(f"{host}:{port} closed the connection during the TLS handshake "
                             f"(a plaintext ft server?): {exc.strerror or exc}") from None
    try:
        der = tls.getpeercert(binary_form=True)
        if not der:
            raise ConnectionLost(f"{host}:{port} presented no certificate")
        check_server(fingerprint_of(der), host, port, pinned_by_flag=security.fingerprint,
                     accept_new=security.accept_new, known_servers=security.pins_file)
    except BaseException:
        tls.close()
        raise
    return tls


def log_in(channel: Channel, user: str, password: str) -> str:
    """Prove the password by SCRAM-SHA-256; return the access granted ("ro" or "rw")."""
    from common.protocol.scram import MECHANISM, ScramClient

    exchange = ScramClient(user, password)
    channel.send(AuthStart(MECHANISM, exchange.first()).to_dict())
    challenge = AuthChallenge.from_dict(channel.receive())
    try:
        final = exchange.final(challenge.message)
    except ProtocolError as exc:
        raise AuthFailed(f"the server's login challenge is not acceptable: {exc.message}") \
            from None
    channel.send(AuthFinal(final).to_dict())
    done = AuthDone.from_dict(channel.receive())
    exchange.check(done.message)
    return done.access


def make_security(tls: bool, fingerprint: str | None, accept_new: bool,
                  known_servers: str | os.PathLike[str] | None, user: str | None,
                  password: str | None) -> Security:
    pin = None
    if fingerprint is not None:
        from common.io.tls import normalize_fingerprint

        pin = normalize_fingerprint(fingerprint)
        if pin is None:
            raise ValueError("fingerprint must be 64 hex digits (SHA-256), as `ftserver "
                             "fingerprint` prints it")
    if user is not None and password is None:
        raise ValueError("a user needs a password")
    return Security(
        tls=tls or pin is not None or accept_new, fingerprint=pin, accept_new=accept_new,
        known_servers=None if known_servers is None else Path(known_servers),
        user=user, password=password)
