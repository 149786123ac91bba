"""The listening socket: accept, admit or refuse, hand over to the executor, shut down cleanly.

Admission control lives here (the standard library's pools queue without bound):
at most ``max_sessions`` connections at once and ``limits.max_per_address`` from
one address. A connection over either limit gets a "busy, retry" error reply,
written without blocking, so a flood never stalls the accept loop. Nothing in
this file reads or writes files in the share.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import selectors
import socket
import threading
import time
from collections import Counter

from common.io.ratelimit import format_rate
from common.protocol.discovery import Announcement
from common.protocol.errors import Busy
from common.protocol.frames import encode_frame
from common.protocol.messages import error_reply
from ftserver.config import ServerConfig
from ftserver.net.discovery import announced_host, start_responder
from ftserver.net.instance import hold_listener_lock, no_sessions_alive
from ftserver.net.tlscert import certificate_fingerprint
from ftserver.net.workers import Executor, ProcessExecutor, ThreadExecutor, make_storage
from ftserver.session.security import prepare_security
from ftserver.startuplog import log_security

log = logging.getLogger("ftserver")

CLEANUP_INTERVAL = 3600.0


class Admission:
    """Counts live connections, overall and per address."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._lock = threading.Lock()
        self._by_address: Counter[str] = Counter()
        self._address_of: dict[int, str] = {}

    def try_admit(self, session_id: int, address: str) -> str | None:
        """Admit and return None, or return the reason for refusing."""
        with self._lock:
            if len(self._address_of) >= self.max_total:
                return f"the server is serving its limit of {self.max_total} connections"
            if self._by_address[address] >= self.max_per_address:
                return (f"your address already has {self.max_per_address} connections "
                        "open, the most allowed")
            self._by_address[address] += 1
            self._address_of[session_id] = address
            return None

    def release(self, session_id: int) -> None:
        with self._lock:
            address = self._address_of.pop(session_id, None)
            if address is not None:
                self._by_address[address] -= 1
                if not self._by_address[address]:
                    del self._by_address[address]

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._address_of)


class Rejecter:
    """Refuses connections over a limit with a "busy" reply, never stalling the accept loop.

    The reply (a small frame) is written at once without blocking, then the write side
    is shut. Closing straight away could turn into a reset that destroys the reply
    before the client reads it (its hello is still unread), so a single thread keeps
    each refused socket for at most LINGER seconds, reading and dropping at most
    LINGER_BYTES, and closes it at end of stream or deadline, whichever comes first.
    """

    LINGER = 1.0
    LINGER_BYTES = 64 * 1024
    MAX_LINGERING = 512

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lingering: dict[socket.socket, tuple[float, int]] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rejecter", daemon=True)
        self._thread.start()

    def reject(self, sock: socket.socket, reason: str) -> None:
        try:
            sock.setblocking(False)
            sock.send(encode_frame(error_reply(Busy(f"busy: {reason}; retry shortly"))))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        with self._lock:
            if self._stopped or len(self._lingering) >= self.MAX_LINGERING:
                sock.close()
                return
            self._lingering[sock] = (time.monotonic() + self.LINGER, 0)
            self._selector.register(sock, selectors.EVENT_READ)
        self._wake()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._wake()
        self._thread.join(timeout=5.0)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopped:
                    break
                deadlines = [deadline for deadline, _ in self._lingering.values()]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                else:
                    self._drain(key.fileobj)  # type: ignore[arg-type]
            self._close_expired()
        with self._lock:
            for sock in list(self._lingering):
                self._forget(sock)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drain(self, sock: socket.socket) -> None:
        with self._lock:
            deadline, taken = self._lingering[sock]
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            taken += len(data)
            if not data or taken > self.LINGER_BYTES:
                self._forget(sock)
            else:
                self._lingering[sock] = (deadline, taken)

    def _close_expired(self) -> None:
        now = time.monotonic()
        with self._lock:
            for sock, (deadline, _) in list(self._lingering.items()):
                if deadline <= now:
                    self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        """Unregister and close; the caller holds the lock."""
        self._selector.unregister(sock)
        del self._lingering[sock]
        sock.close()


