"""FrameDecoder and encode_frame: every input whole, one byte at a time, and with trailing data."""

from __future__ import annotations

import json
import struct
import tracemalloc
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.protocol import frames as frames_module
from common.protocol.errors import FrameError
from common.protocol.frames import MAX_FRAME, FrameDecoder, decode_json_object, encode_frame


def frame_of(body: bytes) -> bytes:
    """Length-prefix arbitrary bytes (valid or not) the way the wire does."""
    return struct.pack(">I", len(body)) + body


def whole(data: bytes) -> list[bytes]:
    return [data]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def halves(data: bytes) -> list[bytes]:
    middle = len(data) // 2
    return [data[:middle], data[middle:]]


SPLITTERS: dict[str, Callable[[bytes], list[bytes]]] = {
    "whole": whole,
    "bytewise": bytewise,
    "halves": halves,
}


def decode_chunks(chunks: Iterable[bytes], decoder: FrameDecoder | None = None
                  ) -> list[dict[str, Any]]:
    """Feed chunks as a socket loop would, draining frames after every feed."""
    decoder = decoder or FrameDecoder()
    frames: list[dict[str, Any]] = []
    for chunk in chunks:
        decoder.feed(chunk)
        while (frame := decoder.next_frame()) is not None:
            frames.append(frame)
    return frames


VALID_OBJECTS: list[dict[str, Any]] = [
    {},
    {"op": "hello", "version": 1, "agent": "ftclient/0.1"},
    {"op": "put", "path": "dir/résumé 日本.pdf", "size": 2**53 - 1, "mtime": 1.5},
    {"nested": {"list": [1, 2.5, None, True, False, "x"], "deep": [[[{}]]]}},
    {"emoji": "\U0001f600", "quote": '"', "backslash": "\\", "nul": "\x00"},
    {"big": "x" * (MAX_FRAME - 20)},
]


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("obj", VALID_OBJECTS, ids=range(len(VALID_OBJECTS)))
def test_encode_then_decode_gives_the_same_object(obj: dict[str, Any]) -> None:
    data = encode_frame(obj)
    (length,) = struct.unpack(">I", data[:4])
    assert length == len(data) - 4
    assert decode_json_object(data[4:]) == obj


@pytest.mark.parametrize("split", SPLITTERS)
@pytest.mark.parametrize("obj", VALID_OBJECTS[:5], ids=range(5))
def test_decoder_round_trip_however_the_bytes_arrive(obj: dict[str, Any], split: str) -> None:
    decoder = FrameDecoder()
    assert decode_chunks(SPLITTERS[split](encode_frame(obj)), decoder) == [obj]
    assert decoder.buffered == 0


@pytest.mark.parametrize("split", SPLITTERS)
@pytest.mark.parametrize("obj", VALID_OBJECTS, ids=range(len(VALID_OBJECTS)))
def test_each_frame_with_trailing_data(obj: dict[str, Any], split: str) -> None:
    trailing = encode_frame({"next": 1}) + b"\x00\x00"  # a whole frame, then half a header
    decoder = FrameDecoder()
    assert decode_chunks(SPLITTERS[split](encode_frame(obj) + trailing), decoder) == [
        obj, {"next": 1}]
    assert decoder.buffered == 2
    decoder.feed(b"\x00\x02{}")
    assert decoder.next_frame() == {}


def test_decoder_round_trip_of_a_frame_at_the_cap_one_byte_at_a_time() -> None:
    obj = VALID_OBJECTS[-1]
    data = encode_frame(obj)
    assert len(data) - 4 <= MAX_FRAME
    assert decode_chunks(bytewise(data)) == [obj]


def test_encode_frame_is_compact_utf8_json() -> None:
    data = encode_frame({"a": "é", "b": [1, 2]})
    assert data[4:] == '{"a":"é","b":[1,2]}'.encode()


@pytest.mark.parametrize("split", SPLITTERS)
def test_several_frames_in_one_stream_come_out_in_order(split: str) -> None:
    objs = [{"n": n, "pad": "p" * n} for n in range(5)]
    stream = b"".join(encode_frame(obj) for obj in objs)
    assert decode_chunks(SPLITTERS[split](stream)) == objs


def test_several_frames_in_one_feed_are_all_available() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + encode_frame({"b": 2}) + encode_frame({"c": 3})[:5])
    assert decoder.next_frame() == {"a": 1}
    assert decoder.next_frame() == {"b": 2}
    assert decoder.next_frame() is None
    decoder.feed(encode_frame({"c": 3})[5:])
    assert decoder.next_frame() == {"c": 3}
    assert decoder.next_frame() is None
    assert decoder.buffered == 0


