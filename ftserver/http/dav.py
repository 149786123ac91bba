"""WebDAV class 1 and 2 (RFC 4918) on the share's HTTP: the methods a file manager mounts with.

PROPFIND, PROPPATCH, MKCOL, COPY, MOVE, LOCK and UNLOCK, beside GET, HEAD, PUT and
DELETE that the HTTP front end already serves. Each is a thin adapter: names are
turned into files by the share (store/names.py through the storage seam), a COPY
of a file is the one download into the one upload (ops/copyfile.py), MOVE, MKCOL
and DELETE are the store's own operations, and locks are the store's write locks
(store/writelocks.py), which every writer honours, ft's protocol included.

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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from common.protocol.errors import (
    AlreadyExists,
    BadPath,
    FtError,
    Locked,
    NotFound,
    ProtocolError,
)
from common.protocol.replies import EntryInfo
from ftserver.http import davxml
from ftserver.http.davif import BadIf, bare_token, holds, parse_if, submitted_tokens
from ftserver.http.davxml import DAV, MAX_BODY, XML_TYPE, d, text_element
from ftserver.http.exchange import HttpExchange
from ftserver.http.headers import content_type
from ftserver.http.ranges import http_date
from ftserver.http.target import Target, parse_target, url_path
from ftserver.ops.copyfile import copy_file
from ftserver.store.base import Share
from ftserver.store.writelocks import DEFAULT_TIMEOUT, MAX_TIMEOUT, WriteLock

WIN32 = "urn:schemas-microsoft-com:"
WIN32_MTIME = f"{{{WIN32}}}Win32LastModifiedTime"
LIVE = tuple(d(name) for name in (
    "creationdate", "displayname", "getcontentlength", "getcontenttype", "getetag",
    "getlastmodified", "resourcetype", "supportedlock", "lockdiscovery",
    "quota-available-bytes", "quota-used-bytes"))
MAX_COPY_ENTRIES = 100_000
"""The most names one COPY of a folder makes (a bigger tree is refused, 507)."""


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

def with_submitted_tokens(exchange: HttpExchange, storage: Share, target: Target) -> Share:
    """The share as this request may write to it: holding the lock tokens its If header
    submits, once that header is found to hold (412 if it does not)."""
    header = exchange.header("if")
    if header is None:
        return storage
    lists = parse_if(header)

    def resource_name(resource: str | None) -> str:
        if resource is None:
            return target.name
        return destination_target(resource, exchange).name

    def token_fits(resource: str | None, token: str) -> bool:
        lock = storage.write_locks.get(token)
        return lock is not None and lock.covers(storage.lock_path(resource_name(resource)))

    def etag_of(resource: str | None) -> str | None:
        return entity_tag(storage, resource_name(resource))

    if not holds(lists, token_fits, etag_of):
        raise PreconditionFailed("the If header's conditions do not hold")
    return storage.holding(submitted_tokens(lists))


def entity_tag(storage: Share, name: str) -> str | None:
    """A file's strong ETag, the one GET sends; None for a folder or nothing."""
    try:
        entry = storage.stat(name) if name else None
        if entry is None or entry.type != "file":
            return None
        reader = storage.open_read(name)
    except FtError:
        return None
    try:
        return f'"{reader.version}"'
    finally:
        reader.close()


