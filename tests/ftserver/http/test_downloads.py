"""Downloads over HTTP from a real server, by curl and wget: headers, ranges, resume.

A cut download resumes with ``curl -C -`` and ``wget -c`` and fetches only the
missing bytes; a file that changed meanwhile is sent whole to a client that says
which version it holds (If-Range); a conditional GET of an unchanged file is 304.
Cuts go through the cutting proxy, as a dropped Wi-Fi link would.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from tests.ftserver.http.httptools import curl, curl_head, curl_status, wget
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

MiB = 1 << 20


@pytest.fixture
def served(server: ServerProcess) -> tuple[ServerProcess, bytes]:
    data = os.urandom(3 * MiB + 17)
    (server.root / "docs").mkdir()
    (server.root / "docs" / "report.pdf").write_bytes(data)
    return server, data


def url(server: ServerProcess, path: str, port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or server.port}{path}"


def test_get_sends_the_file_with_what_a_resuming_client_needs(
        served: tuple[ServerProcess, bytes], tmp_path: Path) -> None:
    server, data = served
    out = tmp_path / "report.pdf"
    curl("-o", str(out), url(server, "/docs/report.pdf"))
    assert out.read_bytes() == data
    head = curl_head("-I", url(server, "/docs/report.pdf"))
    assert head[":status"] == "200"
    assert head["content-length"] == str(len(data))
    assert head["accept-ranges"] == "bytes"
    assert head["content-type"] == "application/pdf"
    assert head["etag"].startswith('"') and head["etag"].endswith('"')
    assert head["last-modified"].endswith("GMT")
    assert head["x-content-type-options"] == "nosniff"
    assert head["content-security-policy"] == "sandbox"


def test_a_range_is_answered_with_206_and_just_those_bytes(
        served: tuple[ServerProcess, bytes]) -> None:
    server, data = served
    status, body = curl_status("-r", "1000-1999", url(server, "/docs/report.pdf"))
    assert status == 206 and body == data[1000:2000]
    status, body = curl_status("-r", "-10", url(server, "/docs/report.pdf"))
    assert status == 206 and body == data[-10:]
    head = curl_head("-r", f"{len(data) - 5}-", url(server, "/docs/report.pdf"))
    assert head[":status"] == "206"
    assert head["content-range"] == f"bytes {len(data) - 5}-{len(data) - 1}/{len(data)}"
    status, _ = curl_status("-r", f"{len(data) + 10}-", url(server, "/docs/report.pdf"))
    assert status == 416


def test_conditional_gets_of_an_unchanged_file_are_304(
        served: tuple[ServerProcess, bytes]) -> None:
    server, _ = served
    head = curl_head(url(server, "/docs/report.pdf"))
    status, body = curl_status("-H", f"If-None-Match: {head['etag']}",
                               url(server, "/docs/report.pdf"))
    assert status == 304 and body == b""
    status, _ = curl_status("-H", f"If-Modified-Since: {head['last-modified']}",
                            url(server, "/docs/report.pdf"))
    assert status == 304
    status, _ = curl_status("-H", 'If-None-Match: "something-else"',
                            url(server, "/docs/report.pdf"))
    assert status == 200


def test_a_file_changed_since_is_sent_whole_to_a_client_that_names_its_version(
        served: tuple[ServerProcess, bytes]) -> None:
    server, data = served
    old_tag = curl_head(url(server, "/docs/report.pdf"))["etag"]
    newer = os.urandom(len(data))
    target = server.root / "docs" / "report.pdf"
    staged = target.with_name("staged")
    staged.write_bytes(newer)
    os.replace(staged, target)  # as an upload publishes it: a new file under the name
    status, body = curl_status("-r", "1000-", "-H", f"If-Range: {old_tag}",
                               url(server, "/docs/report.pdf"))
    assert status == 200 and body == newer  # whole, never the new tail on the old head
    new_tag = curl_head(url(server, "/docs/report.pdf"))["etag"]
    assert new_tag != old_tag
    status, body = curl_status("-r", "1000-", "-H", f"If-Range: {new_tag}",
                               url(server, "/docs/report.pdf"))
    assert status == 206 and body == newer[1000:]


def test_a_cut_download_resumes_with_curl_fetching_only_the_rest(
        served: tuple[ServerProcess, bytes], tmp_path: Path) -> None:
    server, data = served
    out = tmp_path / "report.pdf"
    with CuttingProxy(server.port, cut_after=MiB, direction="s2c", cut_first=1) as proxy:
        cut = curl("-o", str(out), url(server, "/docs/report.pdf", proxy.port), check=False)
        assert cut.returncode != 0  # the link dropped mid-file
        held = out.stat().st_size
        assert 0 < held < len(data)
        done = curl("-C", "-", "-o", str(out), "-w", "%{http_code} %{size_download}",
                    url(server, "/docs/report.pdf", proxy.port))
    status, fetched = done.stdout.decode().split()
    assert status == "206" and int(fetched) == len(data) - held
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_cut_download_resumes_with_wget_c(
        served: tuple[ServerProcess, bytes], tmp_path: Path) -> None:
    server, data = served
    with CuttingProxy(server.port, cut_after=MiB, direction="s2c", cut_first=1) as proxy:
        address = url(server, "/docs/report.pdf", proxy.port)
        first = wget(address, cwd=tmp_path)
        assert first.returncode != 0
        held = (tmp_path / "report.pdf").stat().st_size
        assert 0 < held < len(data)
        second = wget("-c", address, cwd=tmp_path)
        assert second.returncode == 0, second.stderr.decode()
    assert (tmp_path / "report.pdf").read_bytes() == data
    assert server.wait_for_log(f"status=206 bytes={len(data) - held} "), server.log


def test_the_digest_is_given_once_the_server_knows_it(
        served: tuple[ServerProcess, bytes], tmp_path: Path) -> None:
    server, data = served
    source = tmp_path / "up.bin"
    source.write_bytes(data)
    curl("-T", str(source), url(server, "/docs/up.bin"))  # an upload is hashed as it comes
    head = curl_head(url(server, "/docs/up.bin"))
    expected = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert head["repr-digest"] == f"sha-256=:{expected}:"


def test_names_with_spaces_and_unicode_are_reached_percent_encoded(
        server: ServerProcess) -> None:
    (server.root / "Q3 résumé #1.txt").write_bytes(b"hi\n")
    status, body = curl_status(url(server, "/Q3%20r%C3%A9sum%C3%A9%20%231.txt"))
    assert status == 200 and body == b"hi\n"
