"""Validated protocol messages: frozen dataclasses built from, and turned into, dict headers.

Every field is checked with exact types (``true`` is not an integer), bounds and
the path rules; anything else raises ProtocolError (or BadPath) naming the field.
Requests flow client to server, replies server to client; each side validates
what it receives, so the client trusts a server's names no more than the
server trusts a client's.

See docs/protocol.md for the conversation these messages make up.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from common.io.hashing import SHA256_HEX
from common.protocol.errors import FtError, ProtocolError, UnknownOp, error_from_wire
from common.protocol.frames import (
    HEADER,
    MAX_FRAME,
    decode_json_object,
    encode_frame,
    encode_json_string,
)
from common.protocol.names import check_component, split_path

PROTOCOL_VERSION = 1
MAX_FILE_SIZE = 2**53 - 1
"""Largest size or offset; also the largest integer a JSON reader in any language keeps exactly."""
MAX_TEXT = 1024
MAX_MTIME = 2.0**40
ENTRY_TYPES = ("file", "dir")


# ---------------------------------------------------------------- field readers


def _field(obj: dict[str, Any], key: str, required: bool = True) -> Any:
    if key not in obj:
        if required:
            raise ProtocolError(f"field {key!r} is missing")
        return None
    return obj[key]


def read_int(obj: dict[str, Any], key: str, *, low: int = 0, high: int = MAX_FILE_SIZE) -> int:
    value = _field(obj, key)
    if type(value) is not int:
        raise ProtocolError(f"field {key!r} must be an integer")
    if not low <= value <= high:
        raise ProtocolError(f"field {key!r} must be between {low} and {high}")
    return value


def read_bool(obj: dict[str, Any], key: str) -> bool:
    value = _field(obj, key)
    if type(value) is not bool:
        raise ProtocolError(f"field {key!r} must be true or false")
    return value


def read_flag(obj: dict[str, Any], key: str) -> bool:
    """An optional boolean field: absent means false."""
    return False if key not in obj else read_bool(obj, key)


def read_mtime(obj: dict[str, Any], key: str = "mtime") -> float:
    value = _field(obj, key)
    # isfinite() only for floats: it overflows on a huge JSON integer such as 10**400.
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        raise ProtocolError(f"field {key!r} must be a number of seconds")
    if not -MAX_MTIME <= value <= MAX_MTIME:
        raise ProtocolError(f"field {key!r} is out of range")
    return float(value)


def mtime_ns(seconds: float) -> int:
    """An mtime as the protocol carries it (float seconds) in whole nanoseconds, nearest.

    A float holds an mtime of today to about 0.24 microseconds, so two mtimes that
    differ by less than MTIME_TOLERANCE are the same on the wire.
    """
    whole = math.floor(seconds)
    return int(whole) * 1_000_000_000 + round((seconds - whole) * 1e9)


MTIME_TOLERANCE = 1e-6
"""Seconds: mtimes closer than this count as equal (float seconds on the wire)."""


def read_text(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = _field(obj, key, required)
    if value is None and not required:
        return None
    if type(value) is not str:
        raise ProtocolError(f"field {key!r} must be a string")
    if len(value) > MAX_TEXT:
        raise ProtocolError(f"field {key!r} is longer than {MAX_TEXT} characters")
    return value


def read_sha256(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = _field(obj, key, required)
    if value is None and not required:
        return None
    if type(value) is not str or not SHA256_HEX.match(value):
        raise ProtocolError(f"field {key!r} must be 64 lowercase hex digits")
    return value


def read_path(obj: dict[str, Any], key: str = "path", *, allow_root: bool = False) -> str:
    value = _field(obj, key)
    if type(value) is not str:
        raise ProtocolError(f"field {key!r} must be a string")
    split_path(value, allow_root=allow_root)
    return value


def _without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}


# ---------------------------------------------------------------- requests


@dataclass(frozen=True)
class Hello:
    """First frame of every connection."""

    OP: ClassVar[str] = "hello"
    version: int
    agent: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Hello:
        return cls(read_int(obj, "version", high=1 << 16), read_text(obj, "agent") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "version": self.version, "agent": self.agent}


@dataclass(frozen=True)
class ListDir:
    OP: ClassVar[str] = "list"
    path: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ListDir:
        return cls(read_path(obj, allow_root=True))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "path": self.path}


@dataclass(frozen=True)
class Stat:
    """``digest``: compute a file's SHA-256 if the server does not know it yet."""

    OP: ClassVar[str] = "stat"
    path: str
    digest: bool = False

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Stat:
        return cls(read_path(obj), read_flag(obj, "digest"))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "path": self.path, **({"digest": True} if self.digest else {})}


