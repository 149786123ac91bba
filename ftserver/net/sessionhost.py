"""Runs sessions on threads inside one process and drains them at shutdown.

The thread executor uses one SessionHost in the server process; the process
executor runs one in each worker process. Draining closes idle connections at
once, gives requests in flight up to the grace period, then cuts the rest (their
partials stay resumable). When the listener is full it may ask a host to close
one idle connection to make room (``evict_idle``).
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence

from ftserver.config import Limits
from ftserver.http.basiclogin import BasicLogins
from ftserver.net.connection import Connection
from ftserver.net.throttling import ServerRates
from ftserver.session.security import SessionSecurity
from ftserver.store.base import Share

log = logging.getLogger("ftserver.host")


class SessionHost:
    def __init__(self, storage: Share, limits: Limits, server_name: str,
                 security: SessionSecurity, rates: ServerRates | None = None, *,
                 http_enabled: bool = True) -> None:
        self.security = security
        self.http_enabled = http_enabled
        self.http_logins = BasicLogins(security)
        """HTTPS logins this process checked lately (browsers send one with each request)."""
        self.storage = storage
        self.rates = rates or ServerRates(limits)
        self.limits = limits
        self.server_name = server_name
        self.stopping = threading.Event()
        self._lock = threading.Condition()
        self._live: dict[int, Connection] = {}
        self._threads: dict[int, threading.Thread] = {}

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._live)

    def run_session(
        self, session_id: int, sock: socket.socket, peer: str, on_done: Callable[[int], None]
    ) -> None:
        session = Connection(sock, peer, self.storage, self.limits, self.server_name,
                             self.stopping, self.security, self.rates, self.http_enabled,
                             self.http_logins)
        thread = threading.Thread(
            target=self._run, args=(session_id, session, on_done),
            name=f"session-{session_id}", daemon=True,
        )
        with self._lock:
            self._live[session_id] = session
            self._threads[session_id] = thread
        thread.start()

    def _run(self, session_id: int, session: Connection, on_done: Callable[[int], None]) -> None:
        try:
            session.run()
        finally:
            with self._lock:
                self._live.pop(session_id, None)
                self._threads.pop(session_id, None)
                self._lock.notify_all()
            on_done(session_id)

    def evict_idle(self, candidates: Sequence[int]) -> int | None:
        """Close the first of ``candidates`` (session ids) that this host runs and that holds
        no request (between requests, or not yet greeted); return its id, or None."""
        with self._lock:
            for session_id in candidates:
                session = self._live.get(session_id)
                if session is not None and not session.in_request:
                    log.info("%s: closing this idle connection to make room for another",
                             session.peer)
                    _cut(session.sock)
                    return session_id
        return None

    def _live_after(self, wait: float) -> list[Connection]:
        """The sessions still running once they all ended or ``wait`` seconds passed."""
        deadline = time.monotonic() + wait
        with self._lock:
            while self._live and (left := deadline - time.monotonic()) > 0:
                self._lock.wait(left)
            return list(self._live.values())

    def drain(self, grace: float) -> None:
        """Stop serving: close idle sessions now, wait up to ``grace`` for the rest, cut them."""
        self.stopping.set()
        with self._lock:
            idle = [s for s in self._live.values() if not s.in_request]
        for session in idle:
            _cut(session.sock)
        remaining = self._live_after(grace)
        if remaining:
            log.info("grace period over: closing %d transfer(s); they can be resumed",
                     len(remaining))
        for session in remaining:  # an upload ends at once and says why, while it can
            _stop_reading(session.sock)
        for session in self._live_after(CUT_WAIT):  # downloads, and what did not notice
            _cut(session.sock)
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout=5.0)


CUT_WAIT = 1.0
"""Seconds sessions cut at shutdown have to end by themselves before both ways are shut."""

_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
"""SO_LINGER on, 0 s: closing sends a reset, never a FIN that leaves the peer waiting."""


def _cut(sock: socket.socket) -> None:
    """Stop the connection both ways; its close then resets it.

    Without the reset, a socket shut both ways and then closed lingers in FIN-WAIT-2
    with its receive window shut, and a client still sending an upload blocked there
    for a minute (until the kernel's fin timeout) before it learnt of the cut."""
    _shut(sock, socket.SHUT_RDWR)


def _stop_reading(sock: socket.socket) -> None:
    """Stop reading only: a session receiving an upload sees its end at once and can still
    tell the client why (the server is shutting down) before it closes, with a reset."""
    _shut(sock, socket.SHUT_RD)


def _shut(sock: socket.socket, how: int) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
        # The plain socket's shutdown also for a TLS socket: SSLSocket.shutdown would drop
        # its TLS state under the feet of the session thread still using it.
        socket.socket.shutdown(sock, how)
    except OSError:
        pass