def test_partial_header_and_partial_body_wait_for_more() -> None:
    data = encode_frame({"key": "value"})
    for cut in range(len(data)):
        decoder = FrameDecoder()
        decoder.feed(data[:cut])
        assert decoder.next_frame() is None
        assert decoder.buffered == cut
    decoder.feed(data[len(data) - 1 :])
    assert decoder.next_frame() == {"key": "value"}


# ------------------------------------------------------------------ raw bytes after a header


@pytest.mark.parametrize("split", SPLITTERS)
def test_frame_then_raw_bytes_then_frame(split: str) -> None:
    raw = bytes(range(256)) * 3 + b"\xff\xff\xff\xff"  # raw data that looks like a huge length
    stream = encode_frame({"op": "put_data", "offset": 0}) + raw + encode_frame({"op": "end"})
    decoder = FrameDecoder()
    frames: list[dict[str, Any]] = []
    received = bytearray()
    for piece in SPLITTERS[split](stream):
        decoder.feed(piece)
        while True:
            if decoder.raw_pending:
                chunk = decoder.take_raw(100)
                if not chunk:
                    break  # the rest of the raw bytes has not arrived yet
                received += chunk
                continue
            frame = decoder.next_frame()
            if frame is None:
                break
            frames.append(frame)
            if frame["op"] == "put_data":
                decoder.expect_raw(len(raw))
    assert frames == [{"op": "put_data", "offset": 0}, {"op": "end"}]
    assert bytes(received) == raw
    assert decoder.buffered == 0 and decoder.raw_pending == 0


def test_take_raw_never_hands_out_more_than_was_announced() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + b"RAW" + encode_frame({"b": 2}))
    assert decoder.next_frame() == {"a": 1}
    decoder.expect_raw(3)
    assert decoder.take_raw(1000) == b"RAW"
    assert decoder.raw_pending == 0
    assert decoder.take_raw(1000) == b""
    assert decoder.next_frame() == {"b": 2}


def test_take_raw_respects_its_limit() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(10)
    decoder.feed(b"0123456789")
    assert decoder.take_raw(4) == b"0123"
    assert decoder.raw_pending == 6
    assert decoder.take_raw(4) == b"4567"
    assert decoder.take_raw(4) == b"89"
    assert decoder.raw_pending == 0


def test_raw_bytes_that_look_like_a_huge_length_are_not_checked_as_a_frame() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(4)
    decoder.feed(b"\xff\xff\xff\xff")  # would be over the cap if it were a header
    assert decoder.take_raw(4) == b"\xff\xff\xff\xff"
    decoder.feed(encode_frame({"ok": True}))
    assert decoder.next_frame() == {"ok": True}


def test_skip_raw_accounts_for_bytes_read_straight_from_the_socket() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"op": "get"}))
    assert decoder.next_frame() == {"op": "get"}
    decoder.expect_raw(1000)
    decoder.skip_raw(600)
    assert decoder.raw_pending == 400
    decoder.skip_raw(400)
    assert decoder.raw_pending == 0
    decoder.feed(encode_frame({"op": "get_end"}))
    assert decoder.next_frame() == {"op": "get_end"}


def test_skip_raw_refuses_when_bytes_are_buffered_or_too_many() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(10)
    decoder.feed(b"abc")
    with pytest.raises(RuntimeError):
        decoder.skip_raw(3)
    assert decoder.take_raw(3) == b"abc"
    with pytest.raises(RuntimeError):
        decoder.skip_raw(8)
    decoder.skip_raw(7)
    assert decoder.raw_pending == 0


def test_next_frame_refuses_while_raw_bytes_are_pending() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(2)
    decoder.feed(encode_frame({"a": 1}))
    with pytest.raises(RuntimeError):
        decoder.next_frame()


def test_expect_raw_refuses_while_raw_bytes_are_pending() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(2)
    with pytest.raises(RuntimeError):
        decoder.expect_raw(5)
    assert decoder.raw_pending == 2


def test_expect_raw_zero_is_a_no_op() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(0)
    decoder.feed(encode_frame({"a": 1}))
    assert decoder.next_frame() == {"a": 1}


def test_a_bad_length_right_after_raw_bytes_is_caught_before_any_body() -> None:
    decoder = FrameDecoder()
    decoder.expect_raw(3)
    decoder.feed(b"abc" + b"\xff\xff\xff\xff")
    with pytest.raises(FrameError):
        decoder.take_raw(3)
        decoder.next_frame()  # at the latest
    with pytest.raises(FrameError):
        decoder.feed(encode_frame({"a": 1}))


# ------------------------------------------------------------------ the length cap


def test_huge_length_fails_as_soon_as_its_four_bytes_arrive() -> None:
    decoder = FrameDecoder()
    tracemalloc.start()
    try:
        with pytest.raises(FrameError, match="length"):
            decoder.feed(b"\xff\xff\xff\xff")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"refusing a 4 GiB length allocated {peak} bytes"
    assert decoder.buffered == 4