@dataclass(frozen=True)
class PutRequest:
    """Announce an upload. ``sha256`` is optional: the sender may not know it yet.

    ``stream``: a new file, no resume; ``size`` raw bytes and a PutEnd follow at
    once and the only reply is the final one (pipelining, see ftserver/ops/streamput.py).
    """

    OP: ClassVar[str] = "put"
    path: str
    size: int
    mtime: float
    sha256: str | None = None
    stream: bool = False

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PutRequest:
        return cls(
            read_path(obj),
            read_int(obj, "size"),
            read_mtime(obj),
            read_sha256(obj, "sha256", required=False),
            read_flag(obj, "stream"),
        )

    def to_dict(self) -> dict[str, Any]:
        return _without_none(
            {"op": self.OP, "path": self.path, "size": self.size, "mtime": self.mtime,
             "sha256": self.sha256, "stream": self.stream or None}
        )


@dataclass(frozen=True)
class PutData:
    """The sender's choice of offset; ``size - offset`` raw bytes follow this frame."""

    OP: ClassVar[str] = "put_data"
    offset: int

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PutData:
        return cls(read_int(obj, "offset"))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "offset": self.offset}


@dataclass(frozen=True)
class PutEnd:
    """Closing header after the raw bytes of an upload: the SHA-256 of the whole file."""

    OP: ClassVar[str] = "put_end"
    sha256: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PutEnd:
        return cls(read_sha256(obj, "sha256") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "sha256": self.sha256}


@dataclass(frozen=True)
class GetRequest:
    """Ask for a file; ``offset`` bytes are already held, with ``prefix_sha256`` their digest."""

    OP: ClassVar[str] = "get"
    path: str
    offset: int = 0
    prefix_sha256: str | None = None

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> GetRequest:
        request = cls(
            read_path(obj),
            read_int(obj, "offset"),
            read_sha256(obj, "prefix_sha256", required=False),
        )
        if request.offset and request.prefix_sha256 is None:
            raise ProtocolError("field 'prefix_sha256' is required when 'offset' is not 0")
        return request

    def to_dict(self) -> dict[str, Any]:
        return _without_none(
            {"op": self.OP, "path": self.path, "offset": self.offset,
             "prefix_sha256": self.prefix_sha256}
        )


@dataclass(frozen=True)
class AuthStart:
    """Begin a SCRAM-SHA-256 login: ``message`` is RFC 5802's client-first-message."""

    OP: ClassVar[str] = "auth"
    mechanism: str
    message: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> AuthStart:
        mechanism = read_text(obj, "mechanism") or ""
        if mechanism != "SCRAM-SHA-256":
            raise ProtocolError("field 'mechanism' must be 'SCRAM-SHA-256'")
        return cls(mechanism, read_text(obj, "message") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "mechanism": self.mechanism, "message": self.message}


@dataclass(frozen=True)
class AuthFinal:
    """Finish a login: ``message`` is the client-final-message, with the proof."""

    OP: ClassVar[str] = "auth_final"
    message: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> AuthFinal:
        return cls(read_text(obj, "message") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "message": self.message}



@dataclass(frozen=True)
class MakeDir:
    """Create a folder; ``parents`` also creates missing parents and accepts an existing one."""

    OP: ClassVar[str] = "mkdir"
    path: str
    parents: bool = False

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> MakeDir:
        return cls(read_path(obj), read_flag(obj, "parents"))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "path": self.path, "parents": self.parents}


@dataclass(frozen=True)
class Move:
    """Rename ``src`` to ``dst``; an existing ``dst`` is refused, never overwritten."""

    OP: ClassVar[str] = "move"
    src: str
    dst: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Move:
        return cls(read_path(obj, "src"), read_path(obj, "dst"))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "src": self.src, "dst": self.dst}


@dataclass(frozen=True)
class Remove:
    """Delete a file or an empty folder; ``recursive`` also deletes a folder's contents."""

    OP: ClassVar[str] = "remove"
    path: str
    recursive: bool = False

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Remove:
        return cls(read_path(obj), read_flag(obj, "recursive"))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "path": self.path, "recursive": self.recursive}


@dataclass(frozen=True)
class Walk:
    """List a folder's whole subtree (for ``get -r``), answered by WalkReply batches."""

    OP: ClassVar[str] = "walk"
    path: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Walk:
        return cls(read_path(obj, allow_root=True))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "path": self.path}


