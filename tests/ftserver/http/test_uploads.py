"""Uploads over HTTP PUT from curl into a real server: the one upload path, in HTTP's words.

``curl -T`` streams into a partial, checked, fsynced and renamed: the answer carries
the SHA-256; missing folders are made; a Content-Digest that does not match publishes
nothing; a cut PUT leaves the old version; a file that cannot fit is refused before
its body is sent.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.ftserver.http.httptools import curl, curl_status
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

MiB = 1 << 20


def digest_header(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def test_curl_T_into_a_folder_publishes_the_file_and_answers_its_sha256(
        server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(2 * MiB + 3)
    source = tmp_path / "bigfile.iso"
    source.write_bytes(data)
    done = curl("-T", str(source), "-w", "\n%{http_code}",
                f"http://127.0.0.1:{server.port}/inbox/2026/")  # curl adds the name
    body, _, status = done.stdout.rpartition(b"\n")
    assert status == b"201"
    assert body.decode().split() == [hashlib.sha256(data).hexdigest(), "inbox/2026/bigfile.iso"]
    assert (server.root / "inbox" / "2026" / "bigfile.iso").read_bytes() == data
    assert not list(server.partials.glob("*.part"))
    # Again over it: replaced, 200.
    status_again, _ = curl_status("-T", str(source),
                                  f"http://127.0.0.1:{server.port}/inbox/2026/bigfile.iso")
    assert status_again == 200


def test_a_matching_content_digest_publishes_and_a_wrong_one_publishes_nothing(
        server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(100_000)
    source = tmp_path / "a.bin"
    source.write_bytes(data)
    address = f"http://127.0.0.1:{server.port}/a.bin"
    status, body = curl_status("-T", str(source), "-H", f"Content-Digest: {digest_header(data)}",
                               address)
    assert status == 201, body
    status, body = curl_status("-T", str(source), "-H",
                               f"Content-Digest: {digest_header(b'other')}",
                               f"http://127.0.0.1:{server.port}/b.bin")
    assert status == 400 and b"nothing was published" in body
    assert not (server.root / "b.bin").exists()
    status, body = curl_status("-T", str(source), "-H", "Repr-Digest: sha-256=:bm9wZQ==:",
                               f"http://127.0.0.1:{server.port}/c.bin")
    assert status == 400 and b"32 bytes" in body
    assert not (server.root / "c.bin").exists()


def test_a_cut_put_leaves_the_old_version_and_no_partial(
        server: ServerProcess, tmp_path: Path) -> None:
    (server.root / "report.pdf").write_bytes(b"the old version\n")
    source = tmp_path / "report.pdf"
    source.write_bytes(os.urandom(4 * MiB))
    with CuttingProxy(server.port, cut_after=MiB, direction="c2s") as proxy:
        cut = curl("-T", str(source), f"http://127.0.0.1:{proxy.port}/report.pdf", check=False)
    assert cut.returncode != 0
    assert server.wait_for_log("method=PUT path='report.pdf'"), server.log
    assert re.search(r"method=PUT path='report.pdf' .* result=connection", server.log), (
        server.log)  # logged as cut, never "ok"
    assert (server.root / "report.pdf").read_bytes() == b"the old version\n"
    assert not list(server.partials.glob("*.part"))
    status, _ = curl_status(f"http://127.0.0.1:{server.port}/report.pdf")
    assert status == 200  # and the server keeps serving


def test_a_put_that_cannot_fit_is_refused_before_its_body(
        mount_tmpfs: Callable[..., Path], tmp_path: Path) -> None:
    disk = mount_tmpfs(tmp_path / "disk", size="8m")
    server = ServerProcess(disk, limits={"min_free_bytes": 0}).start()
    try:
        source = tmp_path / "huge.bin"
        with open(source, "wb") as out:
            out.truncate(64 * MiB)  # sparse: costs the test no disk
        done = curl("-T", str(source), "-w", "\n%{http_code} %{size_upload}",
                    f"http://127.0.0.1:{server.port}/huge.bin", check=False)
        status, uploaded = done.stdout.rpartition(b"\n")[2].split()
        assert status == b"507"
        assert int(uploaded) < MiB  # curl waited for 100 Continue and was told no instead
        assert not (server.root / "huge.bin").exists()
    finally:
        server.terminate()


def test_read_only_anonymous_access_refuses_a_put(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server(anonymous="ro")
    source = tmp_path / "a.txt"
    source.write_bytes(b"x")
    status, body = curl_status("-T", str(source), f"http://127.0.0.1:{server.port}/a.txt")
    assert status == 403 and b"read-only" in body
    assert not (server.root / "a.txt").exists()


def curl_from_pipe(data: bytes, address: str) -> subprocess.CompletedProcess[bytes]:
    """``curl -T -``: the body comes from a pipe, so curl sends it in chunks."""
    return subprocess.run(["curl", "-sS", "--max-time", "30", "-T", "-", "-w", "\n%{http_code}",
                           address], input=data, capture_output=True, timeout=40)


def test_curl_T_dash_from_a_pipe_is_taken_in_chunks(server: ServerProcess) -> None:
    data = os.urandom(3 * MiB + 5)
    done = curl_from_pipe(data, f"http://127.0.0.1:{server.port}/piped/data.bin")
    body, _, status = done.stdout.rpartition(b"\n")
    assert status == b"201", done.stdout
    assert body.split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert (server.root / "piped" / "data.bin").read_bytes() == data


def test_a_chunked_put_that_fills_the_disk_publishes_nothing(
        mount_tmpfs: Callable[..., Path], tmp_path: Path) -> None:
    disk = mount_tmpfs(tmp_path / "disk", size="4m")
    server = ServerProcess(disk, limits={"min_free_bytes": 0}).start()
    try:
        done = curl_from_pipe(os.urandom(6 * MiB), f"http://127.0.0.1:{server.port}/big.bin")
        assert done.stdout.rpartition(b"\n")[2] == b"507", done.stdout
        assert not (server.root / "big.bin").exists()
        assert not list(server.partials.glob("*"))
        status, _ = curl_status(f"http://127.0.0.1:{server.port}/")
        assert status == 200
    finally:
        server.terminate()


def test_a_refused_put_closes_gently_so_its_answer_is_not_lost_to_a_reset(
        start_server: Callable[..., ServerProcess]) -> None:
    import socket

    server = start_server(anonymous="ro")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"PUT /x.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n"
                     + b"\0" * 200_000)  # the rest never comes; the answer must still
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 403 ")
        sock.settimeout(5)
        ending = b""
        while True:
            chunk = sock.recv(65536)  # a reset here (ConnectionResetError) fails the test
            if not chunk:
                break
            ending += chunk
    assert b"read-only" in answer + ending
