"""One accepted connection: TLS if the server has it, then ft's session or HTTP's.

The first bytes tell the two apart (DESIGN: one port). An ft frame begins with its
4-byte big-endian length, whose first byte is zero (frames are under 16 MiB); an
HTTP request begins with a method name, an ASCII capital. Over TLS, ALPN answers
first (browsers, curl and wget offer ``http/1.1``); a client that offers none has
its first decrypted byte read and handed on to the session it picked. A plain HTTP
request to a TLS server is told, in HTTP, to use https.

Everything here runs inside the session's slot, under the handshake deadline, never
in the accept loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time

from common.io.tls import TLS_RECORD_HANDSHAKE
from common.protocol.errors import ConnectionLost, FrameError, FtError, Timeout
from ftserver.config import Limits
from ftserver.http.basiclogin import BasicLogins
from ftserver.http.plainrefusal import tell_http_client_to_use_https
from ftserver.http.session import HttpSession
from ftserver.net.throttling import ServerRates
from ftserver.net.tlsaccept import accept_tls
from ftserver.session.ftsession import Session
from ftserver.session.security import SessionSecurity
from ftserver.store.base import Share

log = logging.getLogger("ftserver.session")

HTTP_ALPN = "http/1.1"


def looks_like_http(first: int) -> bool:
    """Whether a connection's first byte starts an HTTP method (GET, PUT, OPTIONS...)."""
    return 0x41 <= first <= 0x5A


class Connection:
    """Runs one connection to its end in the session host; never raises from ``run``."""

    def __init__(self, sock: socket.socket, peer: str, storage: Share, limits: Limits,
                 server_name: str, stopping: threading.Event, security: SessionSecurity,
                 rates: ServerRates, http_enabled: bool, http_logins: BasicLogins) -> None:
        self.sock = sock
        self.http_logins = http_logins
        self.peer = peer
        self.storage = storage
        self.limits = limits
        self.server_name = server_name
        self.stopping = stopping
        self.security = security
        self.rates = rates
        self.http_enabled = http_enabled
        self._served: Session | HttpSession | None = None

    @property
    def in_request(self) -> bool:
        """Whether a request is being served (a shutdown closes idle connections at once)."""
        return self._served is not None and self._served.in_request

    def run(self) -> None:
        deadline = time.monotonic() + self.limits.handshake_timeout
        try:
            already_read, http = self._open(deadline)
        except (Timeout, ConnectionLost, FrameError) as exc:
            log.info("%s: closing, %s", self.peer, exc.message)
            with contextlib.suppress(OSError):
                self.sock.close()
            return
        except FtError as exc:
            log.warning("%s: closing: %s", self.peer, exc.message)
            with contextlib.suppress(OSError):
                self.sock.close()
            return
        if http:
            self._served = HttpSession(self.sock, self.peer, self.storage, self.limits,
                                       self.stopping, self.security, self.rates, already_read,
                                       self.http_logins, head_by=deadline)
        else:
            self._served = Session(self.sock, self.peer, self.storage, self.limits,
                                   self.server_name, self.stopping, self.security, self.rates,
                                   already_read=already_read, greet_by=deadline)
        self._served.run()

    def _open(self, deadline: float) -> tuple[bytes, bool]:
        """TLS if configured; return the bytes read to decide, and whether it is HTTP."""
        context = self.security.tls_context
        if context is None:
            first = _peek_first_byte(self.sock, deadline)
            return b"", self.http_enabled and looks_like_http(first)
        if self.http_enabled:
            first = _peek_first_byte(self.sock, deadline)
            if first != TLS_RECORD_HANDSHAKE and looks_like_http(first):
                tell_http_client_to_use_https(self.sock)
                raise FrameError("a plain HTTP request to a TLS server")
        self.sock = accept_tls(self.sock, context, deadline)
        if not self.http_enabled:
            return b"", False
        if self.sock.selected_alpn_protocol() == HTTP_ALPN:
            return b"", True
        already_read = _read_first_byte(self.sock, deadline)
        return already_read, looks_like_http(already_read[0])


def _peek_first_byte(sock: socket.socket, deadline: float) -> int:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("the client sent nothing in time")
    sock.settimeout(left)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        raise Timeout("the client sent nothing in time") from None
    except OSError as exc:
        raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None
    if not data:
        raise ConnectionLost("the client closed the connection before a request")
    return data[0]


def _read_first_byte(sock: ssl.SSLSocket | socket.socket, deadline: float) -> bytes:
    """The first decrypted byte (TLS sockets cannot peek): handed to whoever serves."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("the client sent nothing in time")
    sock.settimeout(left)
    try:
        data = sock.recv(1)
    except TimeoutError:
        raise Timeout("the client sent nothing in time") from None
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionLost(f"the connection dropped: {exc}") from None
    if not data:
        raise ConnectionLost("the client closed the connection before a request")
    return data
