"""The client's cache of local files' SHA-256 digests, so re-runs re-read nothing unchanged.

The same SQLite cache the server keeps (common/io/hashcache.py), stored in
``$XDG_CACHE_HOME/ftclient/hashes.sqlite3`` (default ``~/.cache``). A digest is
trusted only while the file keeps its size, mtime, ctime and inode. The cache is
an optimisation: if it cannot be opened, digests are simply computed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from common.io.hashing import content_stamp, sha256_of_path

if TYPE_CHECKING:
    from common.io.hashcache import HashCache

CACHE_FILE = "hashes.sqlite3"


def default_cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return os.path.join(base, "ftclient", CACHE_FILE)


def open_cache(path: str | None = None) -> HashCache | None:
    """The digest cache at ``path`` (default: the user's), or None if it cannot be used."""
    import sqlite3

    from common.io.hashcache import HashCache  # (sqlite3: only for a command that hashes)

    path = path or default_cache_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return HashCache(path)
    except (OSError, sqlite3.Error):
        return None


def local_digest(cache: HashCache | None, path: str, st: os.stat_result) -> str | None:
    """SHA-256 of a local file, from the cache when it still applies; None if it changed."""
    real = os.path.realpath(path)
    if cache is not None:
        cached = cache.get(real, st)
        if cached is not None:
            return cached
    try:
        digest = sha256_of_path(path)
        after = os.stat(path)
    except OSError:
        return None
    if content_stamp(after) != content_stamp(st):
        return None  # it changed while we read it: no digest describes it
    remember(cache, path, after, digest)
    return digest


def remember(cache: HashCache | None, path: str, st: os.stat_result, digest: str) -> None:
    """Record ``digest`` for ``path`` as it was when stat'ed as ``st``."""
    if cache is not None:
        cache.put(os.path.realpath(path), st, digest)


FileVersion = tuple[int, int, int, int]
"""A local file as it was when stat'ed: (device, inode, size, mtime_ns)."""
SentDigests = dict[FileVersion, str]
"""SHA-256 of local files, by the version of each that it describes."""


def file_version(st: os.stat_result) -> FileVersion:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def cached_digest(cache: HashCache, path: str) -> SentDigests:
    """``{version: sha256}`` for ``path`` if the cache still holds its digest (never
    computed here: a put must not read a big file twice), else {}."""
    try:
        st = os.stat(path)
    except OSError:
        return {}
    digest = cache.get(os.path.realpath(path), st)
    if digest is None:
        return {}
    return {file_version(st): digest}


def remember_sent(cache: HashCache, path: str, sent: SentDigests, sha256: str) -> None:
    """Record the digest a put confirmed, if the file is still the version that was sent."""
    try:
        st = os.stat(path)
    except OSError:
        return
    if sent.get(file_version(st)) == sha256:
        remember(cache, path, st, sha256)


@contextlib.contextmanager
def opened_cache() -> Iterator[HashCache | None]:
    """The user's digest cache (``open_cache``) for one command, closed after it."""
    cache = open_cache()
    try:
        yield cache
    finally:
        if cache is not None:
            cache.close()
