"""Property tests for the codec: hostile bytes and hostile dicts only ever raise ft errors."""

from __future__ import annotations

import json
import math
import re
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.protocol.errors import FrameError, FtError
from common.protocol.fields import MAX_FILE_SIZE
from common.protocol.frames import MAX_FRAME, FrameDecoder, decode_json_object, encode_frame
from common.protocol.names import split_path
from common.protocol.replies import (
    EntryInfo,
    GetEnd,
    GetReady,
    HelloReply,
    ListReply,
    PutDone,
    PutReady,
    StatReply,
    check_reply,
)
from common.protocol.requests import (
    GetRequest,
    Hello,
    ListDir,
    PutData,
    PutEnd,
    PutRequest,
    Stat,
    parse_request,
)

# Bounded so the file runs in seconds; too_slow is waived for loaded CI machines.
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SHA = "0123456789abcdef" * 4
OPS = ["hello", "list", "stat", "put", "put_data", "put_end", "get"]
FIELDS = ["version", "agent", "path", "size", "mtime", "sha256", "offset", "prefix_sha256",
          "ok", "error", "entries", "entry", "done", "server", "name", "type"]
REQUEST_CLASSES = (Hello, ListDir, Stat, PutRequest, PutData, PutEnd, GetRequest)

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(st.text(max_size=8), children, max_size=4)),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

# Values picked to sit on the edges of the validators.
EDGE_VALUES: list[Any] = [
    0, 1, -1, 2**53 - 1, 2**53, 2**63, 10**400, -(10**400), 65536, 65537,
    True, False, None, 0.5, -0.0, 1e300, math.inf, -math.inf, math.nan,
    "", ".", "..", "a", "a/b", "../x", "/etc", "C:x", "a\\b", "x\x00", ".ft-x", "é" * 128,
    SHA, SHA.upper(), SHA + "\n", SHA[:-1], "file", "dir", "not_found", "x" * 1025,
    [], {}, [SHA], {"code": "not_found", "message": "m"},
    {"name": "a", "type": "file", "size": 1, "mtime": 0.0},
    [{"name": "..", "type": "file", "size": 1, "mtime": 0.0}],
]
edge_values = st.sampled_from(EDGE_VALUES)
# Flat containers are enough to hit every validator, and far cheaper to draw than recursion.
field_values = (edge_values | scalars | st.lists(scalars, max_size=3)
                | st.dictionaries(st.text(max_size=5), scalars, max_size=3))

hostile_dicts = st.fixed_dictionaries(
    {},
    optional={"op": st.sampled_from(OPS) | field_values,
              **{field: field_values for field in FIELDS}},
)

ENTRY = {"name": "a.txt", "type": "file", "size": 5, "mtime": 1.5, "sha256": SHA}
# One valid header per message. Mutating one or two fields of these reaches each validator
# far more often than dicts drawn from nothing, which mostly fail on their first field.
REQUEST_TEMPLATES: list[dict[str, Any]] = [
    {"op": "hello", "version": 1, "agent": "t"},
    {"op": "list", "path": ""},
    {"op": "stat", "path": "a/b"},
    {"op": "put", "path": "a", "size": 10, "mtime": 1.5, "sha256": SHA},
    {"op": "put_data", "offset": 3},
    {"op": "put_end", "sha256": SHA},
    {"op": "get", "path": "a", "offset": 4, "prefix_sha256": SHA},
]
REPLY_TEMPLATES: list[tuple[Any, dict[str, Any]]] = [
    (HelloReply, {"ok": True, "version": 1, "server": "s", "name": "n"}),
    (ListReply, {"ok": True, "entries": [ENTRY, {**ENTRY, "name": "d", "type": "dir"}],
                 "done": True}),
    (StatReply, {"ok": True, "entry": ENTRY}),
    (PutReady, {"ok": True, "offset": 4, "prefix_sha256": SHA}),
    (PutDone, {"ok": True, "size": 4, "sha256": SHA}),
    (GetReady, {"ok": True, "size": 9, "mtime": 2.0, "offset": 4, "sha256": SHA}),
    (GetEnd, {"ok": True, "sha256": SHA}),
    (EntryInfo, ENTRY),
]


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, Any]) -> dict[str, Any]:
    """``template`` with one to three fields replaced by hostile values or removed."""
    obj = dict(template)
    keys = [*template, "extra"]
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        key = draw(st.sampled_from(keys))
        if draw(st.integers(min_value=0, max_value=5)) == 0:
            obj.pop(key, None)
        else:
            obj[key] = draw(field_values)
    return obj


