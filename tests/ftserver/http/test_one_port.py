"""ft's protocol and HTTP on one port, plain and over TLS, in both executors.

The first bytes tell them apart: ``ftclient`` keeps working beside curl; over TLS,
curl's ALPN and ftclient's first byte pick the session; a plain HTTP request to a
TLS server is sent to https; ``http: {enabled: false}`` leaves only ft's protocol.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from ftclient import Client
from tests.ftserver.http.httptools import curl, curl_head, curl_status, raw_exchange
from tests.serverproc import ServerProcess

EXECUTORS = ["thread", "process"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_ftclient_and_curl_share_the_port(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor)
    data = os.urandom(300_000)
    source = tmp_path / "a.bin"
    source.write_bytes(data)
    with Client("127.0.0.1", server.port, timeout=15) as client:
        client.put(str(source), "from-ft.bin")
    curl("-T", str(source), f"http://127.0.0.1:{server.port}/from-http.bin")
    status, body = curl_status(f"http://127.0.0.1:{server.port}/from-ft.bin")
    assert status == 200 and body == data
    with Client("127.0.0.1", server.port, timeout=15) as client:
        client.get("from-http.bin", str(tmp_path / "back.bin"))
        names = {entry.name for entry in client.list("")}
    assert (tmp_path / "back.bin").read_bytes() == data
    assert {"from-ft.bin", "from-http.bin"} <= names


@pytest.mark.parametrize("executor", EXECUTORS)
def test_https_and_ft_over_tls_share_the_port(
        executor: str, start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(executor, tls={"enabled": True})
    (server.root / "a.txt").write_bytes(b"over tls\n")
    status, body = curl_status("-k", f"https://127.0.0.1:{server.port}/a.txt")
    assert status == 200 and body == b"over tls\n"
    status, body = curl_status("-k", "--no-alpn", f"https://127.0.0.1:{server.port}/a.txt")
    assert status == 200 and body == b"over tls\n"  # no ALPN: its first byte tells
    with Client("127.0.0.1", server.port, timeout=15, known_servers=tmp_path / "known",
                accept_new=True) as client:
        client.get("a.txt", str(tmp_path / "a.txt"))
    assert (tmp_path / "a.txt").read_bytes() == b"over tls\n"
    head = curl_head(f"http://127.0.0.1:{server.port}/a.txt?x=1")
    assert head[":status"] == "301"
    assert head["location"] == f"https://127.0.0.1:{server.port}/a.txt?x=1"


def test_http_can_be_turned_off(start_server: Callable[..., ServerProcess],
                                tmp_path: Path) -> None:
    server = start_server(http={"enabled": False})
    (server.root / "a.txt").write_bytes(b"x")
    response = raw_exchange(server.port, b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
    assert not response.startswith(b"HTTP/")
    with Client("127.0.0.1", server.port, timeout=15) as client:
        assert [entry.name for entry in client.list("")] == ["a.txt"]


def test_pipelined_and_keep_alive_requests_are_answered_in_order(
        server: ServerProcess) -> None:
    (server.root / "a.txt").write_bytes(b"A" * 10)
    (server.root / "b.txt").write_bytes(b"B" * 20)
    requests = (b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                b"PUT /c.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
                b"HEAD /b.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /b.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = raw_exchange(server.port, requests)
    assert response.count(b"HTTP/1.1 ") == 4
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", response)
    assert statuses == [b"200", b"201", b"200", b"200"]
    assert b"A" * 10 in response and response.endswith(b"B" * 20)
    assert (server.root / "c.txt").read_bytes() == b"abc"
