"""SHA-256 helpers shared by both sides: digests of whole files and of prefixes.

A prefix digest answers "do we hold the same first N bytes?" when resuming. The
helpers return the live hash object, so the caller can keep feeding it the rest
of the file and never read the prefix twice.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

HASH_CHUNK = 1024 * 1024
SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")  # \Z, not $: "$" also matches before a final "\n"


def hash_prefix(stream: BinaryIO, length: int) -> hashlib._Hash:
    """Hash the first ``length`` bytes of ``stream`` (read from its current position).

    Raises EOFError if the stream ends early.
    """
    hasher = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK)
    view = memoryview(buffer)
    remaining = length
    while remaining:
        got = stream.readinto(view[: min(remaining, HASH_CHUNK)])
        if not got:
            raise EOFError(f"stream ended {remaining} bytes before the prefix did")
        hasher.update(view[:got])
        remaining -= got
    return hasher


def sha256_of_path(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
