"""An in-test TCP proxy on 127.0.0.1 that can cut a connection after an exact byte count.

``CuttingProxy(target_port, cut_after=N, direction="c2s")`` forwards every
connection it accepts to the target, both ways. In the budgeted direction it
forwards exactly N bytes per connection, waits until the kernel has handed
them to the peer, then resets both sides (SO_LINGER 0, so each peer sees a
TCP reset, as when a Wi-Fi link dies). Without ``cut_after`` it forwards
everything. Data is relayed through one bounded buffer per direction, so a
peer that stops reading never makes the proxy buffer without limit.

``cut_first=K`` cuts only the first K connections and relays later ones whole
(a link that drops a few times, then holds). ``cut_share=P`` instead cuts each
connection with probability P (seeded by ``seed``) after a random number of
bytes up to ``cut_after``, counted over both directions together, so the reset
falls at a random point of whatever the connection carries (a flaky Wi-Fi link).

Everything is bounded: at most ``max_connections`` connections (later ones
are reset at once), one thread per connection plus the accept thread, every
wait polls a stop flag, and a connection idle for ``idle_timeout`` seconds is
closed. ``stop()`` resets whatever is still open and joins every thread.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import random
import select
import socket
import struct
import termios
import threading
import time
from collections.abc import Iterator

POLL = 0.05
RELAY_CHUNK = 256 * 1024
DRAIN_TIMEOUT = 5.0
DIRECTIONS = ("c2s", "s2c")


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with a TCP reset instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def unsent_bytes(sock: socket.socket) -> int:
    """Bytes in the kernel's send queue of ``sock`` not yet acknowledged by the peer (Linux)."""
    raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return struct.unpack("i", raw)[0]


