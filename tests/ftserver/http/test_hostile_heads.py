"""Heads and bodies that would tie a slot up: caps on their size, deadlines on their time.

Against a real server with short limits: a head over the cap is answered 431 however
it arrives, a request line over its own cap 414; a client trickling its head a byte
at a time is closed after ``handshake_timeout`` while other clients are served; a PUT
that stops sending is closed after ``transfer_timeout``, its partial gone and the old
file intact.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable

import pytest

from tests.ftserver.http.httptools import (
    curl_status,
    raw_exchange,
    read_until_closed,
    status_of,
)
from tests.serverproc import ServerProcess

HANDSHAKE_TIMEOUT = 2.0
TRANSFER_TIMEOUT = 2.0
SHORT_LIMITS = {"handshake_timeout": HANDSHAKE_TIMEOUT, "transfer_timeout": TRANSFER_TIMEOUT}


@pytest.fixture
def strict(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    server = start_server(limits=SHORT_LIMITS)
    (server.root / "a.txt").write_bytes(b"hello\n")
    return server


def head_with(*headers: bytes, target: bytes = b"/a.txt") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(
        header + b"\r\n" for header in headers) + b"\r\n"


def test_a_head_over_the_cap_is_answered_431_whether_it_comes_whole_or_in_parts(
        strict: ServerProcess) -> None:
    one_big = head_with(b"X-Big: " + b"a" * 20_000)
    response = raw_exchange(strict.port, one_big)
    assert status_of(response) == 431, response[:200]
    many_small = head_with(*[b"X-Small-%d: b" % number for number in range(2000)])
    assert status_of(raw_exchange(strict.port, many_small)) == 431
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        for start in range(0, len(one_big), 4096):  # arrives in parts: h11's own bound
            sock.sendall(one_big[start:start + 4096])
            time.sleep(0.01)
        response, closed = read_until_closed(sock, 10)
    assert status_of(response) == 431 and closed
    status, body = curl_status("-H", "X-Fine: " + "a" * 12_000,
                               f"http://127.0.0.1:{strict.port}/a.txt")
    assert status == 200 and body == b"hello\n"  # under the cap: served


def test_a_request_line_over_its_cap_is_answered_414_before_it_ends(
        strict: ServerProcess) -> None:
    long_line = head_with(target=b"/" + b"a" * 9000)
    assert status_of(raw_exchange(strict.port, long_line)) == 414
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /" + b"a" * 9000)  # no line end yet, and none coming
        response, closed = read_until_closed(sock, 10)
    assert status_of(response) == 414 and closed
    assert time.monotonic() - started < HANDSHAKE_TIMEOUT  # not left to the deadline


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_head_trickled_a_byte_at_a_time_is_closed_at_the_deadline_and_others_are_served(
        executor: str, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(executor, limits=SHORT_LIMITS)
    (server.root / "a.txt").write_bytes(b"hello\n")
    head = head_with(*[b"X-Slow-%d: %s" % (number, b"z" * 20) for number in range(20)])
    served = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        started = time.monotonic()
        closed_after = None
        for byte in head[:40]:  # bounded: 40 bytes, 0.25 s apart, ~10 s at most
            if select.select([slow], [], [], 0)[0]:
                closed_after = time.monotonic() - started
                break
            slow.sendall(bytes([byte]))
            call_started = time.monotonic()
            status, body = curl_status(f"http://127.0.0.1:{server.port}/a.txt")
            assert status == 200 and body == b"hello\n"
            assert time.monotonic() - call_started < 1.0  # the trickler holds only its slot
            served += 1
            time.sleep(max(0.0, 0.25 - (time.monotonic() - call_started)))
        response, closed = read_until_closed(slow, 5)
    assert closed_after is not None, "the trickling client was never closed"
    assert HANDSHAKE_TIMEOUT - 0.5 <= closed_after <= HANDSHAKE_TIMEOUT + 1.5
    assert status_of(response) == 408 and closed
    assert served >= 4


def test_a_put_that_stops_sending_is_closed_after_the_transfer_timeout_and_leaves_nothing(
        strict: ServerProcess) -> None:
    (strict.root / "report.txt").write_bytes(b"the old version\n")
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        sock.sendall(b"PUT /report.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n"
                     + b"n" * 300_000)
        started = time.monotonic()
        response, closed = read_until_closed(sock, TRANSFER_TIMEOUT + 5)
        waited = time.monotonic() - started
    assert closed, "the stalled PUT was never closed"
    assert TRANSFER_TIMEOUT - 0.5 <= waited <= TRANSFER_TIMEOUT + 2
    assert status_of(response) == 408
    assert strict.wait_for_log("method=PUT path='report.txt' status=408")
    assert (strict.root / "report.txt").read_bytes() == b"the old version\n"
    assert not list(strict.partials.glob("*"))
    assert curl_status(f"http://127.0.0.1:{strict.port}/report.txt")[0] == 200


def test_the_first_heads_deadline_counts_from_the_connection_not_its_first_byte(
        strict: ServerProcess) -> None:
    head = head_with(*[b"X-Slow-%d: zzzz" % number for number in range(10)])
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as slow:
        connected = time.monotonic()
        time.sleep(HANDSHAKE_TIMEOUT * 0.75)  # silent, then a byte just in time
        closed_after = None
        for byte in head[:40]:  # bounded: 40 bytes, 0.1 s apart
            if select.select([slow], [], [], 0.1)[0]:
                closed_after = time.monotonic() - connected
                break
            slow.sendall(bytes([byte]))
        response, closed = read_until_closed(slow, 5)
    assert closed_after is not None, "the trickling client was never closed"
    assert closed_after <= HANDSHAKE_TIMEOUT + 0.7  # not the deadline again from byte one
    assert status_of(response) == 408 and closed
