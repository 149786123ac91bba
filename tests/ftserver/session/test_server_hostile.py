"""Hostile and broken input against a live server: it costs one connection, never the server.

Frames are built by hand (``common.protocol.frames.encode_frame``, or raw bytes when the
point is that they are not valid). After each attack a normal ``Client`` must
still be served, no error reply may leak the server's paths or a traceback,
and the server's log must show no internal error.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from common.protocol.errors import BadPath, Locked
from common.protocol.frames import MAX_FRAME
from common.protocol.requests import PROTOCOL_VERSION
from tests.rawwire import RawConnection, frame_bytes

BAD_PATHS = [
    "../x", "/etc/passwd", "a\\b", "a\x00b", "x/../../y", "a//b", "./a", "C:/x",
    "a\nb", "tab\there", ".ft-partials", "dir/.ft-lock", "a/", "\x7f",
]
BAD_FRAMES = {
    "not-json": frame_bytes(b"hello, server"),
    "json-list": frame_bytes(b'[{"op": "hello"}]'),
    "json-string": frame_bytes(b'"hello"'),
    "bad-utf8": frame_bytes(b'{"op": "\xff\xfe"}'),
    "nan": frame_bytes(b'{"op": "stat", "path": NaN}'),
    "duplicate-keys": frame_bytes(b'{"op": "stat", "op": "list", "path": ""}'),
    "deep-nesting": frame_bytes(b"[" * 30000 + b"]" * 30000),
    "zero-length": b"\x00\x00\x00\x00",
    "over-the-cap": (MAX_FRAME + 1).to_bytes(4, "big"),
    "max-length": b"\xff\xff\xff\xff",
}


def served_normally(server, connect, tmp_path: Path) -> None:
    """A fresh, well-behaved client can still put, list and get."""
    client = connect(server)
    src = tmp_path / "probe.txt"
    src.write_bytes(b"still serving")
    client.put(src, "probe/")
    assert "probe.txt" in {e.name for e in client.list("probe")}
    assert client.get("probe/probe.txt", tmp_path / "probe-copy.txt").size == 13


def assert_nothing_leaks(server, errors: list[dict]) -> None:
    """No error message holds a server path or a traceback, and the server had no bug."""
    secrets = {str(server.root), os.path.realpath(server.root), str(server.state_dir),
               str(server.root.parent)}
    for error in errors:
        message = error.get("message", "")
        assert "Traceback" not in message
        assert not any(secret in message for secret in secrets), message
        assert error.get("code") != "internal", error
    assert "Traceback" not in server.log
    assert "internal error" not in server.log


def hostile_conn(server, *, greet: bool = True) -> RawConnection:
    raw = RawConnection(server.port)
    if greet:
        raw.hello()
    return raw


# ---------------------------------------------------------------- broken frames


@pytest.mark.parametrize("greet", [False, True], ids=["before-hello", "after-hello"])
@pytest.mark.parametrize("payload", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_broken_frame_gets_bad_frame_and_close(shared_server, connect, tmp_path, payload,
                                               greet):
    started = time.monotonic()
    with hostile_conn(shared_server, greet=greet) as raw:
        raw.send_bytes(payload)
        reply = raw.receive()
        if reply is not None:
            assert reply["ok"] is False and reply["error"]["code"] == "bad_frame", reply
            assert raw.closed_by_server(timeout=5)
        assert time.monotonic() - started < 5
        errors = raw.errors
    served_normally(shared_server, connect, tmp_path)
    assert_nothing_leaks(shared_server, errors)


def test_huge_length_prefix_is_refused_before_any_body(shared_server, connect, tmp_path):
    """The 4-byte length alone decides: no body byte is awaited, so the reply comes at once."""
    with hostile_conn(shared_server) as raw:
        raw.send_bytes(b"\xff\xff\xff\xff")
        raw.sock.settimeout(3)
        reply = raw.receive()
        assert reply is None or reply["error"]["code"] == "bad_frame"
        assert raw.closed_by_server(timeout=3)
    served_normally(shared_server, connect, tmp_path)


# ---------------------------------------------------------------- bad requests


def test_request_before_hello_is_refused(shared_server, connect, tmp_path):
    with hostile_conn(shared_server, greet=False) as raw:
        reply = raw.request({"op": "list", "path": ""})
        assert reply["ok"] is False
        assert "entries" not in reply
        assert raw.closed_by_server()
        errors = raw.errors
    with hostile_conn(shared_server, greet=False) as raw:
        raw.send({"op": "hello", "version": PROTOCOL_VERSION + 1, "agent": "future"})
        reply = raw.receive()
        assert reply is None or reply["ok"] is False
        assert raw.closed_by_server()
        errors += raw.errors
    served_normally(shared_server, connect, tmp_path)
    assert_nothing_leaks(shared_server, errors)


def test_unknown_op_gets_unknown_op_and_connection_stays_usable(shared_server, connect,
                                                               tmp_path):
    with hostile_conn(shared_server) as raw:
        assert raw.error_code({"op": "delete", "path": "x"}) == "unknown_op"
        assert raw.error_code({"op": "x" * 5000}) == "unknown_op"
        assert raw.error_code({"op": "hello", "version": 1, "agent": "again"}) != "internal"
        assert raw.error_code({"op": "put_end", "sha256": "0" * 64}) == "bad_request"
        assert raw.error_code({"path": "no op at all"}) == "bad_request"
        assert raw.error_code({"op": 7}) == "bad_request"
        assert raw.request({"op": "list", "path": ""})["ok"] is True
        errors = raw.errors
    assert_nothing_leaks(shared_server, errors)


def test_wrongly_typed_fields_get_bad_request(shared_server, connect, tmp_path):
    (shared_server.root / "typed.bin").write_bytes(b"abc")
    attacks = [
        {"op": "get", "path": "typed.bin", "offset": True},
        {"op": "get", "path": "typed.bin", "offset": 1.0},
        {"op": "get", "path": "typed.bin", "offset": -1},
        {"op": "get", "path": "typed.bin", "offset": 2, "prefix_sha256": "XYZ"},
        {"op": "get", "path": "typed.bin", "offset": 2},
        {"op": "get", "path": ["typed.bin"], "offset": 0},
        {"op": "put", "path": "typed2.bin", "size": -5, "mtime": 1.0},
        {"op": "put", "path": "typed2.bin", "size": 2**60, "mtime": 1.0},
        {"op": "put", "path": "typed2.bin", "size": "10", "mtime": 1.0},
        {"op": "put", "path": "typed2.bin", "size": 10, "mtime": "yesterday"},
        {"op": "put", "path": "typed2.bin", "size": 10, "mtime": 1e300},
        {"op": "put", "path": "typed2.bin", "size": 10, "mtime": 1.0, "sha256": "abc"},
        {"op": "stat", "path": None},
        {"op": "list"},
    ]
    with hostile_conn(shared_server) as raw:
        for attack in attacks:
            assert raw.error_code(attack) == "bad_request", attack
        assert raw.request({"op": "stat", "path": "typed.bin"})["entry"]["size"] == 3
        errors = raw.errors
    assert not (shared_server.root / "typed2.bin").exists()
    assert_nothing_leaks(shared_server, errors)


def test_bad_paths_get_bad_path_for_every_operation(shared_server, connect, tmp_path):
    with hostile_conn(shared_server) as raw:
        for path in BAD_PATHS:
            for request in (
                {"op": "get", "path": path, "offset": 0},
                {"op": "stat", "path": path},
                {"op": "list", "path": path},
                {"op": "put", "path": path, "size": 3, "mtime": 1.0},
            ):
                assert raw.error_code(request) == "bad_path", request
        assert raw.error_code({"op": "get", "path": "", "offset": 0}) == "bad_path"
        assert raw.request({"op": "list", "path": ""})["ok"] is True
        errors = raw.errors
    # The refused puts created nothing, inside the share or beside it.
    for created in (shared_server.root.parent / "x", shared_server.root.parent.parent / "y",
                    shared_server.root / "a", shared_server.root / "C:"):
        assert not created.exists(), created
    assert_nothing_leaks(shared_server, errors)

    # The client library refuses the same names before sending anything.
    client = connect(shared_server)
    for path in ("../x", "a\\b", "a\x00b"):
        with pytest.raises(BadPath):
            client.stat(path)


def test_symlinks_leading_out_of_the_share_are_refused_and_unlisted(
        shared_server, connect, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_bytes(b"top secret")
    links = shared_server.root / "links"
    links.mkdir()
    (links / "inside.txt").write_bytes(b"fine")
    os.symlink(secret, links / "escape-file")
    os.symlink(outside, links / "escape-dir")
    os.symlink(outside / "not-yet", links / "escape-dangling")
    os.symlink("/etc/passwd", links / "passwd")
    os.symlink(links / "inside.txt", links / "inside-link")  # inside the share: fine

    client = connect(shared_server)
    assert sorted(e.name for e in client.list("links")) == ["inside-link", "inside.txt"]
    with hostile_conn(shared_server) as raw:
        for name in ("escape-file", "escape-dir/secret.txt", "passwd", "escape-dangling"):
            path = f"links/{name}"
            assert raw.error_code({"op": "get", "path": path, "offset": 0}) == "bad_path"
            assert raw.error_code({"op": "stat", "path": path}) == "bad_path"
            assert raw.error_code({"op": "put", "path": path, "size": 3,
                                   "mtime": 1.0}) == "bad_path"
        assert raw.error_code({"op": "list", "path": "links/escape-dir"}) == "bad_path"
        assert raw.error_code({"op": "put", "path": "links/escape-dir/new.txt", "size": 3,
                               "mtime": 1.0}) == "bad_path"
        errors = raw.errors
    with pytest.raises(BadPath):
        client.get("links/escape-file", tmp_path / "stolen.txt")
    assert not (tmp_path / "stolen.txt").exists()
    assert secret.read_bytes() == b"top secret"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert client.get("links/inside-link", tmp_path / "ok.txt").size == 4
    assert_nothing_leaks(shared_server, errors)


def test_error_messages_never_hold_server_paths(shared_server, connect, tmp_path):
    """Every kind of refusal the share can produce, checked for leaks in one place."""
    (shared_server.root / "plain.txt").write_bytes(b"x")
    (shared_server.root / "folder").mkdir()
    os.mkfifo(shared_server.root / "fifo")
    with hostile_conn(shared_server) as raw:
        for request in (
            {"op": "get", "path": "missing/deeper/file", "offset": 0},
            {"op": "get", "path": "folder", "offset": 0},
            {"op": "get", "path": "fifo", "offset": 0},
            {"op": "get", "path": "plain.txt/below", "offset": 0},
            {"op": "stat", "path": "plain.txt/below"},
            {"op": "list", "path": "plain.txt"},
            {"op": "list", "path": "missing"},
            {"op": "put", "path": "plain.txt/below", "size": 1, "mtime": 1.0},
            {"op": "put", "path": "folder", "size": 1, "mtime": 1.0},
            {"op": "put", "path": "huge.bin", "size": 2**52, "mtime": 1.0},
            {"op": "put_data", "offset": 0},
        ):
            reply = raw.request(request)
            assert reply["ok"] is False, (request, reply)
        assert raw.request({"op": "list", "path": ""})["ok"] is True
        errors = raw.errors
    codes = [error["code"] for error in errors]
    assert codes[:3] == ["not_found", "is_a_directory", "permission"]
    assert "no_space" in codes
    assert "fifo" not in {e.name for e in connect(shared_server).list("")}
    assert_nothing_leaks(shared_server, errors)


def test_json_numbers_and_text_at_the_edges(shared_server, connect, tmp_path):
    """Big integers and long strings are refused politely, not by a crash."""
    with hostile_conn(shared_server) as raw:
        raw.send_bytes(frame_bytes(b'{"op":"get","path":"a","offset":' + b"9" * 5000 + b"}"))
        reply = raw.receive()
        assert reply is None or reply["error"]["code"] in ("bad_request", "bad_frame")
        errors = raw.errors
    with hostile_conn(shared_server) as raw:
        body = json.dumps({"op": "stat", "path": "a" * 5000}).encode()
        raw.send_bytes(frame_bytes(body))
        reply = raw.receive()
        assert reply is not None and reply["error"]["code"] in ("bad_path", "bad_request")
        assert raw.request({"op": "list", "path": ""})["ok"] is True
        errors += raw.errors
    served_normally(shared_server, connect, tmp_path)
    assert_nothing_leaks(shared_server, errors)


# ---------------------------------------------------------------- deadlines


@pytest.fixture(params=["thread", "process"])
def impatient_server(request, start_server):
    """A server with short deadlines, so the tests that wait for them stay quick."""
    return start_server(request.param, name=f"impatient-{request.param}",
                        limits={"handshake_timeout": 1.0, "transfer_timeout": 1.0},
                        shutdown_grace=1.0)


def test_silent_client_is_closed_by_the_handshake_deadline(impatient_server, connect,
                                                           tmp_path):
    served_normally(impatient_server, connect, tmp_path)  # workers are up: time only the wait
    with hostile_conn(impatient_server, greet=False) as raw:
        started = time.monotonic()
        raw.sock.settimeout(6)
        reply = raw.receive()
        if reply is not None:
            assert reply["error"]["code"] == "timeout"
            assert raw.closed_by_server(timeout=3)
        waited = time.monotonic() - started
        assert 0.5 < waited < 3, waited
    served_normally(impatient_server, connect, tmp_path)


def test_trickling_hello_is_closed_by_the_handshake_deadline(impatient_server, connect,
                                                             tmp_path):
    """One byte every 0.3 s never lets a per-read timeout fire; the deadline must still end it."""
    hello = frame_bytes(json.dumps({"op": "hello", "version": 1, "agent": "x" * 200}).encode())
    served_normally(impatient_server, connect, tmp_path)
    with hostile_conn(impatient_server, greet=False) as raw:
        started = time.monotonic()
        closed = False
        for byte in hello[:20]:  # at most 6 s of trickling
            try:
                raw.send_bytes(bytes([byte]))
            except OSError:
                closed = True
                break
            time.sleep(0.3)
            if time.monotonic() - started > 3.0:
                break
        raw.sock.settimeout(0.1)
        closed = closed or raw.closed_by_server(timeout=0.5)
        assert closed, "a client trickling its hello was still connected after 3 s"
    served_normally(impatient_server, connect, tmp_path)


def test_stalled_upload_is_cut_and_releases_its_name(impatient_server, connect, make_file):
    with hostile_conn(impatient_server) as raw:
        raw.start_put("stalled.bin", 3 * (1 << 20))
        raw.send_bytes(b"\0" * 1000)
        assert raw.closed_by_server(timeout=5)
    src = make_file("stalled.bin", 1 << 20)
    deadline = time.monotonic() + 5
    while True:
        try:
            result = connect(impatient_server).put(src)
            break
        except Locked:  # until the stalled session is gone
            assert time.monotonic() < deadline, "the stalled upload kept its lock"
            time.sleep(0.05)
    assert result.resumed_from == 0
    assert (impatient_server.root / "stalled.bin").read_bytes() == src.read_bytes()
