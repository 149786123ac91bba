"""Span: the per-MiB deadline of a raw transfer and the socket timeout that enforces it.

No waiting here: deadlines are moved by hand (``deadline`` is the attribute a
throttle adds its own waits to), and the socket is a real loopback one.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from common.io.spans import DEADLINE_SPAN, Span
from common.protocol.errors import Timeout


@pytest.fixture
def sock() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as listener, \
            socket.create_connection(listener.getsockname(), timeout=30) as client:
        yield client


def test_a_read_is_never_allowed_past_the_span(sock: socket.socket) -> None:
    with Span(sock, 10.0) as span:
        span.reached(0)
        span.deadline = time.monotonic() + 2.0
        span.arm()
        assert 0 < sock.gettimeout() <= 2.0


def test_a_span_that_is_over_raises_timeout(sock: socket.socket) -> None:
    span = Span(sock, 10.0, "too slow here")
    span.reached(0)
    span.deadline = time.monotonic() - 0.001
    with pytest.raises(Timeout, match="too slow here"):
        span.arm()


def test_a_new_span_restores_a_timeout_cut_short_by_the_last(sock: socket.socket) -> None:
    """The last span ended just in time and left the socket a fraction of a second: the
    next span must not inherit it, or a healthy pause would be taken for a stall."""
    with Span(sock, 10.0) as span:
        span.reached(0)
        span.deadline = time.monotonic() + 0.1
        span.arm()
        assert sock.gettimeout() <= 0.1
        span.reached(DEADLINE_SPAN)
        span.arm()
        assert sock.gettimeout() >= 5.0


def test_the_socket_gets_its_own_timeout_back(sock: socket.socket) -> None:
    with Span(sock, 10.0) as span:
        span.reached(0)
        span.deadline = time.monotonic() + 1.0
        span.arm()
    assert sock.gettimeout() == 30


def test_without_a_timeout_nothing_is_bounded(sock: socket.socket) -> None:
    with Span(sock, None) as span:
        span.reached(0)
        assert span.left() is None
        span.arm()
    assert sock.gettimeout() == 30
