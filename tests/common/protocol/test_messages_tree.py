"""The folder messages: mkdir, move, remove, set_mtime, walk, streamed put, stat with digest.

Same rules as every other message: exact types (a flag is a JSON boolean, never
"true" or 1), paths under the name rules, and what goes out comes back equal.
"""

from __future__ import annotations

from typing import Any

import pytest

from common.protocol.errors import BadPath, NotEmpty, ProtocolError
from common.protocol.fields import mtime_ns
from common.protocol.replies import Done, WalkEntry, WalkReply, error_reply
from common.protocol.requests import (
    WRITE_OPS,
    MakeDir,
    Move,
    PutRequest,
    Remove,
    SetMtime,
    Stat,
    Walk,
    parse_request,
)

DIGEST = "ab" * 32


@pytest.mark.parametrize(("obj", "expected"), [
    ({"op": "mkdir", "path": "a/b"}, MakeDir("a/b", False)),
    ({"op": "mkdir", "path": "a/b", "parents": True}, MakeDir("a/b", True)),
    ({"op": "move", "src": "a", "dst": "b/c"}, Move("a", "b/c")),
    ({"op": "remove", "path": "a", "recursive": True}, Remove("a", True)),
    ({"op": "walk", "path": ""}, Walk("")),
    ({"op": "set_mtime", "path": "a/b", "mtime": 1795798696.1}, SetMtime("a/b", 1795798696.1)),
    ({"op": "set_mtime", "path": "a", "mtime": 7}, SetMtime("a", 7.0)),
    ({"op": "stat", "path": "x", "digest": True}, Stat("x", True)),
    ({"op": "put", "path": "x", "size": 3, "mtime": 1.5, "stream": True},
     PutRequest("x", 3, 1.5, None, True)),
])
def test_folder_requests_parse_and_round_trip(obj: dict[str, Any], expected: Any) -> None:
    assert parse_request(obj) == expected
    assert parse_request(expected.to_dict()) == expected


@pytest.mark.parametrize("obj", [
    {"op": "mkdir", "path": "a", "parents": "true"},
    {"op": "mkdir", "path": "a", "parents": 1},
    {"op": "remove", "path": "a", "recursive": None},
    {"op": "put", "path": "x", "size": 3, "mtime": 1.0, "stream": 1},
    {"op": "stat", "path": "x", "digest": "yes"},
    {"op": "move", "src": "a"},
    {"op": "move", "src": "a", "dst": 5},
    {"op": "set_mtime", "path": "a"},
    {"op": "set_mtime", "path": "a", "mtime": "1.5"},
    {"op": "set_mtime", "path": "a", "mtime": True},
    {"op": "set_mtime", "path": "a", "mtime": float("nan")},
    {"op": "set_mtime", "path": "a", "mtime": 2.0**41},
    {"op": "set_mtime", "path": 5, "mtime": 1.0},
])
def test_flags_and_fields_are_type_exact(obj: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        parse_request(obj)


@pytest.mark.parametrize("obj", [
    {"op": "mkdir", "path": ""},
    {"op": "remove", "path": ""},
    {"op": "remove", "path": "../x"},
    {"op": "move", "src": "", "dst": "x"},
    {"op": "move", "src": "a", "dst": "/etc/x"},
    {"op": "walk", "path": "a/../.."},
    {"op": "mkdir", "path": ".ft-state"},
    {"op": "set_mtime", "path": "", "mtime": 1.0},
    {"op": "set_mtime", "path": "a/../../x", "mtime": 1.0},
])
def test_the_root_and_escapes_cannot_be_named(obj: dict[str, Any]) -> None:
    with pytest.raises(BadPath):
        parse_request(obj)


def test_every_operation_that_changes_the_share_is_a_write_op() -> None:
    assert {"put", "mkdir", "move", "remove", "set_mtime"} <= WRITE_OPS
    assert not {"walk", "stat", "list", "get"} & WRITE_OPS


@pytest.mark.parametrize("ns", [0, 1, 999_999_999, 1_600_000_000_123_456_789,
                                -1_000_000_001, 1_795_798_696_100_000_000])
def test_mtime_ns_recovers_the_nanoseconds_a_float_carries(ns: int) -> None:
    assert abs(mtime_ns(ns / 1e9) - ns) <= 256  # a double's step near 2**31 s is ~238 ns


def test_walk_reply_round_trips_and_checks_every_path() -> None:
    reply = WalkReply((WalkEntry("a", "dir", 0, 1.0), WalkEntry("a/b c.txt", "file", 5, 2.5,
                                                                 DIGEST)), True)
    assert WalkReply.from_dict(reply.to_dict()) == reply
    for bad in ("../x", "/x", "a//b", "a/\x07", "C:x", ""):
        obj = reply.to_dict()
        obj["entries"][1]["path"] = bad
        with pytest.raises(BadPath):
            WalkReply.from_dict(obj)


def test_done_carries_errors_like_every_reply() -> None:
    assert Done.from_dict(Done().to_dict()) == Done()
    with pytest.raises(NotEmpty):
        Done.from_dict(error_reply(NotEmpty("the folder 'a' is not empty")))
