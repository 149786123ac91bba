"""One HTTP connection: read a request, answer it, again while the client keeps it alive.

Every request is confined to what its grant allows: over plain HTTP exactly what
``anonymous`` may do (no password ever crosses the LAN in clear, so none is asked
for or accepted); the share's names, the one download and the one upload do the
rest; tus's resumable uploads (POST to a folder, then /.ft-tus/TOKEN) are tus.py's.
A state-changing request from another site's page is refused (CSRF). Bad
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
from common.protocol.requests import GetRequest, ListDir, MakeDir, Move, PutRequest, Remove
from ftserver.config import Limits
from ftserver.http.assets import serve_asset
from ftserver.http.basiclogin import BasicLogins
from ftserver.http.dav import DavRequest, with_submitted_tokens
from ftserver.http.davlock import serve_lock, serve_unlock
from ftserver.http.davnames import serve_copy_or_move, serve_mkcol
from ftserver.http.davnames import serve_delete as dav_delete
from ftserver.http.davprops import serve_propfind, serve_proppatch
from ftserver.http.exchange import HeadError, HttpExchange, read_head
from ftserver.http.fileget import serve_file
from ftserver.http.fileput import serve_put
from ftserver.http.folderpage import serve_folder
from ftserver.http.headers import PAGE
from ftserver.http.statuses import RETRY_AFTER_SECONDS, status_of
from ftserver.http.target import Target, parse_target, url_path
from ftserver.http.tus import (
    TusContext,
    options_headers,
    serve_creation,
    serve_delete,
    serve_head,
    serve_patch,
)
from ftserver.http.tusheaders import VERSION as TUS_VERSION
from ftserver.http.tusrecords import TusRecords
from ftserver.net.throttling import ConnectionThrottles, ServerRates
from ftserver.ops.upload import UploadPlan, upload_chunks
from ftserver.session.security import Grant, SessionSecurity
from ftserver.store.base import Share

log = logging.getLogger("ftserver.http")
transfer_log = logging.getLogger("ftserver.transfer")

KEEP_ALIVE_IDLE = 75.0
"""Seconds an idle keep-alive connection is kept (nginx's default), at most idle_timeout."""
UNSAFE_METHODS = frozenset({"PUT", "POST", "PATCH", "DELETE", "PROPPATCH", "MKCOL", "COPY",
                            "MOVE", "LOCK", "UNLOCK"})
WEBDAV_WRITES = frozenset({"PUT", "DELETE", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK",
                           "UNLOCK"})
"""Methods whose writes may fall under a WebDAV lock: they submit tokens with ``If``."""
OP_OF_METHOD = {"GET": "get", "HEAD": "get", "PUT": "put", "POST": "put", "PATCH": "put",
                "DELETE": "remove", "PROPFIND": "list", "PROPPATCH": "set_props",
                "MKCOL": "mkdir", "COPY": "copy", "MOVE": "move", "LOCK": "lock",
                "UNLOCK": "unlock"}
"""The log line's ``op=``, in ft's own words, beside HTTP's method and status."""
METHODS = ("GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS", "PROPFIND",
           "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK")
DAV_HEADERS = [("DAV", "1, 2"), ("MS-Author-Via", "DAV")]
DAV_OPS = {"DELETE": Remove.OP, "MKCOL": MakeDir.OP, "COPY": PutRequest.OP, "MOVE": Move.OP,
           "PROPPATCH": PutRequest.OP, "LOCK": PutRequest.OP, "UNLOCK": PutRequest.OP}
"""The ft operation whose access each WebDAV write needs (ro users do none of them)."""
ALLOWED = ", ".join(METHODS)


class HttpSession:
    def __init__(self, sock: socket.socket, peer: str, storage: Share, limits: Limits,
                 stopping: threading.Event, security: SessionSecurity, rates: ServerRates,
                 already_read: bytes, logins: BasicLogins,
                 head_by: float | None = None) -> None:
        self.sock = sock
        self.logins = logins
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
        self.tus_records = TusRecords(security.state_dir, security.upload_ttl)

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
                    if exchange.status and not exchange.body_taken:
                        _linger(self.sock)
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
        who = "-"
        try:
            if exchange.method not in METHODS:  # whatever its target (CONNECT's is no path)
                raise _not_allowed(exchange, ALLOWED)
            if exchange.method == "OPTIONS" and exchange.target == b"*":
                exchange.respond(204, [("Allow", ALLOWED), *DAV_HEADERS])  # the whole server
                return
            target = parse_target(exchange.target)
            name = target.name
            self._refuse_cross_site(exchange)
            grant = self._grant(exchange)
            who = grant.user or "-"
            storage = (self.base_storage.confined_to(grant.home) if grant.home
                       else self.base_storage)
            self._route(exchange, target, grant, storage)
        except ConnectionLost as exc:  # a body or an answer cut off: never "ok" in the log
            exchange.result = exc.code
            raise
        except FtError as exc:  # a body that stopped coming (Timeout) included: 408
            self._refuse(exchange, exc)
        except Exception:
            log.exception("%s: internal error serving %s", self.peer, exchange.method)
            exchange.result = "internal"
            if exchange.status == 0:
                exchange.close_after = True
                exchange.respond(500, [], b"internal server error\n")
            else:
                raise ConnectionLost("the answer broke off") from None
        finally:
            self._log(exchange, name, who, started)

    def _grant(self, exchange: HttpExchange) -> Grant:
        """Over plain HTTP, anonymous and nothing else: a password would cross the LAN in
        clear, so none is asked for or taken. Over HTTPS, an HTTP Basic login if sent."""
        authorization = exchange.header("authorization")
        if authorization is None:
            return self.security.anonymous
        if not self.tls:
            raise PermissionDenied("passwords are not taken over plain HTTP, where anyone on "
                                   "the network could read them: use https://")
        return self.logins.grant_for(authorization, self.peer.rsplit(":", 1)[0])

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

    def _route(self, exchange: HttpExchange, target: Target, grant: Grant,
               storage: Share) -> None:
        method = exchange.method
        if target.asset is not None:
            if method not in ("GET", "HEAD"):
                raise _not_allowed(exchange, "GET, HEAD")
            serve_asset(exchange, target.asset)
            return
        if target.upload is not None:
            self._route_tus(exchange, target.upload, grant, storage)
            return
        if method in WEBDAV_WRITES:
            storage = with_submitted_tokens(exchange, storage, target, grant.user or "")
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
        elif method == "POST":
            self.security.check_access(PutRequest.OP, grant)
            serve_creation(exchange, self._tus(grant, storage), target)
        elif method == "OPTIONS":
            exchange.respond(204, [("Allow", ALLOWED), *DAV_HEADERS, *options_headers()])
        else:
            self._route_dav(exchange, target, grant, storage)

    def _route_dav(self, exchange: HttpExchange, target: Target, grant: Grant,
                   storage: Share) -> None:
        """WebDAV's methods (dav.py), each under the access its ft operation needs."""
        method = exchange.method
        request = DavRequest(exchange, target, storage, grant.user or "",
                             self.limits.transfer_timeout)
        if method == "PROPFIND":
            self.security.check_access(ListDir.OP, grant)
            serve_propfind(request, storage.disk_usage)
            return
        self.security.check_access(DAV_OPS[method], grant)
        if method == "DELETE":
            dav_delete(request)
        elif method == "MKCOL":
            serve_mkcol(request)
        elif method in ("COPY", "MOVE"):
            serve_copy_or_move(request, move=method == "MOVE")
        elif method == "PROPPATCH":
            serve_proppatch(request)
        elif method == "LOCK":
            serve_lock(request, lambda holder, name: self._empty_file(holder, name, grant))
        elif method == "UNLOCK":
            serve_unlock(request)
        else:
            raise _not_allowed(exchange, ALLOWED)

    def _empty_file(self, storage: Share, name: str, grant: Grant) -> None:
        """An empty file published by the one upload (a LOCK of a name not there yet)."""
        upload_chunks(storage, UploadPlan(name, 0, time.time(), None, grant.user or "",
                                          resumable=False), [])

    def _route_tus(self, exchange: HttpExchange, token: str, grant: Grant,
                   storage: Share) -> None:
        """A tus upload's own URL (tus.py): only its owner reaches it."""
        method = exchange.method
        if method == "OPTIONS":
            exchange.respond(204, [("Allow", "HEAD, PATCH, DELETE, OPTIONS"),
                                   *options_headers()])
            return
        self.security.check_access(PutRequest.OP, grant)
        tus = self._tus(grant, storage)
        if method == "HEAD":
            serve_head(exchange, tus, token)
        elif method == "PATCH":
            serve_patch(exchange, tus, token)
        elif method == "DELETE":
            serve_delete(exchange, tus, token)
        else:
            raise _not_allowed(exchange, "HEAD, PATCH, DELETE, OPTIONS")

    def _tus(self, grant: Grant, storage: Share) -> TusContext:
        """What a tus request works with: the grant's own view of the share (its home)."""
        return TusContext(storage, self.tus_records, grant.user or "",
                          self.limits.transfer_timeout, self.throttles.upload)

    def _refuse(self, exchange: HttpExchange, error: FtError) -> None:
        if exchange.status != 0:
            raise ConnectionLost(f"the answer broke off: {error.message}")
        exchange.result = error.code
        status = getattr(error, "http_status", None) or status_of(error)
        headers = list(PAGE)
        if status == 503:
            headers.append(("Retry-After", RETRY_AFTER_SECONDS))
        if status == 405:
            headers.append(("Allow", getattr(error, "allow", "GET, HEAD")))
        if exchange.header("tus-resumable") is not None:
            headers.append(("Tus-Resumable", TUS_VERSION))
        message = error.message
        logged_in = exchange.header("authorization") is not None
        if self.tls and (status == 401 or (status == 403 and not logged_in
                                           and self.security.users)):
            status = 401  # a browser then asks for a name and password, over TLS only
            headers.append(("WWW-Authenticate", 'Basic realm="ft", charset="UTF-8"'))
        elif status == 403 and not self.tls and self.security.users and not logged_in:
            message += "; to log in, use https://"
        exchange.respond(status, headers, f"{message}\n".encode())

    def _log(self, exchange: HttpExchange, name: str, who: str, started: float) -> None:
        seconds = time.monotonic() - started
        op = OP_OF_METHOD.get(exchange.method, "http")
        transfer_log.info("op=%s peer=%s user=%s method=%s path=%r status=%d bytes=%d "
                          "seconds=%.3f result=%s", op, self.peer, who, exchange.method[:16],
                          name[:200], exchange.status, exchange.sent, seconds, exchange.result)


def _not_allowed(exchange: HttpExchange, allow: str) -> FtError:
    error = ProtocolError(f"{exchange.method[:16]} is not allowed here")
    error.http_status = 405  # type: ignore[attr-defined]
    error.allow = allow  # type: ignore[attr-defined]
    return error


LINGER_SECONDS = 1.0
LINGER_BYTES = 1 << 20


def _linger(sock: socket.socket) -> None:
    """After answering a request whose body was not read (a refused PUT), close gently:
    stop writing, then read and drop what the client still sends, for a second or a MiB
    at most, so the close is not a reset that could destroy the answer before the
    client reads it (as the rejecter does for refused connections)."""
    try:
        sock.shutdown(socket.SHUT_WR)  # (over TLS this drops the TLS layer: we only drain)
        deadline = time.monotonic() + LINGER_SECONDS
        taken = 0
        while taken < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                return
            taken += len(data)
    except (OSError, ValueError):
        pass