@dataclass(frozen=True)
class SetMtime:
    """Set the mtime of an existing file or folder (not the root); a symlink's own, never
    its target's."""

    OP: ClassVar[str] = "set_mtime"
    path: str
    mtime: float

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> SetMtime:
        return cls(read_path(obj), read_mtime(obj))

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.OP, "path": self.path, "mtime": self.mtime}


Request = (Hello | ListDir | Stat | PutRequest | PutData | PutEnd | GetRequest | AuthStart
           | AuthFinal | MakeDir | Move | Remove | Walk | SetMtime)
_REQUESTS: dict[str, Any] = {
    cls.OP: cls for cls in (Hello, ListDir, Stat, PutRequest, PutData, PutEnd, GetRequest,
                            AuthStart, AuthFinal, MakeDir, Move, Remove, Walk, SetMtime)
}

# Operations that change the share. Access control refuses them to read-only users;
# every new operation that creates, changes or removes anything must be listed here.
WRITE_OPS: frozenset[str] = frozenset({PutRequest.OP, MakeDir.OP, Move.OP, Remove.OP,
                                       SetMtime.OP})


def parse_request(obj: dict[str, Any]) -> Request:
    """Turn a decoded dict header into a validated request; raise ProtocolError if invalid."""
    op = obj.get("op")
    if type(op) is not str:
        raise ProtocolError("field 'op' must be a string")
    cls = _REQUESTS.get(op)
    if cls is None:
        raise UnknownOp(f"unknown operation {op[:40]!r}")
    return cls.from_dict(obj)


_STREAMED_PUT = re.compile(
    rb'\{"op":"put","path":"([^"\\\x00-\x1f]*)","size":(0|[1-9][0-9]*),'
    rb'"mtime":(-?(?:0|[1-9][0-9]*))((?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?),"stream":true\}\Z')
"""The exact form encode_frame gives a streamed PutRequest without a sha256 (as the
reference client sends each small file): a path with no escape in it, JSON numbers."""


def encode_streamed_put(path: str, size: int, mtime: float, max_frame: int = MAX_FRAME) -> bytes:
    """``encode_frame(PutRequest(path, size, mtime, stream=True).to_dict(), max_frame)``:
    the same bytes (the form ``_STREAMED_PUT`` reads), made without a dict or the
    encoder's walk over it; a client that pipelines small files sends one per file."""
    if type(size) is not int or type(mtime) is not float or not math.isfinite(mtime):
        return encode_frame(PutRequest(path, size, mtime, stream=True).to_dict(), max_frame)
    body = (f'{{"op":"put","path":{encode_json_string(path)},"size":{size},'
            f'"mtime":{float.__repr__(mtime)},"stream":true}}').encode()
    if len(body) > max_frame:
        raise ValueError(f"frame of {len(body)} bytes exceeds the {max_frame}-byte cap")
    return HEADER.pack(len(body)) + body


def decode_request(payload: bytes) -> dict[str, Any]:
    """``decode_json_object(payload)`` for a request: the same dict, or the same
    FrameError. A streamed put in the exact form of ``_STREAMED_PUT`` is read with
    one match instead of the JSON scanner (a small file costs the server one each);
    any other body, or one whose path is not UTF-8 or whose mtime is out of range,
    goes the whole way."""
    match = _STREAMED_PUT.match(payload)
    if match is not None:
        path, size, whole, fraction = match.groups()
        try:
            mtime: float = float(whole + fraction) if fraction else int(whole)
            if math.isfinite(mtime):
                return {"op": "put", "path": path.decode("utf-8"), "size": int(size),
                        "mtime": mtime, "stream": True}
        except (UnicodeDecodeError, ValueError, OverflowError):
            pass  # an int mtime too big for a float, say: the JSON decoder's answer stands
    return decode_json_object(payload)


_PUT_DONE = re.compile(rb'\{"ok":true,"size":(0|[1-9][0-9]{0,15}),"sha256":"([0-9a-f]{64})"\}\Z')
"""The exact form encode_frame gives a PutDone reply (sizes up to 16 digits)."""


def encode_put_done(done: PutDone) -> bytes:
    """``encode_frame(done.to_dict())``: the same bytes (the form ``_PUT_DONE`` reads),
    made without a dict; a server answers one per small file."""
    if type(done.size) is not int or not SHA256_HEX.match(done.sha256):
        return encode_frame(done.to_dict())
    body = b'{"ok":true,"size":%d,"sha256":"%s"}' % (done.size, done.sha256.encode("ascii"))
    return HEADER.pack(len(body)) + body