request_dicts = st.sampled_from(REQUEST_TEMPLATES).flatmap(mutated) | hostile_dicts
reply_dicts = st.sampled_from(REPLY_TEMPLATES).flatmap(
    lambda pair: st.tuples(st.just(pair[0]), mutated(pair[1]) | hostile_dicts))


def frame_of(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


stream_pieces = st.one_of(
    st.binary(max_size=40),                                       # noise
    json_objects.map(encode_frame),                               # well-formed frames
    st.binary(max_size=60).map(frame_of),                         # right length, random body
    json_values.map(lambda v: frame_of(json.dumps(v).encode())),  # right length, any JSON
    st.sampled_from([b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", struct.pack(">I", MAX_FRAME),
                     struct.pack(">I", MAX_FRAME + 1), frame_of(b"[" * 5000),
                     frame_of(b'{"a":1e400}'), frame_of(b'{"a":[-1E+999]}'),
                     frame_of(b'{"a":NaN}'), frame_of(b'{"a":1,"a":1}'),
                     frame_of(b'{"a":' + b"9" * 5000 + b"}"), frame_of(b'{"a":"\xc3"}')]),
)
streams = st.lists(stream_pieces, max_size=5).map(b"".join)
cut_lists = st.lists(st.integers(min_value=0), max_size=8)


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def run_decoder(chunks: list[bytes]) -> tuple[list[dict[str, Any]], bool]:
    """Feed chunks and drain frames; return the frames and whether the stream failed."""
    decoder = FrameDecoder()
    frames: list[dict[str, Any]] = []
    try:
        for chunk in chunks:
            decoder.feed(chunk)
            while (frame := decoder.next_frame()) is not None:
                assert type(frame) is dict
                # What the decoder accepts, encode_frame can send on (no NaN, no infinity).
                assert decode_json_object(encode_frame(frame)[4:]) == frame
                frames.append(frame)
    except FrameError:
        # Once broken, always broken: no later call hands out anything.
        for call in (lambda: decoder.feed(encode_frame({"a": 1})), decoder.next_frame):
            try:
                call()
            except FrameError:
                pass
            else:
                raise AssertionError("decoder left its error state") from None
        return frames, True
    return frames, False


def assert_clean(obj: dict[str, Any]) -> None:
    """Invariants of every accepted message, whatever the validators' own wording."""
    for key, value in obj.items():
        if key.endswith("sha256"):
            assert re.fullmatch("[0-9a-f]{64}", value), (key, value)
        elif key in ("size", "offset"):
            assert type(value) is int and 0 <= value <= MAX_FILE_SIZE, (key, value)
        elif key == "mtime":
            assert type(value) is float and math.isfinite(value), (key, value)
        elif key == "path" and value:
            assert split_path(value)
        elif key == "entry":
            assert_clean(value)
        elif key == "entries":
            for entry in value:
                assert_clean(entry)


@BOUNDED
@given(streams, cut_lists)
def test_any_bytes_in_any_split_give_dicts_or_frame_error(data: bytes, cuts: list[int]) -> None:
    outcome = run_decoder(split_at(data, cuts))
    # The split never changes what comes out.
    assert outcome == run_decoder([data])


@BOUNDED
@given(st.binary(max_size=300))
def test_random_bytes_one_at_a_time_give_dicts_or_frame_error(data: bytes) -> None:
    assert run_decoder([data[i : i + 1] for i in range(len(data))]) == run_decoder([data])


@BOUNDED
@given(request_dicts)
def test_parse_request_accepts_or_raises_an_ft_error(obj: dict[str, Any]) -> None:
    try:
        request = parse_request(obj)
    except FtError:
        return
    assert isinstance(request, REQUEST_CLASSES)
    assert request.OP == obj["op"]
    assert_clean(request.to_dict())
    # Whatever is accepted can be sent and parses back to the same message.
    frame = encode_frame(request.to_dict())
    decoder = FrameDecoder()
    decoder.feed(frame)
    assert parse_request(decoder.next_frame() or {}) == request


def test_every_edge_value_in_every_field_gives_a_message_or_an_ft_error() -> None:
    # Exhaustive where hypothesis samples: each edge value, in each field of each template.
    values = EDGE_VALUES
    assert 10**400 in values and SHA + "\n" in values
    checked = 0
    for template in REQUEST_TEMPLATES:
        for key in template:
            for value in values:
                try:
                    request = parse_request({**template, key: value})
                except FtError:
                    pass
                else:
                    assert_clean(request.to_dict())
                checked += 1
    for cls, template in REPLY_TEMPLATES:
        for key in template:
            for value in values:
                try:
                    reply = cls.from_dict({**template, key: value})
                except FtError:
                    pass
                else:
                    assert_clean(reply.to_dict())
                checked += 1
    assert checked > 1000


@BOUNDED
@given(reply_dicts)
def test_reply_parsers_accept_or_raise_an_ft_error(case: tuple[Any, dict[str, Any]]) -> None:
    cls, obj = case
    try:
        reply = cls.from_dict(obj)
    except FtError:
        return
    if cls is not EntryInfo:
        assert obj.get("ok") is True
        assert check_reply(reply.to_dict())
    assert_clean(reply.to_dict())
    assert cls.from_dict(reply.to_dict()) == reply


@BOUNDED
@given(st.lists(json_objects, min_size=1, max_size=3), cut_lists)
def test_encode_then_decode_round_trips_any_json_objects(objs: list[dict[str, Any]],
                                                         cuts: list[int]) -> None:
    data = b"".join(encode_frame(obj) for obj in objs)
    assert run_decoder(split_at(data, cuts)) == (objs, False)


def test_encode_frame_refuses_what_is_over_the_cap() -> None:
    # The generated objects above stay small; this pins the other side of the cap.
    obj = {"k": "x" * (MAX_FRAME - 8)}  # {"k":"..."} is exactly MAX_FRAME bytes
    assert run_decoder([encode_frame(obj)]) == ([obj], False)
    with pytest.raises(ValueError):
        encode_frame({"k": "x" * (MAX_FRAME - 7)})


def test_templates_are_valid() -> None:
    # Otherwise the properties above would mostly test the error path.
    for obj in REQUEST_TEMPLATES:
        assert parse_request(obj).to_dict() == obj
    for cls, obj in REPLY_TEMPLATES:
        assert cls.from_dict(obj).to_dict() == obj


# ------------------------------------------------------------------ decoder shortcuts


def _reference_decode(payload: bytes) -> dict[str, Any]:
    """decode_json_object as it was before its shortcuts: every pair and every string checked."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise ValueError(f"duplicate key {key!r}")
            result[key] = value
        return result

    obj = json.loads(payload.decode("utf-8"), object_pairs_hook=unique)
    if not isinstance(obj, dict):
        raise ValueError("not an object")
    json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return obj


# Strings that may hold a lone surrogate, a pair, an escaped backslash before a "u".
tricky_text = st.lists(st.sampled_from(["a", "é", "\ud800", "\udfff", "\ud83d\ude00",
                                        "\\u", "\\", "u", "\x00", "𝄞"]),
                       max_size=4).map("".join)
tricky_values = st.recursive(
    st.none() | st.integers(-5, 5) | tricky_text,
    lambda children: st.lists(children, max_size=3)
    | st.lists(st.tuples(tricky_text, children), max_size=3),
    max_leaves=6,
)


def _render(value: Any, ascii_only: bool) -> str:
    """JSON text for ``value``, a list of (key, value) tuples becoming an object whose keys
    may repeat."""
    if isinstance(value, list) and value and all(isinstance(v, tuple) for v in value):
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{_render(v, ascii_only)}"
                              for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_render(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


@BOUNDED
@given(st.lists(st.tuples(tricky_text, tricky_values), max_size=4), st.booleans())
def test_the_decoder_accepts_exactly_what_a_full_check_accepts(
        pairs: list[tuple[str, Any]], ascii_only: bool) -> None:
    text = "{" + ",".join(f"{json.dumps(k, ensure_ascii=ascii_only)}:{_render(v, ascii_only)}"
                          for k, v in pairs) + "}"
    payload = text.encode("utf-8", "surrogatepass")  # raw surrogates: invalid UTF-8, refused
    try:
        expected: dict[str, Any] | None = _reference_decode(payload)
    except (ValueError, UnicodeError):
        expected = None
    if expected is None:
        with pytest.raises(FrameError):
            decode_json_object(payload)
    else:
        assert decode_json_object(payload) == expected
