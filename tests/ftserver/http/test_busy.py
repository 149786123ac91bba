"""A refused connection hears "busy" in its own protocol: 503 + Retry-After for HTTP.

A server with ``max_per_address: 1`` holds one connection open; then curl gets 503
with Retry-After (written by h11), ftclient still gets its ft "busy" reply, a
client that sends nothing gets the ft reply after a short wait, and a crowd of
silent refused clients delays no one's answer.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator

import pytest

from common.protocol.errors import Busy
from ftclient import Client
from tests.ftserver.http.httptools import curl, raw_exchange, read_until_closed, status_of
from tests.serverproc import ServerProcess

PROMPT = 1.5
"""Seconds a refusal may take: the rejecter waits 0.5 s at most for a first byte."""


@pytest.fixture(params=["thread", "process"])
def full(request: pytest.FixtureRequest, start_server: Callable[..., ServerProcess]
         ) -> Iterator[ServerProcess]:
    """A server whose address's only slot is taken by an idle ft client."""
    server = start_server(request.param, limits={"max_per_address": 1})
    holder = Client("127.0.0.1", server.port, busy_wait=0, timeout=10)
    holder.connect()
    try:
        yield server
    finally:
        holder.close()


def test_curl_gets_503_with_retry_after_from_a_full_server(full: ServerProcess) -> None:
    started = time.monotonic()
    done = curl("-D", "-", "-o", "-", f"http://127.0.0.1:{full.port}/a.txt")
    assert time.monotonic() - started < PROMPT
    text = done.stdout.decode("latin-1")
    assert text.startswith("HTTP/1.1 503 Service Unavailable\r\n"), text
    assert "\r\nRetry-After: 5\r\n" in text and "\r\nConnection: close\r\n" in text
    assert "busy: your address already has 1 connections open" in text
    assert full.wait_for_log("refused, your address")


def test_a_raw_http_request_gets_one_whole_503_and_the_close(full: ServerProcess) -> None:
    response = raw_exchange(full.port, b"PUT /a.txt HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 5\r\n\r\nhello", timeout=5)
    assert status_of(response) == 503
    head, _, body = response.partition(b"\r\n\r\n")
    assert int(dict(line.split(b": ", 1) for line in head.split(b"\r\n")[1:])
               [b"Content-Length"]) == len(body)
    assert not (full.root / "a.txt").exists()


def test_ftclient_still_gets_its_busy_reply(full: ServerProcess) -> None:
    started = time.monotonic()
    with pytest.raises(Busy):
        Client("127.0.0.1", full.port, busy_wait=0, timeout=5).connect()
    assert time.monotonic() - started < PROMPT


def test_a_silent_client_gets_the_ft_reply_and_silent_ones_delay_no_one(
        full: ServerProcess) -> None:
    silent = [socket.create_connection(("127.0.0.1", full.port), timeout=5)
              for _ in range(20)]
    try:
        started = time.monotonic()
        done = curl("-o", "/dev/null", "-w", "%{http_code}", f"http://127.0.0.1:{full.port}/")
        assert done.stdout == b"503" and time.monotonic() - started < PROMPT
        reply, closed = read_until_closed(silent[0], 5)
        assert closed and reply[:1] == b"\x00" and b"busy" in reply  # an ft frame
    finally:
        for sock in silent:
            sock.close()


def test_with_http_off_an_http_client_gets_the_ft_reply(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(limits={"max_per_address": 1}, http={"enabled": False})
    with Client("127.0.0.1", server.port, busy_wait=0, timeout=10):  # holds the slot
        response = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", timeout=5)
    assert not response.startswith(b"HTTP/") and b"busy" in response
