"""tus 1.0 uploads into a real server: tuspy's client, raw sockets for what it never does.

Each upload goes through the one upload, pass after pass: published whole with the
right SHA-256 after its last PATCH; cut, it resumes from what the server holds and
only the rest is sent; a PATCH whose checksum fails keeps nothing; termination drops
the partial; a PATCH stalled half-way gives way to the next pass of its upload within
seconds; an upload's URL is unguessable and survives a restart; it expires.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed
from tusclient.storage.filestorage import FileStorage

from common.io.hashpipe import BUFFER_SIZE
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

KiB = 1 << 10
MiB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
TIMEOUT = 20


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def repr_digest(data: bytes) -> str:
    return f"sha-256=:{b64(hashlib.sha256(data).digest())}:"


def create(port: int, folder: str, filename: str, size: int) -> str:
    """POST a new upload into ``folder``; its absolute URL."""
    answer = requests.post(f"http://127.0.0.1:{port}/{folder}", timeout=TIMEOUT, headers={
        **TUS, "Upload-Length": str(size), "Upload-Metadata": f"filename {b64(filename.encode())}"})
    assert answer.status_code == 201, answer.text
    return f"http://127.0.0.1:{port}{answer.headers['Location']}"


def patch(url: str, offset: int, data: bytes, **headers: str) -> requests.Response:
    return requests.patch(url, data=data, timeout=TIMEOUT, headers={
        **TUS, "Content-Type": OFFSET_STREAM, "Upload-Offset": str(offset), **headers})


def let_go(uploader: Any) -> None:
    """Close the file tuspy's last request opened (it leaves that to the collector)."""
    if uploader.request is not None:
        uploader.request.file.close()


def head(url: str) -> requests.Response:
    return requests.head(url, headers=TUS, timeout=TIMEOUT)


def test_tuspy_uploads_in_several_patches_and_the_file_is_published_with_its_sha256(
        server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 12345)
    source = tmp_path / "video.mp4"
    source.write_bytes(data)
    tus = tus_client.TusClient(f"http://127.0.0.1:{server.port}/inbox/")
    uploader = tus.uploader(str(source), chunk_size=700 * KiB, upload_checksum=True,
                            metadata={"filename": "video.mp4"})
    uploader.upload()
    assert uploader.offset == len(data)
    assert (server.root / "inbox" / "video.mp4").read_bytes() == data
    assert uploader.request.response_headers["repr-digest"] == repr_digest(data)
    assert not list(server.partials.glob("*.part"))
    # each PATCH is logged just after it is answered: wait for the fifth line
    assert server.wait_for_log(r"(?s)(?:method=PATCH.*?){5}"), server.log
    assert head(uploader.url).headers["Upload-Offset"] == str(len(data))  # done, still known


def test_options_says_what_the_server_speaks(server: ServerProcess) -> None:
    answer = requests.options(f"http://127.0.0.1:{server.port}/inbox/", timeout=TIMEOUT)
    assert answer.status_code == 204
    assert answer.headers["Tus-Version"] == "1.0.0"
    extensions = answer.headers["Tus-Extension"].split(",")
    assert {"creation", "creation-with-upload", "termination", "checksum",
            "expiration"} <= set(extensions)
    assert {"sha1", "sha256"} <= set(answer.headers["Tus-Checksum-Algorithm"].split(","))
    assert int(answer.headers["Tus-Max-Size"]) > 1 << 40


