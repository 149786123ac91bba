"""An HTTP request target turned into a share name, and a share name into a URL path.

Sans-IO. The path is percent-decoded exactly once, one segment at a time, and each
decoded segment must be a name ft's own rules allow (common/protocol/names.py): no
``..`` or ``.`` in any encoding, no encoded slash or backslash, no NUL or control
character, no reserved ``.ft-`` name. A segment that would decode a second time
into one of those (``%252e%252e``) is refused too: some proxy or client in the path
may decode twice, and the share must mean the same thing to all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, unquote_to_bytes

from common.protocol.errors import BadPath
from common.protocol.names import check_component

_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
ASSETS = ".ft-assets"
"""The page's own stylesheet and script live under /.ft-assets/, a name no share has."""
UPLOADS = ".ft-tus"
"""A tus upload in progress is /.ft-tus/TOKEN (tus.py), another name no share has."""


@dataclass(frozen=True)
class Target:
    """What one request asks for."""

    name: str
    """The share name, "" for the top folder."""
    folder: bool
    """The path ended with "/" (a folder's page), or named the top."""
    query: dict[str, str]
    """The first value of each query parameter (``format``, ``sort``, ``order``)."""
    asset: str | None = None
    """The page's own file asked for under /.ft-assets/, if that is what it is."""
    upload: str | None = None
    """The token of the tus upload asked for under /.ft-tus/, if that is what it is."""


def parse_target(raw: bytes) -> Target:
    """The request target of an origin-form request line (``/docs/a%20b.pdf?x=1``)."""
    if not raw.startswith(b"/"):
        raise BadPath("the request target must be a path starting with '/'")
    path, _, query_text = raw.partition(b"?")
    if b"#" in path or _PERCENT.search(path):
        raise BadPath("the path holds a stray '%' or '#'")
    try:
        query_str = query_text.decode("ascii")
    except UnicodeDecodeError:
        raise BadPath("the query must be ASCII (percent-encoded)") from None
    query = {key: values[0] for key, values in parse_qs(query_str).items()}
    segments = path[1:].split(b"/")
    folder = segments[-1] == b""
    if folder:
        segments = segments[:-1]
    if len(segments) == 2 and segments[0] == ASSETS.encode() and not folder:
        return Target("", False, query, asset=_decode(segments[1]))
    if len(segments) == 2 and segments[0] == UPLOADS.encode() and not folder:
        return Target("", False, query, upload=_decode(segments[1]))
    names = [_decode(segment) for segment in segments]
    for name in names:
        check_component(name)
        _refuse_second_decoding(name)
    return Target("/".join(names), folder or not names, query)


def _decode(segment: bytes) -> str:
    if segment == b"":
        raise BadPath("the path holds an empty segment ('//')")
    try:
        return unquote_to_bytes(segment).decode("utf-8")
    except UnicodeDecodeError:
        raise BadPath("the path is not UTF-8 once percent-decoded") from None


def _refuse_second_decoding(name: str) -> None:
    if "%" not in name:
        return
    try:
        again = unquote_to_bytes(name.encode("utf-8")).decode("utf-8")
    except UnicodeDecodeError:
        return  # decodes to no text: it cannot name anything else
    if again != name:
        try:
            check_component(again)
        except BadPath:
            raise BadPath(f"{name!r} would name {again!r} if decoded again") from None


def url_path(name: str, folder: bool = False) -> str:
    """The URL path of a share name (percent-encoded, "/"-separated)."""
    encoded = "/".join(quote(part, safe="") for part in name.split("/")) if name else ""
    if folder:
        return f"/{encoded}/" if encoded else "/"
    return f"/{encoded}"
