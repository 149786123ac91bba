"""Names over HTTP: decoded exactly once, and every way out of the share refused.

Raw request lines (curl would tidy them) against a real server: ``..`` in every
encoding, encoded slashes and backslashes, double encoding, NUL and controls,
absolute targets, the reserved ``.ft-`` names and the partials' folder. Each gets a
4xx and the server keeps serving.
"""

from __future__ import annotations

import pytest

from tests.ftserver.http.httptools import curl_status, raw_exchange, status_of
from tests.serverproc import ServerProcess

ESCAPES = [
    b"/../secret.txt",
    b"/%2e%2e/secret.txt",
    b"/%2E%2E/secret.txt",
    b"/.%2e/secret.txt",
    b"/inner/..%2fsecret.txt",
    b"/inner%2f..%2f..%2fsecret.txt",
    b"/inner/..%5csecret.txt",
    b"/%252e%252e/secret.txt",
    b"/inner/%00secret.txt",
    b"/inner/a%0d%0aX-Injected:%20yes",
    b"/inner/a%1bb",
    b"/.ft-partials/",
    b"/inner/.ft-anything",
    b"/C:/secret.txt",
    b"http://127.0.0.1/../secret.txt",
    b"//etc/passwd",
    b"/inner/%",
    b"/inner/%zz",
    b"/inner/%ff%fe",
]


@pytest.fixture(scope="module")
def hosting(shared_server: ServerProcess) -> ServerProcess:
    share = shared_server.root
    (share / "inner").mkdir(exist_ok=True)
    (share.parent / "secret.txt").write_bytes(b"outside the share\n")
    return shared_server


@pytest.mark.parametrize("target", ESCAPES, ids=lambda t: t.decode("latin-1"))
def test_every_way_out_is_refused(hosting: ServerProcess, target: bytes) -> None:
    request = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response = raw_exchange(hosting.port, request)
    assert 400 <= status_of(response) < 500, response[:200]
    assert b"outside the share" not in response
    assert b"X-Injected" not in response.split(b"\r\n\r\n")[0]
    assert b"Traceback" not in response
    status, _ = curl_status(f"http://127.0.0.1:{hosting.port}/inner/")
    assert status == 200  # still serving