class Server:
    """Binds at construction (so ``address`` is known), serves until ``request_shutdown``."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self._ids = itertools.count(1)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._stop = threading.Event()
        self.admission = Admission(config.max_sessions, config.limits.max_per_address)
        self._listener_lock = hold_listener_lock(str(config.state_dir))
        self.config = config = prepare_security(config)
        self.storage = make_storage(config)
        self.listen_sock = socket.create_server(
            (config.host, config.port), family=_family(config.host), backlog=128
        )
        self.address: tuple[str, int] = self.listen_sock.getsockname()[:2]
        executor_cls = ThreadExecutor if config.executor == "thread" else ProcessExecutor
        self.executor: Executor = executor_cls(config, self.admission.release)
        from ftserver.net.tlsrejecter import make_rejecter  # it builds on Rejecter, above

        self._rejecter = make_rejecter(config)
        self._last_cleanup = -math.inf  # the first loop cleans up
        tls = config.tls
        self._fingerprint = certificate_fingerprint(tls.cert) if tls.enabled and tls.cert else None
        self._discovery = (start_responder(config.host, config.discovery.port, self.announcement)
                           if config.discovery.enabled else None)

    def announcement(self) -> Announcement:
        """What discovery tells clients: where to connect, and the certificate to pin."""
        return Announcement(name=self.config.name, host=announced_host(self.config.host),
                            port=self.address[1], tls=self.config.tls.enabled,
                            fingerprint=self._fingerprint)

    def request_shutdown(self) -> None:
        """Ask ``serve_forever`` to return; safe to call from a signal handler or thread."""
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def serve_forever(self) -> None:
        """Accept until asked to stop, then drain sessions for up to ``shutdown_grace``."""
        self._remove_leftovers()
        self.executor.start()
        if self._discovery is not None:
            self._discovery.start()
        self._log_startup()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.listen_sock, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._stop.is_set():
                    self._maybe_cleanup()
                    for key, _ in selector.select(timeout=60.0):
                        if key.fileobj is self.listen_sock:
                            self._accept()
        finally:
            self.listen_sock.close()
            if self._discovery is not None:
                self._discovery.stop()
            log.info("shutting down: waiting up to %.0f s for %d connection(s)",
                     self.config.shutdown_grace, self.admission.active)
            self.executor.stop(self.config.shutdown_grace)
            self._rejecter.stop()
            self._wake_r.close()
            self._wake_w.close()
            log.info("stopped")

    def _accept(self) -> None:
        try:
            sock, addr = self.listen_sock.accept()
        except OSError as exc:  # EMFILE, ECONNABORTED...: keep serving
            log.warning("accept failed: %s", exc)
            time.sleep(0.05)
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        address = addr[0]
        peer = f"{address}:{addr[1]}"
        session_id = next(self._ids)
        reason = self.admission.try_admit(session_id, address)
        if reason is not None:
            log.info("%s: refused, %s", peer, reason)
            self._rejecter.reject(sock, reason)
            return
        self.executor.submit(session_id, sock, peer)

    def _remove_leftovers(self) -> None:
        if not no_sessions_alive(str(self.config.state_dir)):
            log.warning("sessions of an earlier run are still alive (orphaned workers?): "
                        "leaving its lock files and staged copies alone")
            return
        removed = self.storage.remove_leftovers()
        if removed:
            log.info("removed %d staged copy(ies) left in the share by an earlier run", removed)

    def _maybe_cleanup(self) -> None:
        now = time.monotonic()
        if now - self._last_cleanup < CLEANUP_INTERVAL:
            return
        self._last_cleanup = now
        removed = self.storage.remove_stale_partials(self.config.partial_ttl)
        if removed:
            log.info("removed %d partial upload(s) older than %.0f s", removed,
                     self.config.partial_ttl)
        self.storage.evict_partials()

    def _log_startup(self) -> None:
        config = self.config
        host, port = self.address
        log.info("ftserver sharing %s as %r (%s executor, %d workers, up to %d connections, "
                 "%d per address)", config.root, config.name, config.executor, config.workers,
                 config.max_sessions, config.limits.max_per_address)
        log_security(config)
        if not self.storage.same_filesystem:
            log.warning("state_dir is on another filesystem than the share: each upload is "
                        "copied once more when it is published")
        if config.limits.rate or config.limits.total_rate:
            log.info("bandwidth limits: %s per connection, %s in total each way",
                     format_rate(config.limits.rate), format_rate(config.limits.total_rate))
        if self._discovery is not None:
            log.info("discovery: answering on UDP %s", ", ".join(
                f"{address}:{udp_port}" for address, udp_port in self._discovery.addresses))
        log.info("listening on %s:%d", host, port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
