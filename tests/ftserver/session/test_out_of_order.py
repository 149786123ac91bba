"""Messages out of order against a live server: a clear refusal, and the server serves on.

The order is the conversation's table's (common/protocol/conversation.py). A raw
client (tests/rawwire.py) says what ``Client`` never would: a put's closing frame
without a put, a frame where raw bytes or put_data were due, a streamed put that
does not end with put_end. Between requests a refusal is an error reply and the
connection goes on; where raw bytes may be on their way it closes. Either way a
connection opened before keeps being served, and the server logs no internal error.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from common.protocol.frames import encode_frame
from common.protocol.requests import PROTOCOL_VERSION
from tests.rawwire import RAW_MTIME, RawConnection


def greeted(server) -> RawConnection:
    raw = RawConnection(server.port)
    raw.hello()
    return raw


def still_served(server, bystander: RawConnection, tmp_path: Path, connect) -> None:
    """The connection opened before the misstep is answered, and a new client is too."""
    assert bystander.request({"op": "list", "path": ""})["ok"] is True
    client = connect(server)
    probe = tmp_path / "probe.txt"
    probe.write_bytes(b"still serving")
    assert client.put(probe, "probe.txt").size == 13
    assert "internal error" not in server.log and "Traceback" not in server.log


def refusal(reply: dict | None) -> tuple[str, str]:
    assert reply is not None and reply["ok"] is False, reply
    return reply["error"]["code"], reply["error"]["message"]


def test_closing_frames_without_their_opening_are_refused_and_the_connection_goes_on(
        shared_server, connect, tmp_path):
    with greeted(shared_server) as bystander, greeted(shared_server) as raw:
        for frame in ({"op": "put_end", "sha256": "0" * 64}, {"op": "put_data", "offset": 0},
                      {"op": "auth_final", "message": "c=biws,r=x,p=eA=="},
                      {"op": "hello", "version": PROTOCOL_VERSION, "agent": "twice"}):
            code, message = refusal(raw.request(frame))
            assert code == "bad_request"
            assert message == f"{frame['op']!r} is not valid here"
        assert raw.request({"op": "list", "path": ""})["ok"] is True  # and it goes on
        still_served(shared_server, bystander, tmp_path, connect)


def test_a_frame_where_put_data_was_due_is_refused_and_closes(shared_server, connect,
                                                              tmp_path):
    with greeted(shared_server) as bystander, greeted(shared_server) as raw:
        ready = raw.request({"op": "put", "path": "order/early-end.bin", "size": 10,
                             "mtime": RAW_MTIME})
        assert ready["ok"] is True
        code, message = refusal(raw.request({"op": "put_end", "sha256": "0" * 64}))
        assert (code, message) == ("bad_request", "expected 'put_data', got 'put_end'")
        assert raw.closed_by_server()
        still_served(shared_server, bystander, tmp_path, connect)
    assert not (shared_server.root / "order" / "early-end.bin").exists()
    source = tmp_path / "early-end.bin"
    source.write_bytes(b"0123456789")
    assert connect(shared_server).put(source, "order/early-end.bin").size == 10  # not locked


def test_raw_bytes_before_the_puts_reply_are_refused_and_close(shared_server, connect,
                                                               tmp_path):
    data = b"\xff" * 64  # read where put_data was due: a length over the cap
    with greeted(shared_server) as bystander, greeted(shared_server) as raw:
        raw.send({"op": "put", "path": "order/eager.bin", "size": len(data),
                  "mtime": RAW_MTIME})
        raw.send_bytes(data)  # without waiting for put_ready, and without put_data
        assert raw.receive()["ok"] is True  # put_ready, sent before the bytes were read
        code, _ = refusal(raw.receive())
        assert code == "bad_frame"
        assert raw.closed_by_server()
        still_served(shared_server, bystander, tmp_path, connect)
    assert not (shared_server.root / "order" / "eager.bin").exists()


def test_an_offset_the_server_did_not_offer_is_refused_and_closes(shared_server, connect,
                                                                  tmp_path):
    with greeted(shared_server) as bystander, greeted(shared_server) as raw:
        ready = raw.request({"op": "put", "path": "order/offset.bin", "size": 10,
                             "mtime": RAW_MTIME})
        assert ready["offset"] == 0
        code, message = refusal(raw.request({"op": "put_data", "offset": 4}))
        assert (code, message) == ("bad_request", "offset must be 0 or 0")
        assert raw.closed_by_server()
        still_served(shared_server, bystander, tmp_path, connect)


def test_a_put_whose_bytes_end_without_put_end_is_answered_and_the_connection_goes_on(
        shared_server, connect, tmp_path):
    with greeted(shared_server) as bystander, greeted(shared_server) as raw:
        raw.start_put("order/unended.bin", 5)
        raw.send_bytes(b"abcde")
        code, message = refusal(raw.request({"op": "stat", "path": "order"}))
        assert (code, message) == ("bad_request", "expected 'put_end', got 'stat'")
        assert raw.request({"op": "list", "path": ""})["ok"] is True  # still in step
        still_served(shared_server, bystander, tmp_path, connect)
    assert not (shared_server.root / "order" / "unended.bin").exists()


def test_a_streamed_put_without_put_end_closes_after_the_answers_before_it(
        shared_server, connect, tmp_path):
    first, second = b"one", b"two"
    stream = b"".join([
        encode_frame({"op": "put", "path": "order/first.txt", "size": 3, "mtime": RAW_MTIME,
                      "stream": True}), first,
        encode_frame({"op": "put_end", "sha256": hashlib.sha256(first).hexdigest()}),
        encode_frame({"op": "put", "path": "order/second.txt", "size": 3, "mtime": RAW_MTIME,
                      "stream": True}), second,
        encode_frame({"op": "stat", "path": "order"}),  # where put_end was due
    ])
    with greeted(shared_server) as bystander, greeted(shared_server) as raw:
        raw.send_bytes(stream)
        answer = raw.receive()
        assert answer == {"ok": True, "size": 3, "sha256": hashlib.sha256(first).hexdigest()}
        assert raw.closed_by_server()
        still_served(shared_server, bystander, tmp_path, connect)
    assert (shared_server.root / "order" / "first.txt").read_bytes() == first
    assert not (shared_server.root / "order" / "second.txt").exists()
    assert shared_server.wait_for_log(r"expected 'put_end' after a streamed put, got 'stat'")