def destination_target(value: str, exchange: HttpExchange) -> Target:
    """The share name a Destination (or a tagged If resource) names: an absolute URL of
    this very server, or a path. Another host, or a path outside the share, is refused."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        host = exchange.header("host") or ""
        if parts.netloc.lower() != host.lower():
            raise DavError(502, "the destination is on another server")
    path = parts.path or "/"
    try:
        return parse_target(path.encode("utf-8", "surrogateescape"))
    except BadPath as exc:
        raise DavError(403, f"the destination is refused: {exc.message}") from None


# ---------------------------------------------------------------- PROPFIND

def serve_propfind(request: DavRequest, quota: Callable[[], tuple[int, int]]) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    ask = davxml.propfind_ask(read_xml(exchange, request.timeout))
    depth = (exchange.header("depth") or "infinity").strip().lower()
    if depth not in ("0", "1"):
        exchange.respond(403, [], davxml.error_body("propfind-finite-depth"), XML_TYPE)
        return
    entry = _stat(storage, target.name)
    root = davxml.multistatus()
    _describe(root, storage, target.name, entry, ask, quota)
    if depth == "1" and entry.type == "dir":
        for child in storage.list_folder(target.name):
            name = f"{target.name}/{child.name}" if target.name else child.name
            _describe(root, storage, name, child, ask, quota)
    exchange.respond(207, [], davxml.serialise(root), XML_TYPE)


def _stat(storage: Share, name: str) -> EntryInfo:
    if not name:
        return EntryInfo("", "dir", 0, time.time())
    return storage.stat(name)


def _describe(into: ET.Element, storage: Share, name: str, entry: EntryInfo,
              ask: davxml.PropfindAsk, quota: Callable[[], tuple[int, int]]) -> None:
    href = url_path(name, folder=entry.type == "dir")
    dead = storage.dead_props.of(storage.lock_path(name))
    if ask.kind == "propname":
        names = [*LIVE, *dead]
        davxml.add_response(into, href, [ET.Element(prop) for prop in names], {})
        return
    wanted = [*LIVE, *dead] if ask.kind == "allprop" else list(ask.names)
    found, missing = [], []
    for prop in wanted:
        if ask.kind == "allprop" and prop in (d("quota-available-bytes"), d("quota-used-bytes")):
            continue  # (asked for by name only, RFC 4331)
        element = _live(storage, name, entry, prop, quota)
        if element is None and prop in dead:
            element = davxml.from_text(dead[prop])
        if element is None:
            missing.append(prop)
        else:
            found.append(element)
    davxml.add_response(into, href, found, {404: missing} if missing else {})


def _live(storage: Share, name: str, entry: EntryInfo, prop: str,
          quota: Callable[[], tuple[int, int]]) -> ET.Element | None:
    is_file = entry.type == "file"
    if prop == d("resourcetype"):
        element = ET.Element(prop)
        if not is_file:
            ET.SubElement(element, d("collection"))
        return element
    if prop == d("displayname"):
        return text_element(prop, entry.name)
    if prop == d("creationdate"):
        stamp = datetime.fromtimestamp(entry.mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return text_element(prop, stamp)
    if prop == d("getlastmodified"):
        return text_element(prop, http_date(entry.mtime))
    if prop == d("getcontentlength") and is_file:
        return text_element(prop, str(entry.size))
    if prop == d("getcontenttype") and is_file:
        return text_element(prop, content_type(entry.name))
    if prop == d("getetag") and is_file:
        etag = entity_tag(storage, name)
        return None if etag is None else text_element(prop, etag)
    if prop == d("supportedlock"):
        return _supported_lock()
    if prop == d("lockdiscovery"):
        return lock_discovery(storage.write_locks.on(storage.lock_path(name)), name)
    if prop in (d("quota-available-bytes"), d("quota-used-bytes")) and not is_file:
        available, used = quota()
        return text_element(prop, str(available if prop == d("quota-available-bytes")
                                      else used))
    return None


def _supported_lock() -> ET.Element:
    element = ET.Element(d("supportedlock"))
    for scope in ("exclusive", "shared"):
        entry = ET.SubElement(element, d("lockentry"))
        ET.SubElement(ET.SubElement(entry, d("lockscope")), d(scope))
        ET.SubElement(ET.SubElement(entry, d("locktype")), d("write"))
    return element


def lock_discovery(locks: list[WriteLock], name: str) -> ET.Element:
    element = ET.Element(d("lockdiscovery"))
    for lock in locks:
        active = ET.SubElement(element, d("activelock"))
        ET.SubElement(ET.SubElement(active, d("locktype")), d("write"))
        ET.SubElement(ET.SubElement(active, d("lockscope")),
                      d("exclusive" if lock.exclusive else "shared"))
        ET.SubElement(active, d("depth")).text = "infinity" if lock.infinite else "0"
        if lock.owner:
            active.append(davxml.from_text(lock.owner))
        left = max(0, int(lock.expires - time.time()))
        ET.SubElement(active, d("timeout")).text = f"Second-{left}"
        token = ET.SubElement(active, d("locktoken"))
        ET.SubElement(token, d("href")).text = lock.token
        root = ET.SubElement(active, d("lockroot"))
        ET.SubElement(root, d("href")).text = url_path(name)
    return element


# ---------------------------------------------------------------- PROPPATCH

def serve_proppatch(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    changes = davxml.proppatch_changes(read_xml(exchange, request.timeout))
    entry = _stat(storage, target.name)
    path = storage.lock_path(target.name)
    storage.check_unlocked(path, target.name)
    refused = {change.name for change in changes
               if change.name in LIVE or (change.name.startswith(f"{{{DAV}}}")
                                          and change.value is not None)}
    statuses: dict[int, list[str]] = {}
    if refused:
        statuses[403] = sorted(refused)
        statuses[424] = sorted({change.name for change in changes} - refused)
    else:
        sets: dict[str, str] = {}
        removes: list[str] = []
        mtime: float | None = None
        for change in changes:
            if change.value is None:
                sets.pop(change.name, None)
                removes.append(change.name)
                continue
            value = davxml.to_text(change.value)
            if len(value) > 64 * 1024:
                raise DavError(413, "a property's value may hold at most 64 KiB")
            sets[change.name] = value
            if change.name == WIN32_MTIME and change.value.text:
                mtime = _windows_time(change.value.text)
        if mtime is not None and entry.type == "file":
            storage.set_mtime(target.name, mtime)
        try:
            storage.dead_props.change(path, sets, removes)
        except ValueError as exc:
            raise DavError(507, str(exc)) from None
        statuses[200] = [change.name for change in changes]
    root = davxml.multistatus()
    href = url_path(target.name, folder=entry.type == "dir")
    davxml.add_response(root, href, [ET.Element(name) for name in statuses.pop(200, [])],
                        statuses)
    exchange.respond(207, [], davxml.serialise(root), XML_TYPE)


def _windows_time(text: str) -> float | None:
    try:
        return parsedate_to_datetime(text.strip()).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


# ---------------------------------------------------------------- MKCOL

def serve_mkcol(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    drain_body(exchange, request.timeout)
    if not target.name:
        raise DavError(405, "the top folder exists")
    try:
        storage.make_dir(target.name, parents=False)
    except AlreadyExists:
        raise DavError(405, f"{target.name!r} already exists") from None
    except NotFound as exc:
        raise DavError(409, exc.message) from None
    exchange.respond(201, [])


# ---------------------------------------------------------------- DELETE

def serve_delete(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    if not target.name:
        raise DavError(403, "the top folder cannot be removed")
    storage.remove(target.name, recursive=True)
    exchange.respond(204, [])


# ---------------------------------------------------------------- COPY and MOVE

def serve_copy_or_move(request: DavRequest, move: bool) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    value = exchange.header("destination")
    if not value:
        raise DavError(400, f"{exchange.method} needs a Destination header")
    destination = destination_target(value, exchange).name
    if not target.name or not destination:
        raise DavError(403, "the top folder is neither copied nor moved, nor replaced")
    if destination == target.name:
        raise DavError(403, "the source and the destination are the same")
    if destination.startswith(target.name + "/"):
        raise DavError(409 if move else 403, "a folder cannot go into itself")
    overwrite = (exchange.header("overwrite") or "T").strip().upper() != "F"
    depth = (exchange.header("depth") or "infinity").strip().lower()
    source = storage.stat(target.name)
    existed = _exists(storage, destination)
    if existed and not overwrite:
        raise PreconditionFailed(f"{destination!r} exists and Overwrite is F")
    parent = destination.rpartition("/")[0]
    if parent and not _is_folder(storage, parent):
        raise DavError(409, f"the folder that would hold {destination!r} does not exist")
    if existed:
        storage.remove(destination, recursive=True)
    if move:
        storage.move(target.name, destination)
    elif source.type == "dir":
        _copy_tree(storage, target.name, destination, request.user,
                   shallow=depth == "0")
    else:
        copy_file(storage, target.name, destination, request.user)
        storage.dead_props.copied(storage.lock_path(target.name),
                                  storage.lock_path(destination))
    exchange.respond(204 if existed else 201, [])


def _copy_tree(storage: Share, source: str, destination: str, owner: str,
               shallow: bool) -> None:
    made = 0
    pending = [(source, destination)]
    while pending:
        src, dst = pending.pop()
        storage.make_dir(dst, parents=False)
        storage.dead_props.copied(storage.lock_path(src), storage.lock_path(dst))
        if shallow:
            return
        for child in storage.list_folder(src):
            made += 1
            if made > MAX_COPY_ENTRIES:
                raise DavError(507, f"a copy makes at most {MAX_COPY_ENTRIES} names")
            child_src, child_dst = f"{src}/{child.name}", f"{dst}/{child.name}"
            if child.type == "dir":
                pending.append((child_src, child_dst))
            else:
                copy_file(storage, child_src, child_dst, owner)
                storage.dead_props.copied(storage.lock_path(child_src),
                                          storage.lock_path(child_dst))


def _exists(storage: Share, name: str) -> bool:
    try:
        storage.stat(name)
    except FtError:
        return False
    return True


def _is_folder(storage: Share, name: str) -> bool:
    try:
        return storage.stat(name).type == "dir"
    except FtError:
        return False


# ---------------------------------------------------------------- LOCK and UNLOCK

def serve_lock(request: DavRequest, make_empty_file: Callable[[str], None]) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    ask = davxml.lock_ask(read_xml(exchange, request.timeout))
    timeout = _timeout(exchange.header("timeout"))
    path = storage.lock_path(target.name)
    if ask is None:  # a refresh: the If header names the lock
        tokens = storage.lock_tokens
        locks = [lock for token in tokens
                 if (lock := storage.write_locks.get(token)) is not None and lock.covers(path)]
        if not locks:
            raise PreconditionFailed("a LOCK without a body refreshes a lock named by the "
                                     "If header, and it names none on this resource")
        refreshed = [storage.write_locks.refresh(lock.token, timeout) for lock in locks]
        body = ET.Element(d("prop"))
        body.append(lock_discovery([lock for lock in refreshed if lock is not None],
                                   target.name))
        exchange.respond(200, [], davxml.serialise(body), XML_TYPE)
        return
    depth = (exchange.header("depth") or "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise DavError(400, "a LOCK's Depth is 0 or infinity")
    created = False
    if target.name and not _exists(storage, target.name):
        parent = target.name.rpartition("/")[0]
        if parent and not _is_folder(storage, parent):
            raise DavError(409, f"the folder that would hold {target.name!r} does not exist")
        make_empty_file(target.name)  # RFC 4918 7.3: a lock on an unmapped URL makes a file
        created = True
    try:
        lock = storage.write_locks.take(path, infinite=depth == "infinity",
                                        exclusive=ask.exclusive, owner=ask.owner,
                                        user=request.user, timeout=timeout)
    except Locked as exc:
        raise DavError(423, exc.message) from None
    body = ET.Element(d("prop"))
    body.append(lock_discovery([lock], target.name))
    exchange.respond(201 if created else 200, [("Lock-Token", f"<{lock.token}>")],
                     davxml.serialise(body), XML_TYPE)


def _timeout(header: str | None) -> int:
    """The first of the Timeout header's choices we can grant (RFC 4918 10.7)."""
    for choice in (header or "").split(","):
        choice = choice.strip()
        if choice.lower() == "infinite":
            return MAX_TIMEOUT
        if choice.lower().startswith("second-"):
            try:
                return max(1, min(int(choice[7:]), MAX_TIMEOUT))
            except ValueError:
                continue
    return DEFAULT_TIMEOUT


def serve_unlock(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    header = exchange.header("lock-token")
    if not header:
        raise DavError(400, "UNLOCK needs a Lock-Token header")
    token = bare_token(header)
    lock = storage.write_locks.get(token)
    if lock is None or not lock.covers(storage.lock_path(target.name)):
        exchange.respond(409, [], davxml.error_body("lock-token-matches-request-uri"),
                         XML_TYPE)
        return
    storage.write_locks.release(token)
    exchange.respond(204, [])


__all__ = ["BadIf", "DavError", "DavRequest", "PreconditionFailed", "serve_copy_or_move",
           "serve_delete", "serve_lock", "serve_mkcol", "serve_propfind", "serve_proppatch",
           "serve_unlock", "with_submitted_tokens"]
