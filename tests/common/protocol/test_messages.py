"""Validated messages: every request op, the reply classes, and error replies to exceptions."""

from __future__ import annotations

import math
from typing import Any

import pytest

from common.protocol import errors
from common.protocol.errors import BadPath, FtError, NotFound, ProtocolError, UnknownOp
from common.protocol.fields import MAX_FILE_SIZE, MAX_TEXT
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
    error_reply,
    ok_reply,
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

SHA = "0123456789abcdef" * 4
SHA2 = "f" * 64

# ------------------------------------------------------------------ requests: accepted

VALID_REQUESTS: list[tuple[dict[str, Any], Any]] = [
    ({"op": "hello", "version": 1, "agent": "ftclient/0.1"}, Hello(1, "ftclient/0.1")),
    ({"op": "hello", "version": 0, "agent": ""}, Hello(0, "")),
    ({"op": "hello", "version": 65536, "agent": "x" * MAX_TEXT}, Hello(65536, "x" * MAX_TEXT)),
    ({"op": "list", "path": ""}, ListDir("")),
    ({"op": "list", "path": "a/b c/日本"}, ListDir("a/b c/日本")),
    ({"op": "stat", "path": "report.pdf"}, Stat("report.pdf")),
    ({"op": "put", "path": "a/b.iso", "size": 0, "mtime": 0}, PutRequest("a/b.iso", 0, 0.0)),
    ({"op": "put", "path": "b", "size": MAX_FILE_SIZE, "mtime": -1.5, "sha256": SHA},
     PutRequest("b", MAX_FILE_SIZE, -1.5, SHA)),
    ({"op": "put_data", "offset": 0}, PutData(0)),
    ({"op": "put_data", "offset": MAX_FILE_SIZE}, PutData(MAX_FILE_SIZE)),
    ({"op": "put_end", "sha256": SHA}, PutEnd(SHA)),
    ({"op": "get", "path": "f", "offset": 0}, GetRequest("f", 0, None)),
    ({"op": "get", "path": "f", "offset": 0, "prefix_sha256": SHA}, GetRequest("f", 0, SHA)),
    ({"op": "get", "path": "d/f", "offset": 10, "prefix_sha256": SHA},
     GetRequest("d/f", 10, SHA)),
]


@pytest.mark.parametrize(("obj", "expected"), VALID_REQUESTS)
def test_valid_requests_parse_to_their_message(obj: dict[str, Any], expected: Any) -> None:
    request = parse_request(obj)
    assert type(request) is type(expected)
    assert request == expected
    assert request.to_dict() == obj  # and back to the same header
    assert parse_request(request.to_dict()) == request


def test_unknown_extra_fields_are_ignored() -> None:
    assert parse_request({"op": "stat", "path": "a", "future": [1]}) == Stat("a")


def test_put_mtime_comes_back_as_a_float() -> None:
    request = parse_request({"op": "put", "path": "a", "size": 1, "mtime": 7})
    assert isinstance(request, PutRequest)
    assert type(request.mtime) is float and request.mtime == 7.0


def test_to_dict_leaves_out_absent_optional_fields() -> None:
    assert "sha256" not in PutRequest("a", 1, 2.0).to_dict()
    assert "prefix_sha256" not in GetRequest("a").to_dict()