def test_a_valid_length_does_not_reserve_memory_for_its_body() -> None:
    decoder = FrameDecoder(max_frame=2**31)
    tracemalloc.start()
    try:
        decoder.feed(struct.pack(">I", 2**30))  # announces 1 GiB, sends nothing more
        assert decoder.next_frame() is None
        decoder.feed(b"{")
        assert decoder.next_frame() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024, f"a 1 GiB announcement allocated {peak} bytes up front"
    assert decoder.buffered == 5


def test_huge_length_fails_on_the_fourth_byte_when_fed_bytewise() -> None:
    decoder = FrameDecoder()
    for byte in (b"\x7f", b"\x00", b"\x00"):
        decoder.feed(byte)
        assert decoder.next_frame() is None
    with pytest.raises(FrameError):
        decoder.feed(b"\x00")


def test_huge_length_after_a_good_frame_in_the_same_feed_is_refused() -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"a": 1}) + b"\xff\xff\xff\xff")
    assert decoder.next_frame() == {"a": 1}
    with pytest.raises(FrameError):
        decoder.next_frame()


def test_length_exactly_at_the_cap_is_accepted_and_one_more_is_refused() -> None:
    decoder = FrameDecoder(max_frame=100)
    body = json.dumps({"k": "v" * 90}).encode()
    body = json.dumps({"k": "v" * (90 + 100 - len(body))}).encode()
    assert len(body) == 100
    decoder.feed(frame_of(body))
    assert decoder.next_frame() == json.loads(body)

    with pytest.raises(FrameError):
        FrameDecoder(max_frame=100).feed(struct.pack(">I", 101))


def test_default_cap_is_max_frame() -> None:
    FrameDecoder().feed(struct.pack(">I", MAX_FRAME))  # accepted: waits for the body
    with pytest.raises(FrameError):
        FrameDecoder().feed(struct.pack(">I", MAX_FRAME + 1))


@pytest.mark.parametrize("split", SPLITTERS)
def test_zero_length_is_refused(split: str) -> None:
    with pytest.raises(FrameError):
        decode_chunks(SPLITTERS[split](b"\x00\x00\x00\x00" + encode_frame({"a": 1})))


def test_encode_frame_refuses_objects_over_the_cap() -> None:
    with pytest.raises(ValueError, match="cap"):
        encode_frame({"big": "x" * MAX_FRAME})
    with pytest.raises(ValueError):
        encode_frame({"k": "x" * 50}, max_frame=50)
    assert encode_frame({"k": "x"}, max_frame=9)[4:] == b'{"k":"x"}'
    with pytest.raises(ValueError):
        encode_frame({"k": "x"}, max_frame=8)


def test_encode_frame_refuses_nan_and_infinity() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(ValueError):
            encode_frame({"x": value})


# ------------------------------------------------------------------ bad bodies

BAD_BODIES: dict[str, bytes] = {
    "not utf-8": b'{"a":"\xff\xfe"}',
    "overlong utf-8": b'{"a":"\xc0\xaf"}',
    "utf-8 bom": b'\xef\xbb\xbf{"a":1}',
    "not json": b"hello",
    "truncated json": b'{"a":',
    "trailing garbage": b'{"a":1}x',
    "two objects": b'{"a":1}{"b":2}',
    "list": b"[1,2,3]",
    "number": b"42",
    "string": b'"text"',
    "null": b"null",
    "true": b"true",
    "duplicate key": b'{"a":1,"a":2}',
    "nested duplicate key": b'{"x":{"b":1,"b":1}}',
    "NaN": b'{"a":NaN}',
    "Infinity": b'{"a":Infinity}',
    "-Infinity": b'{"a":-Infinity}',
    "float overflowing to infinity": b'{"a":1e400}',
    "float overflowing to -infinity": b'{"a":[-1e999]}',
    "deep arrays": b"[" * 60000,
    "deep arrays inside an object": b'{"a":' + b"[" * 60000,
    "deep objects": b'{"a":' * 12000,
    "huge integer": b'{"a":' + b"9" * 5000 + b"}",
    "single quotes": b"{'a':1}",
}


@pytest.mark.parametrize("split", SPLITTERS)
@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_bodies_raise_frame_error(body: bytes, split: str) -> None:
    assert len(body) <= MAX_FRAME
    with pytest.raises(FrameError):
        decode_chunks(SPLITTERS[split](frame_of(body)))


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_body_followed_by_good_frames_still_fails(body: bytes) -> None:
    decoder = FrameDecoder()
    decoder.feed(encode_frame({"first": 1}) + frame_of(body) + encode_frame({"after": 1}))
    assert decoder.next_frame() == {"first": 1}
    with pytest.raises(FrameError):
        decoder.next_frame()
    with pytest.raises(FrameError):
        decoder.next_frame()  # the good frame after it is never handed out


