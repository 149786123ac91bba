"""docs/protocol.md's table of fields, checked against the codec: each required field of
each request is refused when missing, each optional one may be left out, and fields a
message does not define are ignored in every request and every reply."""

from __future__ import annotations

from typing import Any

import pytest

from common.protocol.errors import ProtocolError
from common.protocol.replies import (
    AuthChallenge,
    AuthDone,
    Done,
    EntryInfo,
    GetEnd,
    GetReady,
    HelloReply,
    ListReply,
    PutDone,
    PutReady,
    StatReply,
    WalkEntry,
    WalkReply,
)
from common.protocol.requests import parse_request

SHA = "ab" * 32
UNKNOWN = {"future_field": [1, {"nested": None}], "x-note": "ignored"}

# op: (required fields with a valid value, optional fields with a valid value)
REQUESTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "hello": ({"version": 1, "agent": "t/1"}, {}),
    "auth": ({"mechanism": "SCRAM-SHA-256", "message": "n,,n=al,r=abc"}, {}),
    "auth_final": ({"message": "c=biws,r=abc,p=xyz"}, {}),
    "list": ({"path": ""}, {}),
    "walk": ({"path": ""}, {}),
    "stat": ({"path": "a"}, {"digest": True}),
    "put": ({"path": "a", "size": 3, "mtime": 1.5}, {"sha256": SHA, "stream": True}),
    "put_data": ({"offset": 0}, {}),
    "put_end": ({"sha256": SHA}, {}),
    "get": ({"path": "a", "offset": 0}, {"prefix_sha256": SHA}),
    "mkdir": ({"path": "a"}, {"parents": True}),
    "move": ({"src": "a", "dst": "b"}, {}),
    "remove": ({"path": "a"}, {"recursive": True}),
    "set_mtime": ({"path": "a", "mtime": 1.5}, {}),
}
REQUIRED = [(op, key) for op, (required, _) in REQUESTS.items() for key in required]


@pytest.mark.parametrize(("op", "key"), REQUIRED)
def test_a_request_without_a_required_field_is_refused(op: str, key: str) -> None:
    required, optional = REQUESTS[op]
    obj = {"op": op, **required, **optional}
    del obj[key]
    with pytest.raises(ProtocolError, match=f"'{key}' is missing"):
        parse_request(obj)


@pytest.mark.parametrize("op", REQUESTS)
def test_optional_fields_may_be_left_out_and_unknown_ones_are_ignored(op: str) -> None:
    required, optional = REQUESTS[op]
    bare = parse_request({"op": op, **required})
    assert parse_request({"op": op, **required, **UNKNOWN}) == bare
    full = parse_request({"op": op, **required, **optional})
    assert parse_request({"op": op, **required, **optional, **UNKNOWN}) == full
    assert type(full) is type(bare)


def test_prefix_sha256_is_required_once_a_get_has_an_offset() -> None:
    with pytest.raises(ProtocolError, match="prefix_sha256"):
        parse_request({"op": "get", "path": "a", "offset": 5})


def test_optional_digests_of_null_are_absent_but_optional_flags_of_null_are_refused() -> None:
    assert parse_request({"op": "put", "path": "a", "size": 1, "mtime": 1.0, "sha256": None}
                         ) == parse_request({"op": "put", "path": "a", "size": 1, "mtime": 1.0})
    with pytest.raises(ProtocolError, match="true or false"):
        parse_request({"op": "mkdir", "path": "a", "parents": None})


ENTRY = {"name": "a", "type": "file", "size": 1, "mtime": 1.0, "sha256": SHA}
WALK_ENTRY = {"path": "d/a", "type": "file", "size": 1, "mtime": 1.0}
REPLIES: list[tuple[type[Any], dict[str, Any]]] = [
    (HelloReply, {"ok": True, "version": 1, "server": "s", "name": "n"}),
    (EntryInfo, ENTRY),
    (ListReply, {"ok": True, "entries": [ENTRY], "done": True}),
    (StatReply, {"ok": True, "entry": ENTRY}),
    (PutReady, {"ok": True, "offset": 1, "prefix_sha256": SHA}),
    (PutDone, {"ok": True, "size": 1, "sha256": SHA}),
    (GetReady, {"ok": True, "size": 1, "mtime": 1.0, "offset": 0, "sha256": SHA}),
    (GetEnd, {"ok": True, "sha256": SHA}),
    (AuthChallenge, {"ok": True, "message": "r=abc,s=QSXC,i=4096"}),
    (AuthDone, {"ok": True, "message": "v=abc", "access": "rw"}),
    (Done, {"ok": True}),
    (WalkEntry, WALK_ENTRY),
    (WalkReply, {"ok": True, "entries": [WALK_ENTRY], "done": True}),
]


@pytest.mark.parametrize(("cls", "obj"), REPLIES, ids=[cls.__name__ for cls, _ in REPLIES])
def test_replies_ignore_fields_they_do_not_define(cls: type[Any], obj: dict[str, Any]) -> None:
    assert cls.from_dict({**obj, **UNKNOWN}) == cls.from_dict(obj)
