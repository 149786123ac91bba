"""SHA-256 helpers shared by both sides: digests of whole files and of prefixes.

A prefix digest answers "do we hold the same first N bytes?" when resuming. The
helpers return the live hash object, so the caller can keep feeding it the rest
of the file and never read the prefix twice.
"""

from __future__ import annotations

import hashlib
import re
from typing import BinaryIO

from common.errors import SourceChanged

HASH_CHUNK = 1024 * 1024
HASH_RATE_FLOOR = 20_000_000
"""Bytes per second that hashing a file is assumed to reach at worst (a slow disk).

Whoever waits while the other side hashes N held bytes (to compare a resume
prefix) or makes N bytes durable allows N / HASH_RATE_FLOOR seconds on top of
its usual timeout, so resuming a huge file does not time out."""
SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")  # \Z, not $: "$" also matches before a final "\n"


def hash_prefix(stream: BinaryIO, length: int) -> hashlib._Hash:
    """Hash the first ``length`` bytes of ``stream`` (read from its current position).

    Raises SourceChanged if the stream ends early (the file shrank meanwhile).
    """
    hasher = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK)
    view = memoryview(buffer)
    remaining = length
    while remaining:
        got = stream.readinto(view[: min(remaining, HASH_CHUNK)])
        if not got:
            raise SourceChanged(f"the file ended {remaining} bytes short of the {length} "
                                "expected; it changed meanwhile")
        hasher.update(view[:got])
        remaining -= got
    return hasher


def sha256_of_path(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