class _Budget:
    """Bytes a connection may still carry before it is cut (shared by the ways it counts)."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining


class _Direction:
    """One way of one relayed connection: read from ``src``, write to ``dst``."""

    def __init__(self, name: str, src: socket.socket, dst: socket.socket,
                 budget: _Budget | None) -> None:
        self.name = name
        self.src = src
        self.dst = dst
        self.budget = budget
        self.pending = b""
        self.eof = False
        self.forwarded = 0

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else self.budget.remaining

    @property
    def exhausted(self) -> bool:
        return self.remaining == 0 and not self.pending

    def wants_read(self) -> bool:
        return not self.pending and not self.eof and self.remaining != 0

    def on_readable(self) -> None:
        limit = RELAY_CHUNK if self.remaining is None else min(RELAY_CHUNK, self.remaining)
        data = self.src.recv(limit)
        if not data:
            self.eof = True
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)  # pass the half-close on
            return
        self.pending = data
        if self.budget is not None:
            self.budget.remaining -= len(data)

    def on_writable(self) -> None:
        sent = self.dst.send(self.pending)
        self.pending = self.pending[sent:]
        self.forwarded += sent


class CuttingProxy:
    """Relay 127.0.0.1:``port`` to 127.0.0.1:``target_port``, optionally cutting each connection."""

    def __init__(
        self,
        target_port: int,
        *,
        cut_after: int | None = None,
        direction: str = "c2s",
        max_connections: int = 8,
        idle_timeout: float = 30.0,
        cut_first: int | None = None,
        cut_share: float | None = None,
        seed: int = 0,
    ) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        if cut_after is not None and cut_after < 0:
            raise ValueError("cut_after must be 0 or more")
        if cut_share is not None and (cut_after is None or not 0 <= cut_share <= 1):
            raise ValueError("cut_share needs cut_after and must be between 0 and 1")
        self.cut_first = cut_first
        self.cut_share = cut_share
        self._random = random.Random(seed)
        self.target = ("127.0.0.1", target_port)
        self.cut_after = cut_after
        self.direction = direction
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.cut = threading.Event()
        """Set once a connection has been cut after its budget."""
        self.cuts = 0
        self.forwarded = {name: 0 for name in DIRECTIONS}
        """Bytes handed to the peer's kernel, per direction, over all connections."""
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._open: set[socket.socket] = set()
        self._accepted = 0
        self._planned = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(POLL)
        self.port: int = self._listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"proxy-accept-{self.port}")
        self._accept_thread.start()

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, reset every open connection and join all threads."""
        self._stop.set()
        self._accept_thread.join(timeout)
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            leftovers, self._open = list(self._open), set()
        for sock in leftovers:
            reset(sock)
        with contextlib.suppress(OSError):
            self._listener.close()

    @property
    def alive_threads(self) -> int:
        with self._lock:
            threads = [*self._threads, self._accept_thread]
        return sum(thread.is_alive() for thread in threads)

    # ------------------------------------------------------------ accepting

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted += 1
                over = self._accepted > self.max_connections
            if over:
                reset(client)
                continue
            thread = threading.Thread(target=self._relay, args=(client,), daemon=True,
                                      name=f"proxy-relay-{self.port}-{self._accepted}")
            with self._lock:
                self._threads.append(thread)
            thread.start()

    # ------------------------------------------------------------ relaying

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5.0)
        except OSError:
            reset(client)
            return
        with self._lock:
            self._open.update((client, upstream))
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        direction, limit = self._plan()
        budget = None if limit is None else _Budget(limit)
        ways = {
            "c2s": _Direction("c2s", client, upstream,
                              budget if direction in ("c2s", "both") else None),
            "s2c": _Direction("s2c", upstream, client,
                              budget if direction in ("s2c", "both") else None),
        }
        cut = False
        try:
            cut = self._pump(ways)
        except OSError:
            pass  # a peer reset or closed: pass the reset on below
        finally:
            with self._lock:
                for way in ways.values():
                    self.forwarded[way.name] += way.forwarded
                if cut:
                    self.cuts += 1
                self._open.difference_update((client, upstream))
            if cut:
                for way in ways.values():
                    if way.budget is not None:
                        self._drain(way.dst)
            clean = all(way.eof and not way.pending for way in ways.values())
            for sock in (client, upstream):
                if clean:
                    with contextlib.suppress(OSError):
                        sock.close()
                else:
                    reset(sock)
            if cut:
                self.cut.set()

    def _plan(self) -> tuple[str, int | None]:
        """Which direction of the next connection to cut, after how many bytes (None: never)."""
        with self._lock:
            self._planned += 1
            index = self._planned
            if self.cut_share is not None:
                assert self.cut_after is not None
                if self._random.random() >= self.cut_share:
                    return self.direction, None
                return "both", self._random.randrange(self.cut_after + 1)
        if self.cut_first is not None and index > self.cut_first:
            return self.direction, None
        return self.direction, self.cut_after

    def _pump(self, ways: dict[str, _Direction]) -> bool:
        """Relay until both ways end (False) or the budget is spent (True)."""
        last_activity = time.monotonic()
        while not self._stop.is_set():
            if any(way.exhausted for way in ways.values()):
                return True
            if all(way.eof and not way.pending for way in ways.values()):
                return False
            readers = [way.src for way in ways.values() if way.wants_read()]
            writers = [way.dst for way in ways.values() if way.pending]
            if not readers and not writers:
                return False
            readable, writable, _ = select.select(readers, writers, [], POLL)
            if readable or writable:
                last_activity = time.monotonic()
            elif time.monotonic() - last_activity > self.idle_timeout:
                return False
            for way in ways.values():
                if way.dst in writable and way.pending:
                    self._retrying(way.on_writable)
                if way.src in readable and way.wants_read():
                    self._retrying(way.on_readable)
        return False

    @staticmethod
    def _retrying(action) -> None:  # noqa: ANN001 - a bound method of _Direction
        try:
            action()
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                raise

    def _drain(self, sock: socket.socket) -> None:
        """Wait (bounded) until the peer's kernel has acknowledged all we forwarded."""
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                if unsent_bytes(sock) == 0:
                    return
            except OSError:
                return
            time.sleep(0.002)


@contextlib.contextmanager
def cutting_proxy(target_port: int, **options: object) -> Iterator[CuttingProxy]:
    """A CuttingProxy that is always stopped, with all its threads ended, on exit."""
    proxy = CuttingProxy(target_port, **options)  # type: ignore[arg-type]
    try:
        yield proxy
    finally:
        proxy.stop()
        assert proxy.alive_threads == 0, "the proxy left threads running"
