"""Requests, client to server: frozen dataclasses built from, and turned into, dict headers.

Each is validated field by field (fields.py) when it is read; ``parse_request``
turns a decoded frame into the request its ``op`` names. See docs/protocol.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from common.protocol.errors import ProtocolError, UnknownOp
from common.protocol.fields import (
    read_flag,
    read_int,
    read_mtime,
    read_path,
    read_sha256,
    read_text,
    without_none,
)

PROTOCOL_VERSION = 1


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
        return without_none(
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
        return without_none(
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


class _RequestType(Protocol):
    """What parse_request needs of each request class: its op and its reader."""

    @property
    def OP(self) -> str: ...  # noqa: N802 - the class attribute it reads

    def from_dict(self, obj: dict[str, Any], /) -> Request: ...


_REQUEST_TYPES: tuple[_RequestType, ...] = (
    Hello, ListDir, Stat, PutRequest, PutData, PutEnd, GetRequest, AuthStart, AuthFinal,
    MakeDir, Move, Remove, Walk, SetMtime)
_REQUESTS: dict[str, _RequestType] = {cls.OP: cls for cls in _REQUEST_TYPES}


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
