"""The speed floor of a raw byte transfer: every DEADLINE_SPAN bytes must move in time.

A per-read or per-send socket timeout lets a peer that moves a byte now and then
hold a connection forever; a deadline per span of bytes does not, however the
bytes trickle. Both directions use it: ``common.io.filereceive`` (recv_into),
``common.io.filesend`` (sendfile, and the copying loop TLS needs).

This module owns the deadline arithmetic and the socket timeout that enforces it
on blocking calls. It never reads or writes a byte itself.
"""

from __future__ import annotations

import socket
import time
from types import TracebackType

from common.protocol.errors import Timeout

DEADLINE_SPAN = 1024 * 1024
"""Every this many bytes must move within the timeout (a speed floor, not per call)."""


class Span:
    """The deadline for each DEADLINE_SPAN of bytes, kept with few socket calls.

    Call ``reached(position)`` as the transfer moves, add any wait of our own (a
    throttle's) to ``deadline``, and ``arm()`` before each blocking call. A
    blocking call must give up by the span's deadline, so the socket's timeout may
    never exceed the time left. Setting it costs a system call, so it is only
    lowered when it would overshoot, and then to 90% of what is left: a healthy
    link re-arms about once per span instead of once per call, and a trickling peer
    still cannot outlast the deadline. With ``timeout`` None nothing is bounded.

    Used as a context manager, it gives the socket back its own timeout on exit, so
    the frame that follows the bytes is not sent under a span's leftover seconds.
    """

    def __init__(self, sock: socket.socket, timeout: float | None,
                 too_slow: str = "the transfer is too slow") -> None:
        self.sock = sock
        self.timeout = timeout
        self.too_slow = too_slow
        self.original = self.armed = sock.gettimeout()
        self.start = -DEADLINE_SPAN
        self.deadline = 0.0

    def __enter__(self) -> Span:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.armed != self.original:
            try:
                self.sock.settimeout(self.original)
            except OSError:
                pass  # the socket is closed: nothing left to bound

    def reached(self, position: int) -> None:
        """Start a new span when ``position`` is a whole span past the last start."""
        if self.timeout is not None and position - self.start >= DEADLINE_SPAN:
            self.start, self.deadline = position, time.monotonic() + self.timeout
            armed = self.armed
            if armed is not None and armed != self.original and armed < self.timeout / 2:
                # The last span ended close to its deadline and left the socket's
                # timeout short: a healthy pause in this span must not trip it.
                self._set(self.timeout * 0.9)

    def left(self) -> float | None:
        """Seconds left in this span (None: unbounded); raises Timeout once none are."""
        if self.timeout is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Timeout(self.too_slow)
        return left

    def arm(self) -> None:
        """Before a blocking call: make sure it cannot wait past the deadline."""
        left = self.left()
        if left is not None and (self.armed is None or self.armed > left):
            self._set(left * 0.9)

    def _set(self, seconds: float) -> None:
        self.armed = seconds
        self.sock.settimeout(seconds)