def test_decode_json_object_rejects_non_objects_directly() -> None:
    for body in (b"[]", b"1", b'"s"', b"null"):
        with pytest.raises(FrameError, match="object"):
            decode_json_object(body)


@pytest.mark.parametrize("body", [b'{"a":"\\ud800"}', b'{"\\udfff":1}', b'{"a":["x\\udc00"]}'])
def test_lone_surrogate_escapes_are_refused(body: bytes) -> None:
    # A "\ud800" escape is valid JSON grammar, but the string it yields cannot be
    # encoded as UTF-8: encode_frame cannot send it back, and print() or a UTF-8 log
    # file fail on it. A frame must be UTF-8 text, so the decoder should refuse it.
    with pytest.raises(FrameError):
        decode_json_object(body)


def test_surrogate_pairs_are_accepted() -> None:
    assert decode_json_object(b'{"a":"\\ud83d\\ude00"}') == {"a": "\U0001f600"}


# ------------------------------------------------------------------ the error state


def _broken_decoder() -> FrameDecoder:
    decoder = FrameDecoder()
    decoder.feed(frame_of(b"[1]"))
    with pytest.raises(FrameError):
        decoder.next_frame()
    return decoder


def test_after_a_bad_body_every_call_raises_frame_error() -> None:
    decoder = _broken_decoder()
    with pytest.raises(FrameError, match="error state"):
        decoder.feed(encode_frame({"a": 1}))
    with pytest.raises(FrameError):
        decoder.next_frame()
    with pytest.raises(FrameError):
        decoder.take_raw(10)


def test_after_a_bad_length_every_call_raises_frame_error() -> None:
    decoder = FrameDecoder()
    with pytest.raises(FrameError):
        decoder.feed(b"\x00\x00\x00\x00")
    for _ in range(3):
        with pytest.raises(FrameError):
            decoder.next_frame()
        with pytest.raises(FrameError):
            decoder.feed(encode_frame({"a": 1}))


def test_error_state_is_per_decoder() -> None:
    _broken_decoder()
    assert decode_chunks([encode_frame({"fresh": True})]) == [{"fresh": True}]


# ------------------------------------------------------------------ the scanner called directly


@pytest.mark.parametrize("body", [b' {"a":1}', b'{"a":1}\n', b'\t\r\n {"a":1} \n\r\t'])
def test_json_whitespace_around_the_object_is_accepted(body: bytes) -> None:
    assert decode_json_object(body) == {"a": 1}


@pytest.mark.parametrize("body", [b'\xc2\xa0{"a":1}', b'{"a":1}\x0c', b'\x0b{"a":1}',
                                  b'{"a":1} \n x', b" ", b""])
def test_other_space_or_data_around_the_object_is_refused(body: bytes) -> None:
    with pytest.raises(FrameError):
        decode_json_object(body)


def _reference_outcome(text: str) -> object:
    """What the json module's own decode (with the codec's options) makes of ``text``."""
    decoder = json.JSONDecoder(object_pairs_hook=frames_module._unique_keys,
                               parse_constant=frames_module._reject_constant,
                               parse_float=frames_module._finite_float)
    try:
        obj = decoder.decode(text)
    except (ValueError, RecursionError):
        return "error"
    return obj if isinstance(obj, dict) else "error"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=' \t\n\r\x0c\xa0{}[]":,01eE.-+aNI\\u', max_size=40))
def test_decoding_agrees_with_the_json_modules_decode(text: str) -> None:
    expected = _reference_outcome(text)
    try:
        got: object = decode_json_object(text.encode("utf-8", "surrogatepass"))
    except FrameError:
        got = "error"
    if b"\\u" in text.encode("utf-8", "surrogatepass") and got == "error":
        return  # a lone surrogate escape is refused on top of what json refuses
    assert got == expected


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=6))
def test_encode_frame_writes_what_json_dumps_writes(obj: dict[str, Any]) -> None:
    try:
        expected = json.dumps(obj, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: neither may send it
        with pytest.raises(UnicodeEncodeError):
            encode_frame(obj, max_frame=1 << 30)
        return
    assert encode_frame(obj, max_frame=1 << 30) == struct.pack(">I", len(expected)) + expected


def test_a_failed_encoding_leaves_nothing_behind_for_the_next() -> None:
    shared = [1, 2]
    with pytest.raises(ValueError):
        encode_frame({"a": shared, "b": float("nan")})
    assert encode_frame({"a": shared, "again": shared}) == frame_of(
        b'{"a":[1,2],"again":[1,2]}')
