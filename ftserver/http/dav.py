"""WebDAV class 1 and 2 (RFC 4918) on the share's HTTP: the methods a file manager mounts with.

PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK and UNLOCK, beside GET, HEAD, PUT and
DELETE that the HTTP front end already serves. This file holds what they share: the
request, its XML body, its If header and Destination; davprops.py serves PROPFIND
and PROPPATCH, davnames.py MKCOL, DELETE, COPY and MOVE, davlock.py LOCK and UNLOCK.
Each is a thin adapter: names are turned into files by the share (store/names.py
through the storage seam), a COPY of a file is the one download into the one upload
(ops/copyfile.py), MOVE, MKCOL and DELETE are the store's own operations, and locks
are the store's write locks (store/writelocks.py), which every writer honours, ft's
protocol included.

Choices: PROPFIND with ``Depth: infinity`` is refused with 403 and
DAV:propfind-finite-depth (RFC 4918 allows it; a walk of the whole share per
request is a cheap way to load a server). Dead properties are kept in state_dir
(store/deadprops.py). ``Win32LastModifiedTime`` set by Windows sets the file's
mtime. The names Finder and Explorer probe by the hundred (``._*``,
``.DS_Store``, ``desktop.ini``, ``Thumbs.db``) are answered 404 at once when
missing, from one stat, as every other missing name is.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.protocol.errors import (
    BadPath,
    FtError,
    ProtocolError,
)
from common.protocol.replies import EntryInfo
from ftserver.http import davxml
from ftserver.http.davif import holds, parse_if, submitted_tokens
from ftserver.http.davxml import MAX_BODY
from ftserver.http.exchange import HttpExchange
from ftserver.http.target import Target, parse_target
from ftserver.store.base import Share


class DavError(ProtocolError):
    """A WebDAV answer other than success, with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.http_status = status


class PreconditionFailed(DavError):
    def __init__(self, message: str) -> None:
        super().__init__(412, message)


@dataclass(frozen=True)
class DavRequest:
    """What every WebDAV method works with."""

    exchange: HttpExchange
    target: Target
    storage: Share
    """The grant's view of the share, holding the lock tokens the request submitted."""
    user: str
    timeout: float


def read_body(exchange: HttpExchange, timeout: float) -> bytes:
    """The request's body, at most a MiB (413 beyond, before more is read)."""
    if not exchange.has_body:
        return b""
    length = exchange.content_length
    if length is not None and length > MAX_BODY:
        raise DavError(413, f"an XML body of more than {MAX_BODY} bytes is not taken")
    body = bytearray()
    pieces = exchange.body_chunks(timeout) if length is None else _exact(exchange, length,
                                                                          timeout)
    for data in pieces:
        body += data
        if len(body) > MAX_BODY:
            exchange.close_after = True
            raise DavError(413, f"an XML body of more than {MAX_BODY} bytes is not taken")
    return bytes(body)


def read_xml(exchange: HttpExchange, timeout: float) -> ET.Element | None:
    """The request's XML body parsed (None if there is none)."""
    return davxml.parse(read_body(exchange, timeout))


def _exact(exchange: HttpExchange, length: int, timeout: float) -> list[bytes]:
    channel = exchange.body_channel()
    data = bytearray(length)
    channel.expect_raw(length)
    channel.recv_raw_exactly(memoryview(data), time.monotonic() + timeout)
    exchange.body_read(channel)
    return [bytes(data)]


def drain_body(exchange: HttpExchange, timeout: float) -> None:
    """Read and drop a body nobody needs (MKCOL's must be empty; 415 if it is not)."""
    if read_body(exchange, timeout):
        raise DavError(415, "MKCOL takes no body")


# ---------------------------------------------------------------- the If header

def with_submitted_tokens(exchange: HttpExchange, storage: Share, target: Target,
                          user: str) -> Share:
    """The share as this request may write to it: holding the lock tokens its If header
    submits, once that header is found to hold (412 if it does not). A token counts only
    for the user who took its lock."""
    header = exchange.header("if")
    if header is None:
        return storage
    lists = parse_if(header)

    def resource_name(resource: str | None) -> str | None:
        """The share name a list is about; None for a resource that is not ours."""
        if resource is None:
            return target.name
        try:
            return destination_target(resource, exchange).name
        except DavError:
            return None

    def token_fits(resource: str | None, token: str) -> bool:
        name = resource_name(resource)
        lock = storage.write_locks.get(token)
        return (name is not None and lock is not None and lock.user == user
                and lock.covers(storage.lock_path(name)))

    def etag_of(resource: str | None) -> str | None:
        name = resource_name(resource)
        return None if name is None else entity_tag(storage, name)

    if not holds(lists, token_fits, etag_of):
        raise PreconditionFailed("the If header's conditions do not hold")
    return storage.holding(submitted_tokens(lists), user)


def entity_tag(storage: Share, name: str) -> str | None:
    """A file's strong ETag, the one GET sends; None for a folder or nothing."""
    try:
        reader = storage.open_read(name)  # a folder, or nothing there: an FtError
    except FtError:
        return None
    try:
        return f'"{reader.version}"'
    finally:
        reader.close()


def destination_target(value: str, exchange: HttpExchange) -> Target:
    """The share name a Destination (or a tagged If resource) names: an http(s) URL of
    this very server (its port; any name the client calls it by), or a path. Another
    server (502), or a path outside the share or onto a reserved name (403), is
    refused. The header's bytes are percent-decoded once, as UTF-8, as a request's."""
    try:  # (h11 gives the header's bytes as Latin-1 text: one character a byte)
        parts = urlsplit(value)
        port = parts.port
        path = (parts.path or "/").encode("latin-1")
    except (ValueError, UnicodeEncodeError):
        raise DavError(400, "the destination is not a URL") from None
    if parts.scheme or parts.netloc:
        if parts.scheme not in ("http", "https"):
            raise DavError(502, "the destination is not on this server")
        ours = _port_of(exchange.header("host") or "", exchange)
        if (port or (443 if parts.scheme == "https" else 80)) != ours:
            raise DavError(502, "the destination is on another server")
    try:
        return parse_target(path)
    except BadPath as exc:
        raise DavError(403, f"the destination is refused: {exc.message}") from None


def _port_of(host: str, exchange: HttpExchange) -> int:
    """The port the client reached this server on, from its Host header."""
    try:
        port = urlsplit(f"//{host}").port
    except ValueError:
        port = None
    if port is not None:
        return port
    return exchange.sock.getsockname()[1]


def stat_or_top(storage: Share, name: str) -> EntryInfo:
    if not name:
        return EntryInfo("", "dir", 0, time.time())
    return storage.stat(name)


def exists(storage: Share, name: str) -> bool:
    try:
        storage.stat(name)
    except FtError:
        return False
    return True


def is_folder(storage: Share, name: str) -> bool:
    try:
        return storage.stat(name).type == "dir"
    except FtError:
        return False
