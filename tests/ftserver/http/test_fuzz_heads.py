"""A fuzzer over the request parser: generated and mutated heads against one real server.

Hypothesis builds request heads from HTTP's parts (methods, targets, versions, the
headers the server reads with values at their edges, in heads broken and
well-framed), mutates well-formed ones (bytes flipped, inserted, cut, doubled, line
ends changed) and pipelines a few. Each goes to one running server on its own
connection; the answer must be a well-formed status line and no internal error,
or a close. After the run the server still serves a plain GET and its log holds
no traceback. Bounded: 150 examples, each read for 3 s at most.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ftserver.http.httptools import curl_status, read_until_closed, status_line_ok
from tests.serverproc import ServerProcess

READ_WAIT = 3.0
METHODS = [b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"POST", b"CONNECT", b"TRACE",
           b"G", b"GETT", b"PRI"]
TARGETS = [b"/", b"/a.txt", b"/inner/", b"/inner/b.txt", b"*", b"/?format=json&sort=size",
           b"/.ft-assets/page.css", b"/%2e%2e/x", b"/a%00b", b"/%ff", b"//x", b"/a.txt?",
           b"http://127.0.0.1/a.txt", b"127.0.0.1:80", b"/" + b"n" * 300]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.1 ", b"http/1.1",
            b"HTTP/1", b""]
HEADER_NAMES = [b"Host", b"Content-Length", b"Transfer-Encoding", b"Range", b"If-Range",
                b"If-None-Match", b"If-Modified-Since", b"Expect", b"Connection", b"Origin",
                b"Sec-Fetch-Site", b"Content-Digest", b"Repr-Digest", b"Accept", b"X-Odd"]
HEADER_VALUES = [b"x", b"", b"0", b"5", b"-1", b"99999999999999999999", b"1e3", b"chunked",
                 b"gzip", b"bytes=0-1", b"bytes=5-2", b"bytes=-0", b"bytes=0-0,1-1,2-2",
                 b"bytes=99999999999999999999-", b'"abc"', b"*", b"W/\"x\"",
                 b"Thu, 01 Jan 1970 00:00:00 GMT", b"garbage", b"100-continue", b"close",
                 b"keep-alive", b"http://elsewhere", b"cross-site",
                 b"sha-256=:AAAA:", b"sha-256=:" + b"A" * 43 + b"=:", b"\xff\xfe", b"a\x00b",
                 b"bytes=" + b"9" * 5000 + b"-", b"bytes=-" + b"0" * 4400 + b"1", b"9" * 5000]
HUGE = b"9" * 5000
VALUES_FOR = {
    b"Range": [b"bytes=0-", b"bytes=-1", b"bytes=" + HUGE + b"-", b"bytes=-" + HUGE,
               b"bytes=1-" + HUGE, b"bytes = 1 - 2", b"bytes=1-2,", b"items=0-1",
               b"bytes=\xb2-"],
    b"If-Range": [b'"x"', b"W/\"x\"", b"Thu, 01 Jan 99999 00:00:00 GMT", HUGE],
    b"If-None-Match": [b"*", b'"a", W/"b"', b",,,", HUGE],
    b"If-Modified-Since": [b"Thu, 01 Jan 1970 00:00:00 GMT", b"Fri, 31 Dec 9999 23:59:59 GMT",
                           b"Thu, 01 Jan 99999 00:00:00 GMT", b"-1", HUGE],
    b"Content-Length": [b"0", b"3", b"99999999999999999999", b"007"],
    b"Expect": [b"100-continue", b"200-ok", b""],
    b"Origin": [b"http://x", b"http://elsewhere", b"null", b""],
    b"Sec-Fetch-Site": [b"cross-site", b"same-origin"],
    b"Content-Digest": [b"sha-256=:" + b"A" * 43 + b"=:", b"sha-256=::", b"sha-512=:AA:",
                        b"sha-256=:" + b"A" * 5000 + b":"],
    b"Repr-Digest": [b"sha-256=:!!:", b"SHA-256 = :AAAA:"],
    b"Connection": [b"close", b"keep-alive", b"upgrade", b"close, close"],
}
"""Per header the server reads, values at its edges."""
VALID = (b"GET /a.txt HTTP/1.1\r\nHost: x\r\nRange: bytes=1-3\r\n"
         b"If-None-Match: \"zz\"\r\n\r\n",
         b"PUT /fuzz.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
         b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")


def header_lines() -> st.SearchStrategy[bytes]:
    name = st.one_of(st.sampled_from(HEADER_NAMES), st.binary(min_size=0, max_size=12))
    value = st.one_of(st.sampled_from(HEADER_VALUES), st.binary(max_size=40))
    separator = st.sampled_from([b": ", b":", b" : ", b":\t"])
    return st.builds(lambda n, s, v: n + s + v, name, separator, value)


@st.composite
def generated_head(draw: st.DrawFn) -> bytes:
    method = draw(st.one_of(st.sampled_from(METHODS),
                            st.binary(min_size=1, max_size=10)))
    target = draw(st.one_of(st.sampled_from(TARGETS), st.binary(max_size=30)))
    version = draw(st.sampled_from(VERSIONS))
    line_end = draw(st.sampled_from([b"\r\n", b"\n", b"\r"]))
    headers = draw(st.lists(header_lines(), max_size=8))
    body = draw(st.binary(max_size=32))
    return line_end.join([method + b" " + target + b" " + version, *headers, b"", b""]) + body


@st.composite
def well_framed_head(draw: st.DrawFn) -> bytes:
    """A head h11 takes, with the headers the server reads set to odd values: what
    reaches ranges, conditionals, digests and the CSRF check rather than the parser."""
    method = draw(st.sampled_from([b"GET", b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"]))
    target = draw(st.sampled_from([b"/a.txt", b"/inner/b.txt", b"/a.txt", b"/", b"/inner/",
                                   b"/new.txt", b"/?format=json"]))
    names = draw(st.lists(st.sampled_from(list(VALUES_FOR)), min_size=1, max_size=3,
                          unique=True))
    headers = [name + b": " + draw(st.one_of(st.sampled_from(VALUES_FOR[name]),
                                              st.sampled_from(HEADER_VALUES)))
               for name in names]
    return b"\r\n".join([method + b" " + target + b" HTTP/1.1", b"Host: x", *headers,
                          b"", b""])


@st.composite
def mutated_head(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "cut", "double", "lf", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "cut":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "double":
            data[at:at] = data[at:at + draw(st.integers(1, 16))]
        elif kind == "lf":
            data = bytearray(data.replace(b"\r\n", b"\n", draw(st.integers(1, 3))))
        else:
            del data[at:]
    return bytes(data)


def as_http(data: bytes) -> bytes:
    """The fuzz is about HTTP: a first byte that is no capital would go to ft's protocol."""
    return data if data[:1].isupper() and data[:1].isalpha() else b"G" + data


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("fuzzed"),
                           limits={"handshake_timeout": 2.0, "transfer_timeout": 2.0}).start()
    (server.root / "inner").mkdir()
    (server.root / "a.txt").write_bytes(b"hello\n")
    (server.root / "inner" / "b.txt").write_bytes(b"inner\n")
    yield server
    try:
        server.terminate(timeout=20)
    except Exception:
        server.kill()


def exchange(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=READ_WAIT) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before all of it is sent
        response, _ = read_until_closed(sock, READ_WAIT)
    return response


@settings(max_examples=150, deadline=READ_WAIT * 1000 + 2000, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(head=st.one_of(generated_head(), well_framed_head(), well_framed_head(), mutated_head(),
                      st.lists(generated_head(), min_size=2, max_size=3).map(b"".join)))
def test_every_head_gets_a_status_line_or_a_close(fuzzed: ServerProcess, head: bytes) -> None:
    response = exchange(fuzzed.port, as_http(head))
    if not response:
        return
    assert status_line_ok(response), response[:200]
    assert b"Traceback" not in response and b"internal server error" not in response
    assert not re.search(rb"^HTTP/1\.1 500 ", response, re.MULTILINE), response[:300]


def test_after_the_fuzz_the_server_serves_and_logged_no_error(fuzzed: ServerProcess) -> None:
    (fuzzed.root / "after.txt").write_bytes(b"still here\n")
    assert curl_status(f"http://127.0.0.1:{fuzzed.port}/after.txt") == (200, b"still here\n")
    assert "Traceback" not in fuzzed.log and "internal error" not in fuzzed.log, fuzzed.log
