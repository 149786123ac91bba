"""One HTTP connection: read a request, answer it, again while the client keeps it alive.

Every request is confined to what its grant allows: over plain HTTP exactly what
``anonymous`` may do (no password ever crosses the LAN in clear, so none is asked
for or accepted); the share's names, the one download and the one upload do the
rest. A state-changing request from another site's page is refused (CSRF). Bad
input gets its status and a one-line reason, never a traceback; a broken head or
body ends the connection, and only it.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time

from common.protocol.errors import (
    BadPath,
    ConnectionLost,
    FtError,
    PermissionDenied,
    ProtocolError,
    Timeout,
)
from common.protocol.requests import GetRequest, ListDir, PutRequest, Remove
from ftserver.config import Limits
from ftserver.http.assets import serve_asset
from ftserver.http.exchange import HeadError, HttpExchange, read_head
from ftserver.http.fileget import serve_file
from ftserver.http.fileput import serve_put
from ftserver.http.folderpage import serve_folder
from ftserver.http.headers import PAGE
from ftserver.http.statuses import RETRY_AFTER_SECONDS, status_of
from ftserver.http.target import Target, parse_target, url_path
from ftserver.net.throttling import ConnectionThrottles, ServerRates
from ftserver.session.security import Grant, SessionSecurity
from ftserver.store.base import Share

log = logging.getLogger("ftserver.http")
transfer_log = logging.getLogger("ftserver.transfer")

KEEP_ALIVE_IDLE = 75.0
"""Seconds an idle keep-alive connection is kept (nginx's default), at most idle_timeout."""
UNSAFE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE"})
METHODS = ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
ALLOWED = ", ".join(METHODS)


class HttpSession:
    def __init__(self, sock: socket.socket, peer: str, storage: Share, limits: Limits,
                 stopping: threading.Event, security: SessionSecurity, rates: ServerRates,
                 already_read: bytes, head_by: float | None = None) -> None:
        self.sock = sock
        self.peer = peer
        self.base_storage = storage
        self.limits = limits
        self.stopping = stopping
        self.security = security
        self.throttles: ConnectionThrottles = rates.for_connection()
        self.already_read = already_read
        self.head_by = head_by
        """When the first request's head must be in: the connection's handshake deadline."""
        self.in_request = False
        self.tls = isinstance(sock, ssl.SSLSocket)

    def run(self) -> None:
        """Serve requests until the connection ends; never raises."""
        buffered = self.already_read
        first_wait = self.limits.handshake_timeout
        head_by = self.head_by
        try:
            while not self.stopping.is_set():
                self.in_request = False
                try:
                    exchange = read_head(self.sock, buffered, first_wait,
                                         self.limits.handshake_timeout, head_by)
                except HeadError as exc:
                    log.info("%s: bad HTTP request, closing: %s", self.peer, exc.message)
                    exc.answer(self.sock)
                    return
                if exchange is None:
                    return
                self.in_request = True
                self.sock.settimeout(self.limits.transfer_timeout)
                self._serve(exchange)
                if not exchange.keep_alive:
                    return
                buffered = exchange.leftover()
                head_by = None  # later heads: each its own handshake_timeout
                first_wait = min(KEEP_ALIVE_IDLE, self.limits.idle_timeout)
        except (ConnectionLost, Timeout) as exc:
            log.debug("%s: %s", self.peer, exc.message)
        except Exception:
            log.exception("%s: internal error in an HTTP session", self.peer)
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def _serve(self, exchange: HttpExchange) -> None:
        started = time.monotonic()
        name = "?"
        try:
            if exchange.method not in METHODS:  # whatever its target (CONNECT's is no path)
                raise _not_allowed(exchange, ALLOWED)
            if exchange.method == "OPTIONS" and exchange.target == b"*":
                exchange.respond(204, [("Allow", ALLOWED)])  # about the server as a whole
                return
            target = parse_target(exchange.target)
            name = target.name
            self._refuse_cross_site(exchange)
            self._route(exchange, target, self._grant(exchange))
        except ConnectionLost:
            raise
        except FtError as exc:  # a body that stopped coming (Timeout) included: 408
            self._refuse(exchange, exc)
        except Exception:
            log.exception("%s: internal error serving %s", self.peer, exchange.method)
            if exchange.status == 0:
                exchange.close_after = True
                exchange.respond(500, [], b"internal server error\n")
            else:
                raise ConnectionLost("the answer broke off") from None
        finally:
            self._log(exchange, name, started)

    def _grant(self, exchange: HttpExchange) -> Grant:
        # Over plain HTTP nothing but anonymous: a password would cross the LAN in clear.
        # Over HTTPS, logins come with HTTP Basic (not yet): anonymous until then.
        return self.security.anonymous

    def _refuse_cross_site(self, exchange: HttpExchange) -> None:
        """A state-changing request sent by another site's page (CSRF): refused."""
        if exchange.method not in UNSAFE_METHODS:
            return
        if exchange.header("sec-fetch-site") == "cross-site":
            raise PermissionDenied("a request from another site may not change the share")
        origin = exchange.header("origin")
        if origin is None:
            return  # curl, wget, scripts: no page sent it
        host = exchange.header("host") or ""
        scheme = "https" if self.tls else "http"
        if origin != f"{scheme}://{host}":
            raise PermissionDenied("a request from another site may not change the share")

    def _route(self, exchange: HttpExchange, target: Target, grant: Grant) -> None:
        method = exchange.method
        storage = self.base_storage
        if target.asset is not None:
            if method not in ("GET", "HEAD"):
                raise _not_allowed(exchange, "GET, HEAD")
            serve_asset(exchange, target.asset)
            return
        if method in ("GET", "HEAD"):
            entry = storage.stat(target.name) if target.name else None
            is_folder = entry is None or entry.type == "dir"
            self.security.check_access(ListDir.OP if is_folder else GetRequest.OP, grant)
            if is_folder and not target.folder:
                location = url_path(target.name, folder=True)
                exchange.respond(301, [("Location", location)],
                                 f"moved to {location}\n".encode())
            elif is_folder:
                serve_folder(exchange, storage, target)
            elif target.folder:
                raise BadPath(f"{target.name!r} is a file, not a folder")
            else:
                serve_file(exchange, storage, target.name, self.limits.transfer_timeout,
                           self.throttles.download)
        elif method == "PUT":
            self.security.check_access(PutRequest.OP, grant)
            serve_put(exchange, storage, target, grant.user or "",
                      self.limits.transfer_timeout, self.throttles.upload)
        elif method == "DELETE":
            self.security.check_access(Remove.OP, grant)
            storage.remove(target.name, recursive=False)
            exchange.respond(204, [])
        elif method == "OPTIONS":
            exchange.respond(204, [("Allow", ALLOWED)])
        else:
            raise _not_allowed(exchange, ALLOWED)

    def _refuse(self, exchange: HttpExchange, error: FtError) -> None:
        if exchange.status != 0:
            raise ConnectionLost(f"the answer broke off: {error.message}")
        status = getattr(error, "http_status", None) or status_of(error)
        headers = list(PAGE)
        if status == 503:
            headers.append(("Retry-After", RETRY_AFTER_SECONDS))
        if status == 405:
            headers.append(("Allow", getattr(error, "allow", "GET, HEAD")))
        message = error.message
        if status == 403 and not self.tls and self.security.users:
            message += "; to log in, use https://"
        exchange.respond(status, headers, f"{message}\n".encode())

    def _log(self, exchange: HttpExchange, name: str, started: float) -> None:
        seconds = time.monotonic() - started
        transfer_log.info("op=http peer=%s method=%s path=%r status=%d bytes=%d "
                          "seconds=%.3f", self.peer, exchange.method[:16], name[:200],
                          exchange.status, exchange.sent, seconds)


def _not_allowed(exchange: HttpExchange, allow: str) -> FtError:
    error = ProtocolError(f"{exchange.method[:16]} is not allowed here")
    error.http_status = 405  # type: ignore[attr-defined]
    error.allow = allow  # type: ignore[attr-defined]
    return error
