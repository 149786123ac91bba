"""The one error tree of ft, and its mapping to and from stable wire codes.

The server raises these and turns them into error replies; the client turns error
replies back into the same classes. Messages are human sentences meant for users:
they never hold tracebacks or absolute server paths.
"""

from __future__ import annotations


class FtError(Exception):
    """Base of every error ft reports on purpose."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProtocolError(FtError):
    """The peer sent something that is not valid ft protocol (bad frame or field)."""

    code = "bad_request"


class FrameError(ProtocolError):
    """A frame could not be decoded: bad length, not UTF-8 JSON, or not an object."""

    code = "bad_frame"


class UnknownOp(ProtocolError):
    code = "unknown_op"


class BadPath(ProtocolError):
    """A name breaks the path rules (``..``, absolute, control characters, ...)."""

    code = "bad_path"


class NotFound(FtError):
    code = "not_found"


class IsADirectory(FtError):
    code = "is_a_directory"


class NotADirectory(FtError):
    code = "not_a_directory"


class AlreadyExists(FtError):
    code = "exists"


class NotEmpty(FtError):
    """A folder still holds entries (remove it recursively instead)."""

    code = "not_empty"


class Locked(FtError):
    """Another transfer holds the name right now."""

    code = "locked"


class Busy(FtError):
    """The server is at its connection limit; retry shortly."""

    code = "busy"


class PermissionDenied(FtError):
    code = "permission"


class IntegrityError(FtError):
    """The SHA-256 of the received bytes differs from the one announced."""

    code = "integrity"


class SourceChanged(FtError):
    """The file being sent changed while it was being sent."""

    code = "changed"


class NoSpace(FtError):
    code = "no_space"


class StorageError(FtError):
    """An I/O error on the server's storage."""

    code = "io_error"


class Timeout(FtError):
    code = "timeout"


class InternalError(FtError):
    code = "internal"


class AuthFailed(FtError):
    """Login failed: unknown user or wrong password (the server never says which)."""

    code = "auth_failed"


class Untrusted(FtError):
    """The server's TLS certificate is not the pinned one, or none is pinned (client only)."""

    code = "untrusted"


class ConnectionLost(FtError):
    """The connection dropped or could not be made (client side only, never on the wire)."""

    code = "connection"


class OutcomeUnknown(ConnectionLost):
    """The connection dropped after a request that must not run twice (move, remove) was
    sent, before its answer came: it may or may not have been done, so it is not retried
    (client side only, never on the wire)."""


class CannotConnect(ConnectionLost):
    """No connection could be made: refused, no route, no such host. Retrying cannot fix
    that unless the server is restarting after cutting a transfer of ours, so it is
    retried only then (client side only, never on the wire)."""


class WrongProtocol(ConnectionLost):
    """The other side does not speak what we asked for (TLS to a plaintext server): a
    setting to change, never retried (client side only, never on the wire)."""


class StreamCut(ConnectionLost):
    """A download into a stream (standard output, a pipe, a device) was cut after some of
    it was written: those bytes cannot be taken back, so it is neither resumed nor
    retried (client side only, never on the wire)."""


_BY_CODE: dict[str, type[FtError]] = {
    cls.code: cls
    for cls in (
        ProtocolError,
        FrameError,
        UnknownOp,
        BadPath,
        NotFound,
        IsADirectory,
        NotADirectory,
        AlreadyExists,
        NotEmpty,
        Locked,
        Busy,
        PermissionDenied,
        IntegrityError,
        SourceChanged,
        NoSpace,
        StorageError,
        Timeout,
        InternalError,
        AuthFailed,
    )
}

WIRE_CODES: frozenset[str] = frozenset(_BY_CODE)

CLOSING_CODES: frozenset[str] = frozenset({FrameError.code, Timeout.code, Busy.code})
"""Codes of the error replies after which the server closes the connection (a frame it
could not decode, a deadline passed, busy: at its limits or shutting down). After any
other error reply the connection stays usable for the next request (docs/protocol.md)."""


def error_from_wire(code: str, message: str) -> FtError:
    """Build the exception for an error reply; unknown codes become a plain FtError."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = FtError(message)
        err.code = code
        return err
    return cls(message)
