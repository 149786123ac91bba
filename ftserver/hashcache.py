"""Persistent cache of file SHA-256 digests, keyed by real path and checked by size, mtime, inode.

It lets a ``get`` of a big file start streaming without reading it first, and
lets ``ls`` show digests it already knows. It lives in ``state_dir`` as SQLite,
which already handles several processes writing at once. The cache is an
optimisation only: any database trouble is logged and treated as a miss.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading

log = logging.getLogger("ftserver.hashcache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""


class HashCache:
    """One SQLite connection per process, shared by its session threads under a lock.

    (A connection per thread would leak: a dead thread's connection is only closed
    whenever the garbage collector gets to it.)
    """

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db_path, timeout=10.0, isolation_level=None,
                                     check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def get(self, real_path: str, st: os.stat_result) -> str | None:
        """The cached digest if the file still has the size, mtime and inode it had."""
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT size, mtime_ns, inode, sha256 FROM digests WHERE path = ?",
                    (real_path,),
                ).fetchone()
        except sqlite3.Error as exc:
            log.warning("hash cache read failed: %s", exc)
            return None
        if row is None:
            return None
        size, mtime_ns, inode, digest = row
        if (size, mtime_ns, inode) != (st.st_size, st.st_mtime_ns, st.st_ino):
            return None
        return str(digest)

    def put(self, real_path: str, st: os.stat_result, digest: str) -> None:
        try:
            with self._lock:
                self._conn.execute(
                    "INSERT OR REPLACE INTO digests (path, size, mtime_ns, inode, sha256) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (real_path, st.st_size, st.st_mtime_ns, st.st_ino, digest),
                )
        except sqlite3.Error as exc:
            log.warning("hash cache write failed: %s", exc)