def test_a_cut_upload_resumes_from_the_stored_url_and_sends_only_the_rest(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    data = os.urandom(4 * MiB)
    source = tmp_path / "disk.img"
    source.write_bytes(data)
    stored = str(tmp_path / "tus-urls.json")
    with CuttingProxy(server.port, cut_after=MiB + 512 * KiB, cut_first=2) as proxy:
        address = f"http://127.0.0.1:{proxy.port}/"
        urls = FileStorage(stored)
        first = tus_client.TusClient(address).uploader(
            str(source), chunk_size=3 * MiB, store_url=True, url_storage=urls,
            metadata={"filename": "disk.img"})
        with pytest.raises((TusCommunicationError, TusUploadFailed, requests.RequestException)):
            first.upload()
        urls.close()
        let_go(first)
        assert proxy.cuts == 1
        sent_before = proxy.forwarded["c2s"]
        # A new client, as after a reboot: it finds the URL it stored and asks the offset.
        urls = FileStorage(stored)
        again = tus_client.TusClient(address).uploader(
            str(source), chunk_size=3 * MiB, store_url=True, url_storage=urls,
            metadata={"filename": "disk.img"})
        assert again.url == first.url
        held = again.offset
        assert MiB <= held < MiB + 512 * KiB
        again.upload()
        urls.close()
        let_go(again)
    resent = proxy.forwarded["c2s"] - sent_before  # (counted as each connection ends)
    assert (server.root / "disk.img").read_bytes() == data
    assert len(data) - held <= resent < len(data) - held + 8 * KiB  # the rest, no more
    assert again.request.response_headers["repr-digest"] == repr_digest(data)
    assert not list(server.partials.glob("*.part"))


def test_a_patch_whose_checksum_fails_is_refused_and_the_offset_does_not_move(
        server: ServerProcess) -> None:
    data = os.urandom(300 * KiB)
    url = create(server.port, "", "sums.bin", len(data))
    first = data[:100 * KiB]
    good = patch(url, 0, first,
                 **{"Upload-Checksum": f"sha256 {b64(hashlib.sha256(first).digest())}"})
    assert good.status_code == 204 and good.headers["Upload-Offset"] == str(len(first))
    second = data[100 * KiB:]
    wrong = patch(url, len(first), second,
                  **{"Upload-Checksum": f"sha1 {b64(hashlib.sha1(b'other').digest())}"})
    assert wrong.status_code == 460, wrong.text
    assert head(url).headers["Upload-Offset"] == str(len(first))
    unknown = patch(url, len(first), second, **{"Upload-Checksum": "crc99 AAAA"})
    assert unknown.status_code == 400
    right = patch(url, len(first), second,
                  **{"Upload-Checksum": f"sha1 {b64(hashlib.sha1(second).digest())}"})
    assert right.status_code == 204 and right.headers["Repr-Digest"] == repr_digest(data)
    assert (server.root / "sums.bin").read_bytes() == data


def test_a_patch_at_the_wrong_offset_is_a_conflict(server: ServerProcess) -> None:
    url = create(server.port, "", "order.bin", 1000)
    assert patch(url, 0, b"a" * 100).status_code == 204
    conflict = patch(url, 50, b"b" * 100)
    assert conflict.status_code == 409
    assert head(url).headers["Upload-Offset"] == "100"
    assert patch(url, 100, b"c" * 2000).status_code == 413  # past Upload-Length
    assert not (server.root / "order.bin").exists()


def test_termination_removes_the_partial_and_the_upload(server: ServerProcess) -> None:
    url = create(server.port, "drop/", "gone.bin", 1 * MiB)
    assert patch(url, 0, os.urandom(200 * KiB)).status_code == 204
    assert list(server.partials.glob("*.part"))
    answer = requests.delete(url, headers=TUS, timeout=TIMEOUT)
    assert answer.status_code == 204
    assert not list(server.partials.glob("*.part"))
    assert head(url).status_code == 404
    assert patch(url, 200 * KiB, b"x").status_code == 404
    assert not (server.root / "drop" / "gone.bin").exists()


def test_a_stalled_patch_gives_way_to_the_next_pass_of_its_upload(
        server: ServerProcess) -> None:
    data = os.urandom(MiB)
    url = create(server.port, "", "stall.bin", len(data))
    path = url.split(str(server.port), 1)[1]
    sent = BUFFER_SIZE  # a whole buffer of the receive loop: written before the stall
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as stalled:
        stalled.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: {OFFSET_STREAM}\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:sent])
        time.sleep(0.5)  # the server has read what came; then nothing more: half-open
        started = time.monotonic()
        rest = patch(url, sent, data[sent:])
        took = time.monotonic() - started
        assert rest.status_code == 204, rest.text
        assert took < 8.0
        assert rest.headers["Repr-Digest"] == repr_digest(data)
        stalled.settimeout(5.0)
        assert stalled.recv(100).startswith(b"HTTP/1.1 503")  # it was told, and let go
    assert (server.root / "stall.bin").read_bytes() == data


