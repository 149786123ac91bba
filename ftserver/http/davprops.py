"""WebDAV's PROPFIND and PROPPATCH: the live properties of a file or folder, and the dead
ones clients set (kept by store/deadprops.py, in state_dir).

PROPFIND answers Depth 0 and 1 and refuses infinity (403, DAV:propfind-finite-depth).
Windows' ``Win32LastModifiedTime`` sets the file's mtime; other DAV: properties are
protected (403, the rest of the request 424, nothing changed).
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from common.protocol.replies import EntryInfo
from ftserver.http import davxml
from ftserver.http.dav import (
    DavError,
    DavRequest,
    entity_tag,
    read_xml,
    stat_or_top,
)
from ftserver.http.davxml import DAV, XML_TYPE, d, text_element
from ftserver.http.headers import content_type
from ftserver.http.ranges import http_date
from ftserver.http.target import url_path
from ftserver.store.base import Share
from ftserver.store.writelocks import WriteLock

# ---------------------------------------------------------------- PROPFIND

def serve_propfind(request: DavRequest, quota: Callable[[], tuple[int, int]]) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    ask = davxml.propfind_ask(read_xml(exchange, request.timeout))
    depth = (exchange.header("depth") or "infinity").strip().lower()
    if depth not in ("0", "1"):
        exchange.respond(403, [], davxml.error_body("propfind-finite-depth"), XML_TYPE)
        return
    entry = stat_or_top(storage, target.name)
    children = []
    if depth == "1" and entry.type == "dir":
        # A name XML cannot hold (U+FFFE...) would spoil the whole answer: left out.
        children = [child for child in storage.list_folder(target.name)
                    if davxml.xml_safe(child.name)]
    known = _Known.gather(storage, target.name, entry, children)
    root = davxml.multistatus()
    _describe(root, storage, target.name, entry, ask, quota, known)
    for child in children:
        name = f"{target.name}/{child.name}" if target.name else child.name
        _describe(root, storage, name, child, ask, quota, known)
    exchange.respond(207, [], davxml.serialise(root), XML_TYPE)

WIN32 = "urn:schemas-microsoft-com:"
WIN32_MTIME = f"{{{WIN32}}}Win32LastModifiedTime"
LIVE = tuple(d(name) for name in (
    "creationdate", "displayname", "getcontentlength", "getcontenttype", "getetag",
    "getlastmodified", "resourcetype", "supportedlock", "lockdiscovery",
    "quota-available-bytes", "quota-used-bytes"))



@dataclass(frozen=True)
class _Known:
    """What one PROPFIND looks up once for every entry it describes: their real paths,
    files' versions (one pass over the folder), dead properties and locks (a query
    each), so a folder of thousands costs a listing, not thousands of lookups."""

    paths: dict[str, str]
    versions: dict[str, str]
    dead: dict[str, dict[str, str]]
    locks: list[WriteLock]

    @classmethod
    def gather(cls, storage: Share, name: str, entry: EntryInfo,
               children: list[EntryInfo]) -> _Known:
        path = storage.lock_path(name)
        paths = {name: path}
        versions: dict[str, str] = {}
        if children:
            for child in children:
                paths[f"{name}/{child.name}" if name else child.name] = (
                    f"{path.rstrip('/')}/{child.name}")
            versions = {f"{name}/{base}" if name else base: version
                        for base, version in storage.file_versions(name).items()}
        elif entry.type == "file":
            etag = entity_tag(storage, name)
            if etag is not None:
                versions[name] = etag.strip('"')
        dead = storage.dead_props.of_many(list(paths.values()))
        locks = storage.write_locks.covering(path, beneath=bool(children))
        return cls(paths, versions, dead, locks)

    def etag(self, storage: Share, name: str) -> str | None:
        version = self.versions.get(name)
        if version is not None:
            return f'"{version}"'
        return entity_tag(storage, name)  # a link: its target's, as a download sends


def _describe(into: ET.Element, storage: Share, name: str, entry: EntryInfo,
              ask: davxml.PropfindAsk, quota: Callable[[], tuple[int, int]],
              known: _Known) -> None:
    href = url_path(name, folder=entry.type == "dir")
    dead = known.dead.get(known.paths[name], {})
    if ask.kind == "propname":
        names = [*LIVE, *dead]
        davxml.add_response(into, href, [ET.Element(prop) for prop in names], {})
        return
    wanted = [*LIVE, *dead] if ask.kind == "allprop" else list(ask.names)
    found, missing = [], []
    for prop in wanted:
        if ask.kind == "allprop" and prop in (d("quota-available-bytes"), d("quota-used-bytes")):
            continue  # (asked for by name only, RFC 4331)
        element = _live(storage, name, entry, prop, quota, known)
        if element is None and prop in dead:
            element = davxml.from_text(dead[prop])  # (None, if it was kept unreadable)
        if element is None:
            missing.append(prop)
        else:
            found.append(element)
    davxml.add_response(into, href, found, {404: missing} if missing else {})


def _live(storage: Share, name: str, entry: EntryInfo, prop: str,
          quota: Callable[[], tuple[int, int]], known: _Known) -> ET.Element | None:
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
        etag = known.etag(storage, name)
        return None if etag is None else text_element(prop, etag)
    if prop == d("supportedlock"):
        return _supported_lock()
    if prop == d("lockdiscovery"):
        path = known.paths[name]
        return lock_discovery([lock for lock in known.locks if lock.covers(path)], name, path)
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


def _root_name(name: str, path: str, root: str) -> str:
    """The share name of the folder a lock was taken on, from ``name`` (whose real path
    is ``path``) and the lock's real root above it."""
    below = path.rstrip("/").count("/") - root.rstrip("/").count("/")
    parts = name.split("/") if name else []
    return "/".join(parts[:max(0, len(parts) - below)])


def lock_discovery(locks: list[WriteLock], name: str, path: str) -> ET.Element:
    element = ET.Element(d("lockdiscovery"))
    for lock in locks:
        active = ET.SubElement(element, d("activelock"))
        ET.SubElement(ET.SubElement(active, d("locktype")), d("write"))
        ET.SubElement(ET.SubElement(active, d("lockscope")),
                      d("exclusive" if lock.exclusive else "shared"))
        ET.SubElement(active, d("depth")).text = "infinity" if lock.infinite else "0"
        owner = davxml.from_text(lock.owner) if lock.owner else None
        if owner is not None:
            active.append(owner)
        left = max(0, int(lock.expires - time.time()))
        ET.SubElement(active, d("timeout")).text = f"Second-{left}"
        token = ET.SubElement(active, d("locktoken"))
        ET.SubElement(token, d("href")).text = lock.token
        root = ET.SubElement(active, d("lockroot"))
        ET.SubElement(root, d("href")).text = url_path(_root_name(name, path, lock.root))
    return element



# ---------------------------------------------------------------- PROPPATCH

def serve_proppatch(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    changes = davxml.proppatch_changes(read_xml(exchange, request.timeout))
    entry = stat_or_top(storage, target.name)
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
        try:
            storage.dead_props.change(path, sets, removes)
        except ValueError as exc:
            raise DavError(507, str(exc)) from None
        if mtime is not None and entry.type == "file":
            storage.set_mtime(target.name, mtime)
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
