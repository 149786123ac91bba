"""Field readers for dict headers: exact types, bounds and the name rules, or ProtocolError.

Every message in requests.py and replies.py reads its fields through these, so a
field is checked the same way wherever it appears (``true`` is not an integer).
"""

from __future__ import annotations

import math
import re
from typing import Any

from common.protocol.errors import ProtocolError
from common.protocol.names import split_path

SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")  # \Z, not $: "$" also matches before a final "\n"
MAX_FILE_SIZE = 2**53 - 1
"""Largest size or offset; also the largest integer a JSON reader in any language keeps exactly."""
MAX_TEXT = 1024
MAX_MTIME = 2.0**40
ENTRY_TYPES = ("file", "dir")


def read_field(obj: dict[str, Any], key: str, required: bool = True) -> Any:
    if key not in obj:
        if required:
            raise ProtocolError(f"field {key!r} is missing")
        return None
    return obj[key]


def read_int(obj: dict[str, Any], key: str, *, low: int = 0, high: int = MAX_FILE_SIZE) -> int:
    value = read_field(obj, key)
    if type(value) is not int:
        raise ProtocolError(f"field {key!r} must be an integer")
    if not low <= value <= high:
        raise ProtocolError(f"field {key!r} must be between {low} and {high}")
    return value


def read_bool(obj: dict[str, Any], key: str) -> bool:
    value = read_field(obj, key)
    if type(value) is not bool:
        raise ProtocolError(f"field {key!r} must be true or false")
    return value


def read_flag(obj: dict[str, Any], key: str) -> bool:
    """An optional boolean field: absent means false."""
    return False if key not in obj else read_bool(obj, key)


def read_mtime(obj: dict[str, Any], key: str = "mtime") -> float:
    value = read_field(obj, key)
    # isfinite() only for floats: it overflows on a huge JSON integer such as 10**400.
    if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)):
        raise ProtocolError(f"field {key!r} must be a number of seconds")
    if not -MAX_MTIME <= value <= MAX_MTIME:
        raise ProtocolError(f"field {key!r} is out of range")
    return float(value)


def mtime_ns(seconds: float) -> int:
    """An mtime as the protocol carries it (float seconds) in whole nanoseconds, nearest.

    A float holds an mtime of today to about 0.24 microseconds, so two mtimes that
    differ by less than MTIME_TOLERANCE are the same on the wire.
    """
    whole = math.floor(seconds)
    return int(whole) * 1_000_000_000 + round((seconds - whole) * 1e9)


MTIME_TOLERANCE = 1e-6
"""Seconds: mtimes closer than this count as equal (float seconds on the wire)."""


def read_text(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = read_field(obj, key, required)
    if value is None and not required:
        return None
    if type(value) is not str:
        raise ProtocolError(f"field {key!r} must be a string")
    if len(value) > MAX_TEXT:
        raise ProtocolError(f"field {key!r} is longer than {MAX_TEXT} characters")
    return value


def read_sha256(obj: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = read_field(obj, key, required)
    if value is None and not required:
        return None
    if type(value) is not str or not SHA256_HEX.match(value):
        raise ProtocolError(f"field {key!r} must be 64 lowercase hex digits")
    return value


def read_path(obj: dict[str, Any], key: str = "path", *, allow_root: bool = False) -> str:
    value = read_field(obj, key)
    if type(value) is not str:
        raise ProtocolError(f"field {key!r} must be a string")
    split_path(value, allow_root=allow_root)
    return value


def without_none(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not None}