def test_a_head_takes_over_from_a_stalled_patch_and_tells_what_it_kept(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    data = os.urandom(MiB)
    url = create(server.port, "", "ask.bin", len(data))
    path = url.split(str(server.port), 1)[1]
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as stalled:
        stalled.sendall(
            f"PATCH {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: {OFFSET_STREAM}\r\nUpload-Offset: 0\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data[:BUFFER_SIZE + 1000])
        time.sleep(0.3)
        started = time.monotonic()
        answer = head(url)
        assert time.monotonic() - started < 8.0
        # What the stalled pass had written is kept; the bytes it held in hand are not.
        assert answer.status_code == 200
        assert answer.headers["Upload-Offset"] == str(BUFFER_SIZE)
        rest = patch(url, BUFFER_SIZE, data[BUFFER_SIZE:])
        assert rest.status_code == 204 and rest.headers["Repr-Digest"] == repr_digest(data)
    assert (server.root / "ask.bin").read_bytes() == data


def test_the_url_is_unguessable_and_a_wrong_token_finds_nothing(server: ServerProcess) -> None:
    one = create(server.port, "", "a.bin", 10)
    two = create(server.port, "", "a.bin", 10)
    token = one.rsplit("/", 1)[1]
    assert one != two and len(token) >= 43
    flipped = one[:-1] + ("A" if one[-1] != "A" else "B")
    assert head(flipped).status_code == 404
    assert patch(flipped, 0, b"x" * 10).status_code == 404
    assert head(one.rsplit("/", 1)[0] + "/../a.bin").status_code in (400, 404)


def test_an_upload_survives_a_restart_of_the_server(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    data = os.urandom(512 * KiB)
    url = create(server.port, "keep/", "on.bin", len(data))
    assert patch(url, 0, data[:200 * KiB]).status_code == 204
    token = url.rsplit("/", 1)[1]
    server.terminate()
    again = start_server()  # the same share and state folder
    url = f"http://127.0.0.1:{again.port}/.ft-tus/{token}"
    assert head(url).headers["Upload-Offset"] == str(200 * KiB)
    done = patch(url, 200 * KiB, data[200 * KiB:])
    assert done.status_code == 204 and done.headers["Repr-Digest"] == repr_digest(data)
    assert (again.root / "keep" / "on.bin").read_bytes() == data


def test_creation_with_upload_and_an_announced_sha256(server: ServerProcess) -> None:
    data = os.urandom(50 * KiB)
    metadata = (f"filename {b64(b'whole.bin')},"
                f"sha256 {b64(hashlib.sha256(data).hexdigest().encode())}")
    answer = requests.post(f"http://127.0.0.1:{server.port}/", data=data, timeout=TIMEOUT,
                           headers={**TUS, "Upload-Length": str(len(data)),
                                    "Upload-Metadata": metadata,
                                    "Content-Type": OFFSET_STREAM})
    assert answer.status_code == 201, answer.text
    assert answer.headers["Upload-Offset"] == str(len(data))
    assert answer.headers["Repr-Digest"] == repr_digest(data)
    assert (server.root / "whole.bin").read_bytes() == data
    wrong = (f"filename {b64(b'liar.bin')},"
             f"sha256 {b64(hashlib.sha256(b'else').hexdigest().encode())}")
    url = requests.post(f"http://127.0.0.1:{server.port}/", timeout=TIMEOUT, headers={
        **TUS, "Upload-Length": str(len(data)), "Upload-Metadata": wrong}).headers["Location"]
    refused = patch(f"http://127.0.0.1:{server.port}{url}", 0, data)
    assert refused.status_code == 400 and b"nothing was published" in refused.content
    assert not (server.root / "liar.bin").exists()
    assert not list(server.partials.glob("*.part"))


def test_bad_creations_are_refused(server: ServerProcess) -> None:
    base = f"http://127.0.0.1:{server.port}"
    no_version = requests.post(f"{base}/", timeout=TIMEOUT, headers={
        "Upload-Length": "10", "Upload-Metadata": f"filename {b64(b'x')}"})
    assert no_version.status_code == 412
    for metadata in ("", f"filename {b64(b'../x')}", f"filename {b64(b'.ft-partials')}",
                     "filename !!!"):
        refused = requests.post(f"{base}/", timeout=TIMEOUT, headers={
            **TUS, "Upload-Length": "10", "Upload-Metadata": metadata})
        assert refused.status_code == 400, metadata
    cross = requests.post(f"{base}/", timeout=TIMEOUT, headers={
        **TUS, "Upload-Length": "10", "Upload-Metadata": f"filename {b64(b'x')}",
        "Origin": "http://evil.example"})
    assert cross.status_code == 403
    assert not list((server.state_dir / "tus-uploads").glob("*.json"))


def test_an_untouched_upload_expires(start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(partial_ttl=2)
    url = create(server.port, "", "late.bin", 100)
    answer = patch(url, 0, b"x" * 10)
    assert answer.status_code == 204
    expires = answer.headers["Upload-Expires"]
    assert expires.endswith("GMT")
    time.sleep(2.5)
    assert head(url).status_code == 410
    assert head(url).status_code == 404
