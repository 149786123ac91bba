"""Byte ranges and conditional requests (RFC 9110 sections 13 and 14), sans-IO.

``Range: bytes=a-b``, ``a-`` and ``-n`` are honoured when there is one range; a
list of ranges is answered whole (the RFC allows it), a range past the end is
unsatisfiable (416). ``If-Range`` keeps the range only if the file is still the
version it names, by strong ETag or by its exact Last-Modified date, so a resumed
download never splices two versions. ``If-None-Match`` and ``If-Modified-Since``
turn a GET of an unchanged file into 304.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime

_SINGLE = re.compile(r"^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$", re.IGNORECASE)
BEYOND_ANY_FILE = 1 << 63
"""What a position or count of more than 19 digits stands for: no file is that big."""


@dataclass(frozen=True)
class Span:
    """The bytes to send: ``start`` and ``length``, and whether it is a part (206)."""

    start: int
    length: int
    partial: bool


class Unsatisfiable(Exception):
    """The range lies past the file's end: 416."""


def http_date(seconds: float) -> str:
    from datetime import UTC, datetime
    return format_datetime(datetime.fromtimestamp(int(seconds), UTC), usegmt=True)


def parse_http_date(text: str | None) -> int | None:
    """Seconds since the epoch, or None if absent or not a date."""
    if not text:
        return None
    try:
        return int(parsedate_to_datetime(text).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def etag_matches(header: str, etag: str, weak: bool) -> bool:
    """Whether ``etag`` is in the If-None-Match / If-Match list ``header`` ("*" too)."""
    if header.strip() == "*":
        return True
    for candidate in header.split(","):
        candidate = candidate.strip()
        if weak and candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False


def not_modified(if_none_match: str | None, if_modified_since: str | None, etag: str,
                 mtime: float) -> bool:
    """Whether a GET or HEAD gets 304: If-None-Match first; If-Modified-Since only
    without it (RFC 9110 13.2.2)."""
    if if_none_match is not None:
        return etag_matches(if_none_match, etag, weak=True)
    since = parse_http_date(if_modified_since)
    return since is not None and int(mtime) <= since


def choose_span(range_header: str | None, if_range: str | None, size: int, etag: str,
                mtime: float) -> Span:
    """The bytes a GET sends. Raises Unsatisfiable for a single range past the end."""
    whole = Span(0, size, False)
    if range_header is None:
        return whole
    if if_range is not None and not _if_range_holds(if_range.strip(), etag, mtime):
        return whole
    match = _SINGLE.match(range_header)
    if match is None:
        return whole  # several ranges, or a unit we do not know: the whole file
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        return whole
    if first == "":
        suffix = _byte_number(last)
        if suffix == 0:
            raise Unsatisfiable
        start = max(0, size - suffix)
        return Span(start, size - start, True)
    start = _byte_number(first)
    end = size - 1 if last == "" else min(_byte_number(last), size - 1)
    if last != "" and _byte_number(last) < start:
        return whole  # not a valid range: ignored, as the RFC says
    if start >= size:
        raise Unsatisfiable
    return Span(start, end - start + 1, True)


def _byte_number(digits: str) -> int:
    """A range's position or count; never converted past 19 digits (Python refuses
    over 4300, and a head may carry 16 KiB of them)."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 19 else BEYOND_ANY_FILE


def _if_range_holds(value: str, etag: str, mtime: float) -> bool:
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # strong comparison: a weak tag never matches
    date = parse_http_date(value)
    return date is not None and date == int(mtime)
