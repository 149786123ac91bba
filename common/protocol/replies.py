"""Replies, server to client: ok or an error object, and the validated reply of each request.

The client checks every reply it reads as strictly as the server checks requests:
it trusts a server's names and numbers no more than the server trusts a client's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.protocol.errors import FtError, ProtocolError, error_from_wire
from common.protocol.fields import (
    ENTRY_TYPES,
    MAX_TEXT,
    read_bool,
    read_field,
    read_int,
    read_mtime,
    read_path,
    read_sha256,
    read_text,
    without_none,
)
from common.protocol.names import check_component


def ok_reply(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error_reply(error: FtError) -> dict[str, Any]:
    return {"ok": False, "error": {"code": error.code, "message": error.message[:MAX_TEXT]}}


def carried_error(obj: dict[str, Any]) -> FtError | None:
    """The FtError a well-formed error reply carries, or None for a success reply.

    Raises ProtocolError for a frame that is neither (no boolean ``ok``, or an error
    reply without a proper error object): then the peer, not the request, is at fault.
    """
    ok = obj.get("ok")
    if ok is True:
        return None
    if ok is not False:
        raise ProtocolError("reply has no boolean 'ok' field")
    error = obj.get("error")
    if not isinstance(error, dict):
        raise ProtocolError("error reply has no 'error' object")
    code = read_text(error, "code") or "internal"
    message = read_text(error, "message") or "unknown error"
    return error_from_wire(code, message)


def check_reply(obj: dict[str, Any]) -> dict[str, Any]:
    """Return ``obj`` if it is a success reply; raise the matching FtError if it is an error."""
    error = carried_error(obj)
    if error is not None:
        raise error
    return obj


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
        return without_none(
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
        raw = read_field(obj, "entries")
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
        return cls(EntryInfo.from_dict(read_field(obj, "entry")))

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
        return ok_reply(**without_none({"offset": self.offset,
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
        return ok_reply(**without_none({"size": self.size, "mtime": self.mtime,
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
        return without_none({"path": self.path, "type": self.type, "size": self.size,
                              "mtime": self.mtime, "sha256": self.sha256})


@dataclass(frozen=True)
class WalkReply:
    """One batch of a subtree listing, parents before children; ``done`` marks the last."""

    entries: tuple[WalkEntry, ...]
    done: bool

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> WalkReply:
        check_reply(obj)
        raw = read_field(obj, "entries")
        if not isinstance(raw, list):
            raise ProtocolError("field 'entries' must be a list")
        return cls(tuple(WalkEntry.from_dict(item) for item in raw), read_bool(obj, "done"))

    def to_dict(self) -> dict[str, Any]:
        return ok_reply(entries=[entry.to_dict() for entry in self.entries], done=self.done)
