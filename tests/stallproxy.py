"""An in-test TCP proxy on 127.0.0.1 whose first connection goes silent, as a dead link does.

``StallingProxy(target_port, stall_after=N)`` relays every connection to the
target. The first one forwards N client bytes, then stops moving anything either
way while keeping both sockets open: neither peer sees a reset or an end, the
server's session waits for bytes that never come (a Wi-Fi link that went out of
range, a laptop that slept). Later connections are relayed whole. Bounded: a few
connections at most, every wait polls a stop flag, ``stop()`` closes everything
and joins every thread.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Iterator

POLL = 0.05
CHUNK = 64 * 1024


class StallingProxy:
    def __init__(self, target_port: int, *, stall_after: int, max_connections: int = 6) -> None:
        self.target = ("127.0.0.1", target_port)
        self.stall_after = stall_after
        self.max_connections = max_connections
        self.stalled = threading.Event()
        """Set once the first connection has gone silent."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL)
        self.port: int = self._listener.getsockname()[1]
        self._start(self._accept_loop)

    def _start(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        accepted = 0
        while not self._stop.is_set() and accepted < self.max_connections:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted += 1
            self._start(self._relay, client, accepted == 1)

    def _relay(self, client: socket.socket, stalls: bool) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5.0)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, upstream]
        budget = self.stall_after if stalls else None
        peers = {client: upstream, upstream: client}
        while not self._stop.is_set():
            if budget is not None and budget <= 0:
                self.stalled.set()
                self._stop.wait()  # silent: hold both ends open, move nothing
                return
            readable, _, _ = select.select(list(peers), [], [], POLL)
            for sock in readable:
                want = CHUNK if budget is None or sock is not client else min(CHUNK, budget)
                try:
                    data = sock.recv(want)
                except OSError:
                    return
                if not data:
                    return
                try:
                    peers[sock].sendall(data)
                except OSError:
                    return
                if budget is not None and sock is client:
                    budget -= len(data)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            threads, sockets = list(self._threads), list(self._sockets)
        for thread in threads:
            thread.join(timeout=5.0)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._listener.close()


@contextlib.contextmanager
def stalling_proxy(target_port: int, **options: int) -> Iterator[StallingProxy]:
    proxy = StallingProxy(target_port, **options)
    try:
        yield proxy
    finally:
        proxy.stop()