# ------------------------------------------------------------------ requests: refused


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Copy ``base`` with fields replaced; a value of ... removes the field."""
    result = dict(base)
    for key, value in changes.items():
        if value is ...:
            result.pop(key, None)
        else:
            result[key] = value
    return result


HELLO = {"op": "hello", "version": 1, "agent": "a"}
PUT = {"op": "put", "path": "a", "size": 10, "mtime": 1.0, "sha256": SHA}
GET = {"op": "get", "path": "a", "offset": 0}

BAD_FIELD: list[tuple[dict[str, Any], str]] = [
    # hello
    (_with(HELLO, version=...), "version"),
    (_with(HELLO, version="1"), "version"),
    (_with(HELLO, version=True), "version"),
    (_with(HELLO, version=1.0), "version"),
    (_with(HELLO, version=-1), "version"),
    (_with(HELLO, version=65537), "version"),
    (_with(HELLO, agent=...), "agent"),
    (_with(HELLO, agent=5), "agent"),
    (_with(HELLO, agent=None), "agent"),
    (_with(HELLO, agent="x" * (MAX_TEXT + 1)), "agent"),
    # list / stat
    ({"op": "list"}, "path"),
    ({"op": "list", "path": None}, "path"),
    ({"op": "list", "path": 3}, "path"),
    ({"op": "list", "path": ["a"]}, "path"),
    ({"op": "stat"}, "path"),
    ({"op": "stat", "path": False}, "path"),
    # put
    (_with(PUT, path=...), "path"),
    (_with(PUT, size=...), "size"),
    (_with(PUT, size=True), "size"),
    (_with(PUT, size=False), "size"),
    (_with(PUT, size="10"), "size"),
    (_with(PUT, size=10.0), "size"),
    (_with(PUT, size=-1), "size"),
    (_with(PUT, size=MAX_FILE_SIZE + 1), "size"),
    (_with(PUT, size=10**30), "size"),
    (_with(PUT, size=None), "size"),
    (_with(PUT, mtime=...), "mtime"),
    (_with(PUT, mtime="1"), "mtime"),
    (_with(PUT, mtime=True), "mtime"),
    (_with(PUT, mtime=None), "mtime"),
    (_with(PUT, mtime=math.nan), "mtime"),
    (_with(PUT, mtime=math.inf), "mtime"),
    (_with(PUT, mtime=-math.inf), "mtime"),
    (_with(PUT, mtime=2.0**41), "mtime"),
    (_with(PUT, mtime=-(2**41)), "mtime"),
    (_with(PUT, mtime=10**400), "mtime"),  # a JSON integer too big for a float
    (_with(PUT, mtime=-(10**400)), "mtime"),
    (_with(PUT, sha256=SHA.upper()), "sha256"),
    (_with(PUT, sha256="A" + SHA[1:]), "sha256"),
    (_with(PUT, sha256=SHA[:-1]), "sha256"),
    (_with(PUT, sha256=SHA + "0"), "sha256"),
    (_with(PUT, sha256="g" * 64), "sha256"),
    (_with(PUT, sha256=SHA + "\n"), "sha256"),
    (_with(PUT, sha256=" " + SHA[1:]), "sha256"),
    (_with(PUT, sha256=""), "sha256"),
    (_with(PUT, sha256=int(SHA, 16)), "sha256"),
    # put_data / put_end
    ({"op": "put_data"}, "offset"),
    ({"op": "put_data", "offset": True}, "offset"),
    ({"op": "put_data", "offset": -1}, "offset"),
    ({"op": "put_data", "offset": MAX_FILE_SIZE + 1}, "offset"),
    ({"op": "put_data", "offset": 1.5}, "offset"),
    ({"op": "put_data", "offset": "0"}, "offset"),
    ({"op": "put_end"}, "sha256"),
    ({"op": "put_end", "sha256": None}, "sha256"),
    ({"op": "put_end", "sha256": SHA.upper()}, "sha256"),
    ({"op": "put_end", "sha256": SHA[:32]}, "sha256"),
    ({"op": "put_end", "sha256": SHA + "\n"}, "sha256"),
    # get
    (_with(GET, path=...), "path"),
    (_with(GET, offset=...), "offset"),
    (_with(GET, offset=True), "offset"),
    (_with(GET, offset=-5), "offset"),
    (_with(GET, offset=MAX_FILE_SIZE + 1), "offset"),
    (_with(GET, offset=5), "prefix_sha256"),  # a resume must prove what it holds
    (_with(GET, offset=5, prefix_sha256=None), "prefix_sha256"),
    (_with(GET, offset=5, prefix_sha256=SHA.upper()), "prefix_sha256"),
    (_with(GET, prefix_sha256="abc"), "prefix_sha256"),
]


@pytest.mark.parametrize(("obj", "field"), BAD_FIELD)
def test_invalid_fields_raise_protocol_error_naming_the_field(obj: dict[str, Any], field: str
                                                              ) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request(obj)
    assert f"'{field}'" in info.value.message
    assert info.value.code == "bad_request"


BAD_PATHS = ["..", "../etc/passwd", "a/../b", "/etc/passwd", "C:foo", "c:\\x", "a\\b", "a//b",
             "a/", "./a", "a\x00b", "a\nb", "a\x7f", ".ft-partial", "d/.ft-x", "x" * 256]


@pytest.mark.parametrize("op", ["list", "stat", "put", "get"])
@pytest.mark.parametrize("path", BAD_PATHS)
def test_every_op_with_a_path_refuses_bad_paths(op: str, path: str) -> None:
    obj = {"op": op, "path": path, "size": 1, "mtime": 1.0, "offset": 0}
    with pytest.raises(BadPath):
        parse_request(obj)


@pytest.mark.parametrize("op", ["stat", "put", "get"])
def test_only_list_accepts_the_empty_root_path(op: str) -> None:
    with pytest.raises(BadPath):
        parse_request({"op": op, "path": "", "size": 1, "mtime": 1.0, "offset": 0})


@pytest.mark.parametrize("op", ["delete", "HELLO", "Hello", "", "hello ", "put-data", "x" * 5000])
def test_unknown_ops_raise_unknown_op(op: str) -> None:
    with pytest.raises(UnknownOp) as info:
        parse_request({"op": op, "path": "a"})
    assert info.value.code == "unknown_op"
    assert len(info.value.message) < 200  # a hostile op is not echoed back whole


@pytest.mark.parametrize("op", [None, 1, True, ["hello"], {"op": "hello"}])
def test_op_that_is_not_a_string_is_refused(op: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request({"op": op, "version": 1, "agent": ""})
    assert not isinstance(info.value, UnknownOp)
    assert "'op'" in info.value.message


def test_missing_op_is_refused() -> None:
    with pytest.raises(ProtocolError, match="'op'"):
        parse_request({"path": "a"})


# ------------------------------------------------------------------ replies: round trips

ENTRY_FILE = EntryInfo("report.pdf", "file", 1234, 1_700_000_000.25, SHA)
ENTRY_DIR = EntryInfo("Photos 2024", "dir", 0, 0.0)

REPLIES: list[Any] = [
    HelloReply(1, "ftserver/0.1", "office share"),
    ListReply((ENTRY_FILE, ENTRY_DIR), True),
    ListReply((), False),
    StatReply(ENTRY_FILE),
    StatReply(ENTRY_DIR),
    PutReady(0, None),
    PutReady(4096, SHA),
    PutDone(10, SHA),
    PutDone(0, SHA2),
    GetReady(10, 5.5, 0, SHA),
    GetReady(10, 5.5, 10, None),
    GetReady(0, -3.0, 0, SHA2),
    GetEnd(SHA),
]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda reply: type(reply).__name__)
def test_replies_round_trip_through_dicts(reply: Any) -> None:
    obj = reply.to_dict()
    assert obj["ok"] is True
    again = type(reply).from_dict(obj)
    assert again == reply
    assert again.to_dict() == obj


def test_entry_info_round_trips_on_its_own() -> None:
    for entry in (ENTRY_FILE, ENTRY_DIR):
        assert EntryInfo.from_dict(entry.to_dict()) == entry
    assert "sha256" not in ENTRY_DIR.to_dict()


@pytest.mark.parametrize("reply", REPLIES, ids=lambda reply: type(reply).__name__)
def test_every_reply_class_raises_the_error_an_error_reply_carries(reply: Any) -> None:
    with pytest.raises(NotFound, match="no such file"):
        type(reply).from_dict(error_reply(NotFound("no such file")))


# ------------------------------------------------------------------ replies: refused

HOSTILE_NAMES = ["", ".", "..", "a/b", "../x", "/etc", "a\\b", "x\x00", "x\x01y", "tab\there",
                 "new\nline", "del\x7f", ".ft-secret", ".ft-", "\u00e9" * 128]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_entry_info_refuses_hostile_names(name: str) -> None:
    with pytest.raises(ProtocolError):  # BadPath is a ProtocolError
        EntryInfo.from_dict({"name": name, "type": "file", "size": 1, "mtime": 0.0})


def test_entry_info_accepts_ordinary_names() -> None:
    for name in ("résumé.pdf", "my file (1).txt", 'say "hi"', "it's", "...", ".hidden", "x.ft-y"):
        entry = EntryInfo.from_dict({"name": name, "type": "file", "size": 1, "mtime": 0})
        assert entry.name == name


ENTRY = {"name": "a", "type": "file", "size": 1, "mtime": 0.0}
BAD_ENTRIES: list[Any] = [
    None,
    ["a", "file", 1, 0.0],
    _with(ENTRY, name=...),
    _with(ENTRY, name=1),
    _with(ENTRY, type=...),
    _with(ENTRY, type="link"),
    _with(ENTRY, type="FILE"),
    _with(ENTRY, size=True),
    _with(ENTRY, size=-1),
    _with(ENTRY, size=MAX_FILE_SIZE + 1),
    _with(ENTRY, mtime=...),
    _with(ENTRY, mtime=math.nan),
    _with(ENTRY, mtime=10**400),
    _with(ENTRY, sha256="ABC"),
]


@pytest.mark.parametrize("obj", BAD_ENTRIES)
def test_entry_info_refuses_bad_fields(obj: Any) -> None:
    with pytest.raises(ProtocolError):
        EntryInfo.from_dict(obj)


@pytest.mark.parametrize("obj", BAD_ENTRIES[2:])
def test_list_and_stat_replies_refuse_bad_entries(obj: Any) -> None:
    with pytest.raises(ProtocolError):
        ListReply.from_dict(ok_reply(entries=[ENTRY, obj], done=True))
    with pytest.raises(ProtocolError):
        StatReply.from_dict(ok_reply(entry=obj))


@pytest.mark.parametrize("obj", [
    ok_reply(done=True),
    ok_reply(entries={"a": ENTRY}, done=True),
    ok_reply(entries=[ENTRY]),
    ok_reply(entries=[ENTRY], done=1),
    ok_reply(entries=[ENTRY], done="true"),
    ok_reply(entries=[ENTRY, "a"], done=True),
])
def test_list_reply_refuses_bad_shapes(obj: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        ListReply.from_dict(obj)


def test_stat_reply_needs_an_entry() -> None:
    with pytest.raises(ProtocolError):
        StatReply.from_dict(ok_reply())


def test_get_ready_refuses_an_offset_beyond_the_size() -> None:
    with pytest.raises(ProtocolError, match="offset"):
        GetReady.from_dict(ok_reply(size=10, mtime=0.0, offset=11, sha256=SHA))
    assert GetReady.from_dict(ok_reply(size=10, mtime=0.0, offset=10)).offset == 10


def test_put_ready_needs_a_prefix_digest_to_resume() -> None:
    with pytest.raises(ProtocolError, match="prefix_sha256"):
        PutReady.from_dict(ok_reply(offset=5))
    with pytest.raises(ProtocolError):
        PutReady.from_dict(ok_reply(offset=5, prefix_sha256=SHA.upper()))
    assert PutReady.from_dict(ok_reply(offset=0)) == PutReady(0, None)


@pytest.mark.parametrize(("cls", "obj"), [
    (HelloReply, ok_reply(version=True, server="s", name="n")),
    (HelloReply, ok_reply(version=1, server=1, name="n")),
    (PutReady, ok_reply(offset=-1)),
    (PutReady, ok_reply(offset=1.0, prefix_sha256=SHA)),
    (PutDone, ok_reply(size=1)),
    (PutDone, ok_reply(size=1, sha256=SHA[:-1])),
    (PutDone, ok_reply(size=False, sha256=SHA)),
    (GetReady, ok_reply(size=10, offset=0)),
    (GetReady, ok_reply(size=10, mtime=0.0, offset=True)),
    (GetReady, ok_reply(size=MAX_FILE_SIZE + 1, mtime=0.0, offset=0)),
    (GetEnd, ok_reply()),
    (GetEnd, ok_reply(sha256=SHA.upper())),
])
def test_replies_refuse_bad_fields(cls: Any, obj: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError):
        cls.from_dict(obj)


# ------------------------------------------------------------------ error replies


def test_every_wire_code_maps_to_its_own_class() -> None:
    assert errors.WIRE_CODES >= {"not_found", "bad_path", "bad_frame", "unknown_op", "locked",
                                 "busy", "integrity", "exists", "permission", "no_space"}
    for code in errors.WIRE_CODES:
        exc = errors.error_from_wire(code, "m")
        assert exc.code == code
        assert type(exc) is not FtError


@pytest.mark.parametrize("code", sorted(errors.WIRE_CODES))
def test_check_reply_raises_the_class_of_each_code(code: str) -> None:
    with pytest.raises(FtError) as info:
        check_reply({"ok": False, "error": {"code": code, "message": "human words"}})
    assert info.value.code == code
    assert info.value.message == "human words"
    assert type(info.value) is type(errors.error_from_wire(code, "x"))


@pytest.mark.parametrize(("code", "cls"), [
    ("not_found", errors.NotFound),
    ("bad_path", errors.BadPath),
    ("bad_frame", errors.FrameError),
    ("bad_request", errors.ProtocolError),
    ("unknown_op", errors.UnknownOp),
    ("locked", errors.Locked),
    ("busy", errors.Busy),
    ("integrity", errors.IntegrityError),
    ("exists", errors.AlreadyExists),
    ("io_error", errors.StorageError),
    ("internal", errors.InternalError),
])
def test_check_reply_maps_codes_to_the_documented_classes(code: str, cls: type[FtError]) -> None:
    with pytest.raises(cls) as info:
        check_reply({"ok": False, "error": {"code": code, "message": "m"}})
    assert type(info.value) is cls


def test_unknown_code_becomes_a_plain_ft_error_keeping_the_code() -> None:
    with pytest.raises(FtError) as info:
        check_reply({"ok": False, "error": {"code": "quota_exceeded", "message": "too much"}})
    assert type(info.value) is FtError
    assert info.value.code == "quota_exceeded"
    assert info.value.message == "too much"
    assert FtError.code == "internal"  # the class attribute is untouched


def test_error_reply_and_check_reply_are_inverse() -> None:
    for cls in (errors.NotFound, errors.Locked, errors.BadPath, errors.NoSpace):
        with pytest.raises(cls, match="^it broke$"):
            check_reply(error_reply(cls("it broke")))


def test_error_reply_truncates_long_messages_so_they_stay_readable() -> None:
    reply = error_reply(errors.StorageError("x" * 5000))
    assert reply == {"ok": False, "error": {"code": "io_error", "message": "x" * MAX_TEXT}}
    with pytest.raises(errors.StorageError):
        check_reply(reply)


def test_check_reply_returns_success_replies_unchanged() -> None:
    reply = ok_reply(a=1)
    assert check_reply(reply) is reply


@pytest.mark.parametrize("obj", [
    {},
    {"ok": 1},
    {"ok": "true"},
    {"ok": None},
    {"ok": False},
    {"ok": False, "error": "not_found"},
    {"ok": False, "error": ["not_found", "m"]},
    {"ok": False, "error": {"message": "m"}},
    {"ok": False, "error": {"code": 404, "message": "m"}},
    {"ok": False, "error": {"code": "not_found"}},
    {"ok": False, "error": {"code": "not_found", "message": "m" * (MAX_TEXT + 1)}},
])
def test_malformed_replies_raise_protocol_error(obj: dict[str, Any]) -> None:
    with pytest.raises(ProtocolError) as info:
        check_reply(obj)
    assert type(info.value) is ProtocolError
