"""Odd but possible requests, raw on the wire: each gets its answer and the stream stays
in step, or the connection ends after the answer.

HTTP/1.0 and ``Connection: close`` end the connection after one answer; a body the
server does not read (a GET's, a refused PUT's) ends it too, so its bytes are never
taken for a request; ``Expect: 100-continue`` is refused before the body is invited;
Content-Length values that are absurd, negative or in conflict are refused 400, and
Transfer-Encoding beside Content-Length (request smuggling) as well; unknown methods
get 405, ``OPTIONS *`` the server's methods.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

import pytest

from tests.ftserver.http.httptools import raw_exchange, read_until_closed, status_of
from tests.serverproc import ServerProcess

VICTIM = b"must survive\n"
SMUGGLED = b"DELETE /victim.txt HTTP/1.1\r\nHost: x\r\n\r\n"
"""A request hidden in a body: if the server ever runs it, victim.txt is gone."""
ALLOW = ("GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS, PROPFIND, PROPPATCH, MKCOL, COPY, "
         "MOVE, LOCK, UNLOCK")


@pytest.fixture(scope="module")
def odd(shared_server: ServerProcess) -> ServerProcess:
    (shared_server.root / "a.txt").write_bytes(b"hello\n")
    return shared_server


@pytest.fixture(autouse=True)
def victim(odd: ServerProcess) -> None:
    (odd.root / "victim.txt").write_bytes(VICTIM)


def statuses(response: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"^HTTP/1\.1 (\d{3}) ", response, re.MULTILINE)]


def get(target: str = "/a.txt", *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: x", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_http_1_0_gets_one_answer_and_the_close(odd: ServerProcess) -> None:
    response = raw_exchange(odd.port, b"GET /a.txt HTTP/1.0\r\n\r\n" + get())
    assert statuses(response) == [200]
    assert b"\r\nConnection: close\r\n" in response and response.endswith(b"\r\n\r\nhello\n")


def test_connection_close_ends_the_connection_after_its_answer(odd: ServerProcess) -> None:
    response = raw_exchange(odd.port, get("/a.txt", "Connection: close") + get())
    assert statuses(response) == [200]
    assert b"\r\nConnection: close\r\n" in response


def test_a_get_with_a_body_is_answered_and_its_body_never_read_as_a_request(
        odd: ServerProcess) -> None:
    response = raw_exchange(odd.port, get("/a.txt", f"Content-Length: {len(SMUGGLED)}")
                            + SMUGGLED + get())
    assert statuses(response) == [200]
    assert b"\r\nConnection: close\r\n" in response
    assert (odd.root / "victim.txt").read_bytes() == VICTIM


@pytest.mark.parametrize("length", [
    b"99999999999999999999999",  # past any file
    b"-1",
    b"+5",
    b"0x10",
    b"1e3",
    b"5, 6",
    b"",
])
def test_an_absurd_content_length_is_refused_400_and_ends_the_connection(
        odd: ServerProcess, length: bytes) -> None:
    request = b"PUT /absurd.txt HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
    response = raw_exchange(odd.port, request + SMUGGLED)
    assert statuses(response) == [400], response[:300]
    assert not (odd.root / "absurd.txt").exists()
    assert (odd.root / "victim.txt").read_bytes() == VICTIM


def test_a_content_length_no_disk_holds_is_refused_before_the_body(odd: ServerProcess) -> None:
    request = (b"PUT /huge.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n"
               b"Expect: 100-continue\r\n\r\n")
    with socket.create_connection(("127.0.0.1", odd.port), timeout=10) as sock:
        sock.sendall(request)
        response, closed = read_until_closed(sock, 10)
    assert statuses(response) == [507], response[:300]
    assert closed and not (odd.root / "huge.txt").exists()


def test_duplicate_content_lengths_that_disagree_are_refused_400(odd: ServerProcess) -> None:
    request = (b"PUT /dup.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
               b"Content-Length: " + str(3 + len(SMUGGLED)).encode() + b"\r\n\r\nabc" + SMUGGLED)
    response = raw_exchange(odd.port, request)
    assert statuses(response) == [400]
    assert not (odd.root / "dup.txt").exists()
    assert (odd.root / "victim.txt").read_bytes() == VICTIM


@pytest.mark.parametrize("transfer_encoding", [b"chunked", b"identity", b"gzip, chunked"])
def test_transfer_encoding_beside_content_length_is_refused_400(
        odd: ServerProcess, transfer_encoding: bytes) -> None:
    body = b"0\r\n\r\n" + SMUGGLED  # chunked: empty, then a request; by length: all of it
    request = (b"PUT /smuggled.txt HTTP/1.1\r\nHost: x\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\nTransfer-Encoding: " + transfer_encoding
               + b"\r\n\r\n" + body)
    response = raw_exchange(odd.port, request)
    # A coding h11 cannot read is refused 501 before framing is weighed: as safe.
    assert statuses(response) == [400 if transfer_encoding == b"chunked" else 501], (
        response[:300])
    assert b"\r\nConnection: close\r\n" in response
    assert not (odd.root / "smuggled.txt").exists()
    assert (odd.root / "victim.txt").read_bytes() == VICTIM


def test_a_chunked_puts_chunks_are_its_file_never_a_request(odd: ServerProcess) -> None:
    request = (b"PUT /chunked.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n")
    response = raw_exchange(odd.port, request)
    assert statuses(response) == [201]
    assert (odd.root / "chunked.txt").read_bytes() == SMUGGLED
    assert (odd.root / "victim.txt").read_bytes() == VICTIM


@pytest.mark.parametrize("method", [b"BREW", b"TRACE", b"CONNECT", b"SEARCH",
                                    b"M" * 40])
def test_unknown_methods_get_405_with_allow(odd: ServerProcess, method: bytes) -> None:
    target = b"127.0.0.1:80" if method == b"CONNECT" else b"/a.txt"
    response = raw_exchange(odd.port, method + b" " + target + b" HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Length: 0\r\n\r\n" + get())
    assert statuses(response)[0] == 405, response[:300]
    assert f"\r\nAllow: {ALLOW}\r\n".encode() in response


def test_options_star_answers_the_servers_methods(odd: ServerProcess) -> None:
    response = raw_exchange(odd.port, b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + get())
    assert statuses(response) == [204, 200]
    assert f"\r\nAllow: {ALLOW}\r\n".encode() in response
    star_get = raw_exchange(odd.port, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(star_get) == 400


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/0.9"])
def test_another_http_version_is_refused(odd: ServerProcess, version: bytes) -> None:
    response = raw_exchange(odd.port, b"GET /a.txt " + version + b"\r\nHost: x\r\n\r\n")
    assert status_of(response) in (400, 505), response[:300]
    assert not response.endswith(b"hello\n")


def test_expect_100_continue_is_refused_before_the_body_is_invited(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(anonymous="ro")
    refusals = [
        b"PUT /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n",  # read-only: 403
        b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n",  # 405
        b"PUT /../a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n",  # 400
    ]
    for head in refusals:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head + b"Expect: 100-continue\r\n\r\n")  # and the body never comes
            response, closed = read_until_closed(sock, 10)
        assert b" 100 " not in response.split(b"\r\n", 1)[0], response[:200]
        assert status_of(response) in (400, 403, 405) and closed, response[:200]
        assert b"\r\nConnection: close\r\n" in response
    assert not (server.root / "a.txt").exists()


@pytest.mark.parametrize(("range_value", "status", "body"), [
    (b"bytes=" + b"9" * 5000 + b"-", 416, b"the file has 6 bytes\n"),  # past any end
    (b"bytes=-" + b"9" * 5000, 206, b"hello\n"),  # more than all of it: all of it
    (b"bytes=1-" + b"9" * 5000, 206, b"ello\n"),  # to the end
    (b"bytes=" + b"0" * 5000 + b"1-2", 206, b"el"),
])
def test_a_range_with_thousands_of_digits_is_answered_not_an_internal_error(
        odd: ServerProcess, range_value: bytes, status: int, body: bytes) -> None:
    response = raw_exchange(odd.port, b"GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: "
                            + range_value + b"\r\nConnection: close\r\n\r\n")
    assert status_of(response) == status, response[:300]
    assert response.endswith(b"\r\n\r\n" + body)


def test_requests_pipelined_after_a_big_put_body_are_answered_in_order(
        odd: ServerProcess) -> None:
    body = bytes(range(256)) * 1000  # longer than one read: the body straddles reads
    request = (b"PUT /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body
               + get("/big.bin", "Range: bytes=0-3") + get("/a.txt", "Connection: close"))
    response = raw_exchange(odd.port, request)
    codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", response)  # the 206's bytes end no line
    assert codes[1:] == [b"206", b"200"] and codes[0] in (b"200", b"201")
    assert b"\r\n\r\n\x00\x01\x02\x03HTTP/1.1 200 " in response
    assert (odd.root / "big.bin").read_bytes() == body
