"""WebDAV's XML, read safely and written by ElementTree: sans-IO.

Request bodies are parsed by defusedxml: a DTD (so billion laughs and external
entities) is refused outright, and a body over ``MAX_BODY`` is refused before it is
parsed. Answers are built as ElementTree elements and serialised by it, so every
name and value is escaped by the library, never by hand. Names of properties are in
Clark notation, ``{namespace}local`` (``local`` alone for the empty namespace).
"""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from common.protocol.errors import ProtocolError
from ftserver.http.statuses import REASONS

DAV = "DAV:"
MAX_BODY = 1 << 20
"""The largest XML body taken (PROPFIND, PROPPATCH, LOCK): a MiB."""
XML_TYPE = 'application/xml; charset="utf-8"'

ET.register_namespace("D", DAV)


def d(local: str) -> str:
    return f"{{{DAV}}}{local}"


class BadXml(ProtocolError):
    """A body that is not the XML WebDAV asks for."""

    http_status = 400


def parse(body: bytes) -> ET.Element | None:
    """The body's root element, None for an empty body."""
    if not body.strip():
        return None
    try:
        return fromstring(body, forbid_dtd=True, forbid_entities=True,
                          forbid_external=True)
    except DefusedXmlException:
        raise BadXml("the XML body holds a DTD or entities, which are not taken") from None
    except ET.ParseError as exc:
        raise BadXml(f"the XML body is not well-formed: {exc}") from None
    except (LookupError, ValueError) as exc:  # an unknown encoding declared, say
        raise BadXml(f"the XML body cannot be read: {exc}") from None


@dataclass(frozen=True)
class PropfindAsk:
    """What a PROPFIND asks for: every property, their names only, or these ones."""

    kind: str  # "allprop", "propname" or "prop"
    names: tuple[str, ...] = field(default=())


def propfind_ask(root: ET.Element | None) -> PropfindAsk:
    if root is None:
        return PropfindAsk("allprop")
    if root.tag != d("propfind"):
        raise BadXml("a PROPFIND body is a DAV:propfind element")
    for child in root:
        if child.tag == d("allprop"):
            return PropfindAsk("allprop")
        if child.tag == d("propname"):
            return PropfindAsk("propname")
        if child.tag == d("prop"):
            return PropfindAsk("prop", tuple(prop.tag for prop in child))
    raise BadXml("a DAV:propfind holds DAV:allprop, DAV:propname or DAV:prop")


@dataclass(frozen=True)
class PropChange:
    """One instruction of a PROPPATCH, in order: set ``name`` to ``value``, or remove it."""

    name: str
    value: ET.Element | None
    """The property element itself as sent (its children and text are the value)."""


def proppatch_changes(root: ET.Element | None) -> list[PropChange]:
    if root is None or root.tag != d("propertyupdate"):
        raise BadXml("a PROPPATCH body is a DAV:propertyupdate element")
    changes = []
    for instruction in root:
        if instruction.tag not in (d("set"), d("remove")):
            continue
        for holder in instruction:
            if holder.tag != d("prop"):
                continue
            for prop in holder:
                changes.append(PropChange(prop.tag, prop if instruction.tag == d("set")
                                          else None))
    if not changes:
        raise BadXml("the DAV:propertyupdate changes no property")
    return changes


@dataclass(frozen=True)
class LockAsk:
    exclusive: bool
    owner: str
    """The DAV:owner element as sent, serialised ("" if none)."""


def lock_ask(root: ET.Element | None) -> LockAsk | None:
    """A new lock's request, None for a refresh (an empty body)."""
    if root is None:
        return None
    if root.tag != d("lockinfo"):
        raise BadXml("a LOCK body is a DAV:lockinfo element")
    scope = root.find(d("lockscope"))
    kind = root.find(d("locktype"))
    if scope is None or kind is None or kind.find(d("write")) is None:
        raise BadXml("a DAV:lockinfo names a lockscope and the write locktype")
    if scope.find(d("exclusive")) is not None:
        exclusive = True
    elif scope.find(d("shared")) is not None:
        exclusive = False
    else:
        raise BadXml("the lockscope is DAV:exclusive or DAV:shared")
    owner = root.find(d("owner"))
    return LockAsk(exclusive, "" if owner is None else to_text(owner))


def to_text(element: ET.Element) -> str:
    """The element alone, its children and text, never the text after it (its tail)."""
    alone = copy.copy(element)
    alone.tail = None
    return ET.tostring(alone, encoding="unicode")


def from_text(text: str) -> ET.Element | None:
    """An element ``to_text`` wrote (kept in state_dir); None if it cannot be read."""
    try:
        return ET.fromstring(text)
    except ET.ParseError:
        return None


_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> bool:
    """Whether ``text`` can stand in XML 1.0 at all (U+FFFE, U+FFFF cannot, for one)."""
    return _NOT_XML.search(text) is None


def multistatus() -> ET.Element:
    return ET.Element(d("multistatus"))


def add_response(into: ET.Element, href: str, found: list[ET.Element],
                 others: dict[int, list[str]]) -> None:
    """One DAV:response: the properties found (200), and names by other status."""
    response = ET.SubElement(into, d("response"))
    ET.SubElement(response, d("href")).text = href
    if found or not others:
        _propstat(response, 200, found)
    for status, names in sorted(others.items()):
        _propstat(response, status, [ET.Element(name) for name in names])


def _propstat(response: ET.Element, status: int, props: list[ET.Element]) -> None:
    propstat = ET.SubElement(response, d("propstat"))
    holder = ET.SubElement(propstat, d("prop"))
    holder.extend(props)
    ET.SubElement(propstat, d("status")).text = status_line(status)


def status_line(status: int) -> str:
    return f"HTTP/1.1 {status} {REASONS.get(status, '')}".rstrip()


def serialise(root: ET.Element) -> bytes:
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def text_element(name: str, text: str) -> ET.Element:
    element = ET.Element(name)
    element.text = text
    return element


def error_body(condition: str) -> bytes:
    """A DAV:error body naming one precondition (RFC 4918, section 16)."""
    root = ET.Element(d("error"))
    ET.SubElement(root, d(condition))
    return serialise(root)
