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
    root = davxml.multistatus()
    _describe(root, storage, target.name, entry, ask, quota)
    if depth == "1" and entry.type == "dir":
        for child in storage.list_folder(target.name):
            name = f"{target.name}/{child.name}" if target.name else child.name
            _describe(root, storage, name, child, ask, quota)
    exchange.respond(207, [], davxml.serialise(root), XML_TYPE)



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

WIN32 = "urn:schemas-microsoft-com:"
WIN32_MTIME = f"{{{WIN32}}}Win32LastModifiedTime"
LIVE = tuple(d(name) for name in (
    "creationdate", "displayname", "getcontentlength", "getcontenttype", "getetag",
    "getlastmodified", "resourcetype", "supportedlock", "lockdiscovery",
    "quota-available-bytes", "quota-used-bytes"))


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
