"""SHA-256 helpers shared by both sides: digests of whole files and of prefixes.

A prefix digest answers "do we hold the same first N bytes?" when resuming. The
helpers return the live hash object, so the caller can keep feeding it the rest
of the file and never read the prefix twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from common.protocol.errors import ConnectionLost, SourceChanged

HASH_CHUNK = 1024 * 1024
HASH_RATE_FLOOR = 20_000_000
"""Bytes per second that hashing a file is assumed to reach at worst (a slow disk).

Whoever waits while the other side hashes N held bytes (to compare a resume
prefix) or makes N bytes durable allows N / HASH_RATE_FLOOR seconds on top of
its usual timeout, so resuming a huge file does not time out."""


GIVEN_UP_EVERY = 32 * HASH_CHUNK
"""Bytes hashed between two asks of ``given_up`` (a tenth of a second or so)."""


def hash_prefix(fd: int, length: int,
                given_up: Callable[[], bool] | None = None) -> hashlib._Hash:
    """Hash the first ``length`` bytes of the open file ``fd`` (by pread: its offset stays).

    Raises SourceChanged if the file ends early (it shrank meanwhile). With
    ``given_up``, asks it every GIVEN_UP_EVERY bytes and raises ConnectionLost once it
    says yes (the one who asked hung up): no one waits for the rest.
    """
    hasher = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK)
    view = memoryview(buffer)
    position = 0
    while position < length:
        got = os.preadv(fd, [view[: min(length - position, HASH_CHUNK)]], position)
        if not got:
            raise SourceChanged(f"the file ended {length - position} bytes short of the "
                                f"{length} expected; it changed meanwhile")
        hasher.update(view[:got])
        position += got
        if (given_up is not None and position % GIVEN_UP_EVERY < got
                and position < length and given_up()):
            raise ConnectionLost("the other side hung up; hashing stopped")
    return hasher


def content_stamp(st: os.stat_result) -> tuple[int, int, int]:
    """What changes whenever a file's content may have: size, mtime and ctime.

    ctime matters because ``cp -p``, ``rsync --inplace -t`` or ``touch -r`` can keep
    size and mtime while rewriting the bytes; nobody can set ctime back.
    """
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def unchanged_while_open(before: os.stat_result, now: os.stat_result) -> bool:
    """True if a file held open kept its content from ``before`` to ``now`` (two fstats).

    Like comparing content stamps, except that a ctime moved by a change in the
    link count is allowed: renaming another file over this one (as publishing
    does) or deleting it updates its ctime but leaves the open file's bytes alone.
    """
    if (before.st_size, before.st_mtime_ns) != (now.st_size, now.st_mtime_ns):
        return False
    return before.st_ctime_ns == now.st_ctime_ns or before.st_nlink != now.st_nlink


def sha256_of_path(path: str) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()