def decode_reply(payload: bytes) -> dict[str, Any]:
    """``decode_json_object(payload)`` for a reply: the same dict, or the same FrameError.
    A PutDone in the exact form of ``_PUT_DONE`` is read with one match (a pipelined
    small file costs the client one each); any other body goes the whole way."""
    match = _PUT_DONE.match(payload)
    if match is not None:
        return {"ok": True, "size": int(match[1]), "sha256": match[2].decode("ascii")}
    return decode_json_object(payload)


_PUT_END_HEAD = b'{"op":"put_end","sha256":"'
_PUT_END_TAIL = b'"}'
_PUT_END_SIZE = len(_PUT_END_HEAD) + 64 + len(_PUT_END_TAIL)


def encode_put_end(sha256: str) -> bytes:
    """``encode_frame(PutEnd(sha256).to_dict())``: the same bytes (the form parse_put_end
    takes apart), made without a dict; a pipelining client sends one per file."""
    if type(sha256) is not str or not SHA256_HEX.match(sha256):
        return encode_frame(PutEnd(sha256).to_dict())
    body = _PUT_END_HEAD + sha256.encode("ascii") + _PUT_END_TAIL
    return HEADER.pack(len(body)) + body


def parse_put_end(payload: bytes) -> Request:
    """``parse_request(decode_json_object(payload))`` for the frame expected after a
    streamed put's bytes. The exact bytes that encode_frame makes of a PutEnd, whose
    digest is 64 lowercase hex digits, are taken apart at once (they can decode to
    nothing else); any other body goes the whole way, with the same answers."""
    if (len(payload) == _PUT_END_SIZE and payload.startswith(_PUT_END_HEAD)
            and payload.endswith(_PUT_END_TAIL)):
        digest = payload[len(_PUT_END_HEAD):-len(_PUT_END_TAIL)].decode("ascii", "replace")
        if SHA256_HEX.match(digest):
            return PutEnd(digest)
    return parse_request(decode_json_object(payload))


# ---------------------------------------------------------------- replies


