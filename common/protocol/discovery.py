"""The discovery datagrams: a query a client broadcasts and the announcement a server sends back.

Sans-IO like the frame codec: bytes in, validated values out, and back. Each
datagram is one UTF-8 JSON object. A query is padded to ``QUERY_SIZE`` bytes and a
reply must fit in the query it answers, so a forged query can never make a
server send more bytes than it received (no amplification). Anything malformed
raises ``DiscoveryError``; the responder drops such datagrams without a word.

Query, version 1::

    {"op": "ft-discover", "version": 1, "pad": "...."}     (QUERY_SIZE bytes in all)

Reply::

    {"op": "ft-server", "version": 1, "name": "Front office", "host": null,
     "port": 9021, "tls": false, "fingerprint": null}

``host`` is null when the server listens on every address: the client then uses
the address the reply came from. ``fingerprint`` is the SHA-256 of the server's
TLS certificate in hex, or null without TLS.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

DISCOVERY_VERSION = 1
DEFAULT_DISCOVERY_PORT = 9021
"""The UDP port servers answer on unless configured otherwise (the TCP port's number)."""
QUERY_OP = "ft-discover"
REPLY_OP = "ft-server"
QUERY_SIZE = 512
"""Bytes every query is padded to: a reply is never larger than this."""
MAX_DATAGRAM = 1024
"""Larger datagrams are not queries; they are dropped unread."""
MAX_NAME = 200
MAX_VERSION = 2**31
_FINGERPRINT = re.compile(r"[0-9A-Fa-f:]{16,128}")
_HOST = re.compile(r"[0-9A-Za-z.:%_-]{1,255}")


class DiscoveryError(ValueError):
    """A datagram that is not a valid query or reply."""


@dataclass(frozen=True)
class Announcement:
    """What a server says about itself in answer to a query."""

    name: str
    host: str | None
    port: int
    tls: bool
    fingerprint: str | None


def encode_query(version: int = DISCOVERY_VERSION) -> bytes:
    head = {"op": QUERY_OP, "version": version, "pad": ""}
    padding = QUERY_SIZE - len(json.dumps(head, separators=(",", ":")).encode())
    head["pad"] = "x" * padding
    return json.dumps(head, separators=(",", ":")).encode()


def parse_query(data: bytes) -> int:
    """Return the query's version; raise DiscoveryError for anything that is not a query.

    Queries shorter than ``QUERY_SIZE`` are refused, since the reply must fit in them.
    A version newer than ours is still answered: the reply says which version we speak.
    """
    if not QUERY_SIZE <= len(data) <= MAX_DATAGRAM:
        raise DiscoveryError(f"a query must be {QUERY_SIZE} to {MAX_DATAGRAM} bytes, "
                             f"got {len(data)}")
    obj = _decode(data)
    if obj.get("op") != QUERY_OP:
        raise DiscoveryError("not a discovery query")
    version = obj.get("version")
    if type(version) is not int or not 1 <= version <= MAX_VERSION:
        raise DiscoveryError("bad query version")
    return version


def encode_reply(announcement: Announcement, limit: int) -> bytes:
    """The reply, at most ``limit`` bytes: a long name is shortened to fit."""
    name = announcement.name[:MAX_NAME]
    while True:
        data = json.dumps({
            "op": REPLY_OP, "version": DISCOVERY_VERSION, "name": name,
            "host": announcement.host, "port": announcement.port, "tls": announcement.tls,
            "fingerprint": announcement.fingerprint,
        }, separators=(",", ":"), ensure_ascii=False).encode()
        if len(data) <= limit:
            return data
        if not name:
            raise DiscoveryError("the reply does not fit in the query")
        name = name[: max(0, len(name) - (len(data) - limit) - 1)]


def parse_reply(data: bytes) -> Announcement:
    """Validate a reply with exact types and bounds; raise DiscoveryError otherwise."""
    if len(data) > MAX_DATAGRAM:
        raise DiscoveryError("reply too large")
    obj = _decode(data)
    if obj.get("op") != REPLY_OP:
        raise DiscoveryError("not a discovery reply")
    version, name, host = obj.get("version"), obj.get("name"), obj.get("host")
    port, tls, fingerprint = obj.get("port"), obj.get("tls"), obj.get("fingerprint")
    if type(version) is not int or version < 1:
        raise DiscoveryError("bad reply version")
    if type(name) is not str or len(name) > MAX_NAME:
        raise DiscoveryError("bad server name")
    if host is not None and (type(host) is not str or not _HOST.fullmatch(host)):
        raise DiscoveryError("bad host")
    if type(port) is not int or not 1 <= port <= 65535:
        raise DiscoveryError("bad port")
    if type(tls) is not bool:
        raise DiscoveryError("bad tls flag")
    if fingerprint is not None and (type(fingerprint) is not str
                                    or not _FINGERPRINT.fullmatch(fingerprint)):
        raise DiscoveryError("bad fingerprint")
    return Announcement(name, host, port, tls, fingerprint)


def _decode(data: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise DiscoveryError("not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise DiscoveryError("not a JSON object")
    return obj
