"""The listening socket: accept, admit or refuse, hand over to the executor, shut down cleanly.

Admission control is decided here, before a session starts (the standard library's
pools queue without bound): at most ``max_sessions`` connections at once and
``limits.max_per_address`` from one address (admission.py counts them). When all
slots are taken, an idle connection (between requests, or not yet greeted) is
closed to make room, from the address holding the most. A connection over either
limit with nothing to close gets a "busy, retry" error reply, written without
blocking (rejecter.py), so a flood never stalls the accept loop. Nothing in
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

from common.io.ratelimit import format_rate
from common.protocol.discovery import Announcement
from ftserver.config import ServerConfig
from ftserver.net.admission import Admission
from ftserver.net.discovery import announced_host, start_responder
from ftserver.net.instance import hold_listener_lock, no_sessions_alive
from ftserver.net.tlscert import certificate_fingerprint
from ftserver.net.tlsrejecter import make_rejecter
from ftserver.net.workers import Executor, ProcessExecutor, ThreadExecutor, make_storage
from ftserver.session.security import prepare_security
from ftserver.startuplog import log_security

log = logging.getLogger("ftserver")


CLEANUP_INTERVAL = 3600.0


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

    def wakeup_fd(self) -> int:
        """For ``signal.set_wakeup_fd``: a signal that lands on another thread than the main
        one (Linux may pick any) still wakes the accept loop at once, so its handler runs
        now, not when the loop's 60 s select ends (a SIGTERM once waited that long)."""
        return self._wake_w.fileno()

    def _drain_wakeups(self) -> None:
        self._wake_r.setblocking(False)
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._wake_r.recv(4096):
                pass

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
                        elif key.fileobj is self._wake_r:
                            self._drain_wakeups()
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
        if reason is not None and self.admission.full(address):
            reason = self._make_room(session_id, address, peer)
        if reason is not None:
            log.info("%s: refused, %s", peer, reason)
            self._rejecter.reject(sock, reason)
            return
        self.executor.submit(session_id, sock, peer)

    def _make_room(self, session_id: int, address: str, peer: str) -> str | None:
        """All slots are taken: close one idle connection (no request in it), from the
        address holding the most, and admit ``peer`` in its place. Returns the reason
        for refusing if that fails (nothing idle), else None."""
        candidates = self.admission.eviction_candidates()
        # Named now: a worker process may report the closed session ended (released)
        # before evict_idle returns.
        addresses = {sid: self.admission.address_of(sid) for sid in candidates}
        evicted = self.executor.evict_idle(candidates)
        if evicted is None:
            return f"the server is serving its limit of {self.admission.max_total} connections"
        log.info("%s: closed an idle connection from %s to make room", peer,
                 addresses.get(evicted))
        self.admission.release(evicted)
        return self.admission.try_admit(session_id, address)

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
        removed = self.storage.expire(self.config.partial_ttl)
        if removed:
            log.info("removed %d partial upload(s) older than %.0f s", removed,
                     self.config.partial_ttl)

    def _log_startup(self) -> None:
        config = self.config
        host, port = self.address
        log.info("ftserver sharing %s as %r (%s executor, %d workers, up to %d connections, "
                 "%d per address)", config.root, config.name, config.executor, config.workers,
                 config.max_sessions, config.limits.max_per_address)
        log_security(config)
        if config.limits.rate or config.limits.total_rate:
            log.info("bandwidth limits: %s per connection, %s in total each way",
                     format_rate(config.limits.rate), format_rate(config.limits.total_rate))
        if self._discovery is not None:
            log.info("discovery: answering on UDP %s", ", ".join(
                f"{address}:{udp_port}" for address, udp_port in self._discovery.addresses))
        log.info("listening on %s:%d", host, port)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