def ok_reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_reply(error: FtError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": error.code, "message": error.message[:MAX_TEXT]}}


def check_reply(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` if it is a success reply; raise the matching FtError if it is an error."""
    ok = obj.get("ok")
    if ok is True:
        return obj
    if ok is not False:
        raise ProtocolError("reply has no boolean 'ok' field")
    error = obj.get("error")
    if not isinstance(error, dict):
        raise ProtocolError("error reply has no 'error' object")
    code = read_text(error, "code") or "internal"
    message = read_text(error, "message") or "unknown error"
    raise error_from_wire(code, message)


@dataclass(frozen=True)
class HelloReply:
    version: int
    server: str
    name: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> HelloReply:
        check_reply(obj)
        return cls(
            read_int(obj, "version", high=1 << 16),
            read_text(obj, "server") or "",
            read_text(obj, "name") or "",
        )

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(version=self.version, server=self.server, name=self.name)


@dataclass(frozen=True)
class EntryInfo:
    """One file or folder as ``ls`` and ``stat`` report it. ``name`` is a single component."""

    name: str
    type: str
    size: int
    mtime: float
    sha256: str | None = None

    @classmethod
    def from_dict(cls, obj: Any) -> EntryInfo:
        if not isinstance(obj, dict):
            raise ProtocolError("an entry must be an object")
        name = read_text(obj, "name") or ""
        check_component(name)
        kind = read_text(obj, "type")
        if kind not in ENTRY_TYPES:
            raise ProtocolError("field 'type' must be 'file' or 'dir'")
        return cls(
            name, kind, read_int(obj, "size"), read_mtime(obj),
            read_sha256(obj, "sha256", required=False),
        )

    def to_dict(self) -> dict[str, Any]:
        return _without_none(
            {"name": self.name, "type": self.type, "size": self.size, "mtime": self.mtime,
             "sha256": self.sha256}
        )


@dataclass(frozen=True)
class ListReply:
    """One batch of a listing; batches keep each frame under the cap. ``done`` marks the last."""

    entries: tuple[EntryInfo, ...]
    done: bool

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> ListReply:
        check_reply(obj)
        raw = _field(obj, "entries")
        if not isinstance(raw, list):
            raise ProtocolError("field 'entries' must be a list")
        return cls(tuple(EntryInfo.from_dict(item) for item in raw), read_bool(obj, "done"))

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(entries=[entry.to_dict() for entry in self.entries], done=self.done)


@dataclass(frozen=True)
class StatReply:
    entry: EntryInfo

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> StatReply:
        check_reply(obj)
        return cls(EntryInfo.from_dict(_field(obj, "entry")))

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(entry=self.entry.to_dict())


@dataclass(frozen=True)
class PutReady:
    """The server holds ``offset`` bytes of this upload; ``prefix_sha256`` is their digest."""

    offset: int
    prefix_sha256: str | None

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PutReady:
        check_reply(obj)
        ready = cls(read_int(obj, "offset"), read_sha256(obj, "prefix_sha256", required=False))
        if ready.offset and ready.prefix_sha256 is None:
            raise ProtocolError("field 'prefix_sha256' is required when 'offset' is not 0")
        return ready

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(**_without_none({"offset": self.offset,
                                         "prefix_sha256": self.prefix_sha256}))


@dataclass(frozen=True)
class PutDone:
    """The upload is verified, durable and published."""

    size: int
    sha256: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> PutDone:
        check_reply(obj)
        return cls(read_int(obj, "size"), read_sha256(obj, "sha256") or "")

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(size=self.size, sha256=self.sha256)


@dataclass(frozen=True)
class GetReady:
    """``size - offset`` raw bytes follow this reply, then a GetEnd."""

    size: int
    mtime: float
    offset: int
    sha256: str | None

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> GetReady:
        check_reply(obj)
        ready = cls(
            read_int(obj, "size"), read_mtime(obj), read_int(obj, "offset"),
            read_sha256(obj, "sha256", required=False),
        )
        if ready.offset > ready.size:
            raise ProtocolError("field 'offset' is beyond 'size'")
        return ready

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(**_without_none({"size": self.size, "mtime": self.mtime,
                                         "offset": self.offset, "sha256": self.sha256}))


@dataclass(frozen=True)
class GetEnd:
    """Closing header after a download's raw bytes: the SHA-256 of the whole file."""

    sha256: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> GetEnd:
        check_reply(obj)
        return cls(read_sha256(obj, "sha256") or "")

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(sha256=self.sha256)


@dataclass(frozen=True)
class AuthChallenge:
    """The server's SCRAM server-first-message (nonce, salt, iterations)."""

    message: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> AuthChallenge:
        check_reply(obj)
        return cls(read_text(obj, "message") or "")

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(message=self.message)


@dataclass(frozen=True)
class AuthDone:
    """Login accepted: the server-final-message (its proof) and the user's access level."""

    message: str
    access: str

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> AuthDone:
        check_reply(obj)
        access = read_text(obj, "access")
        if access not in ("ro", "rw"):
            raise ProtocolError("field 'access' must be 'ro' or 'rw'")
        return cls(read_text(obj, "message") or "", access)

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(message=self.message, access=self.access)


@dataclass(frozen=True)
class Done:
    """Plain success, for requests that return nothing else (mkdir, move, remove, set_mtime)."""

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> Done:
        check_reply(obj)
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return ok_reply()


@dataclass(frozen=True)
class WalkEntry:
    """One file or folder of a subtree; ``path`` is relative to the folder walked."""

    path: str
    type: str
    size: int
    mtime: float
    sha256: str | None = None

    @classmethod
    def from_dict(cls, obj: Any) -> WalkEntry:
        if not isinstance(obj, dict):
            raise ProtocolError("an entry must be an object")
        path = read_path(obj, "path")
        kind = read_text(obj, "type")
        if kind not in ENTRY_TYPES:
            raise ProtocolError("field 'type' must be 'file' or 'dir'")
        return cls(path, kind, read_int(obj, "size"), read_mtime(obj),
                   read_sha256(obj, "sha256", required=False))

    def to_dict(self) -> dict[str, Any]:
        return _without_none({"path": self.path, "type": self.type, "size": self.size,
                              "mtime": self.mtime, "sha256": self.sha256})


@dataclass(frozen=True)
class WalkReply:
    """One batch of a subtree listing, parents before children; ``done`` marks the last."""

    entries: tuple[WalkEntry, ...]
    done: bool

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> WalkReply:
        check_reply(obj)
        raw = _field(obj, "entries")
        if not isinstance(raw, list):
            raise ProtocolError("field 'entries' must be a list")
        return cls(tuple(WalkEntry.from_dict(item) for item in raw), read_bool(obj, "done"))

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(entries=[entry.to_dict() for entry in self.entries], done=self.done)
