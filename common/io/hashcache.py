"""Persistent cache of file SHA-256 digests, keyed by real path, checked by size and times.

Both sides use it. On the server it lets a ``get`` of a big file start streaming
without reading it first, and lets ``ls`` show digests it already knows; it lives
in ``state_dir``. On the client (``$XDG_CACHE_HOME/ftclient``) it lets a re-run
of a tree transfer skip unchanged files without re-reading them. It is SQLite,
which already handles several processes writing at once. The cache is an
optimisation only: any database trouble is logged and treated as a miss.

The ctime is part of the check because size and mtime can be kept by a writer
(``cp -p`` over a file, ``rsync --inplace -t``, ``touch -r``) while ctime cannot
be set by anyone: every write or utime moves it.

Times are stored as decimal text, not as SQLite integers: an mtime after
2262-04-11 or before 1677-09-21 in nanoseconds does not fit 64 bits, and such
dates are legal on the wire and on ext4 and tmpfs. (``digests_v2`` stored
integers; its rows are read once into ``digests_v3`` and the old table dropped.)
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence

from common.io.hashing import content_stamp

log = logging.getLogger("ft.hashcache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS digests_v3 (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns TEXT NOT NULL,
    ctime_ns TEXT NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""
_UPGRADE = """
INSERT OR IGNORE INTO digests_v3 (path, size, mtime_ns, ctime_ns, inode, sha256)
SELECT path, size, CAST(mtime_ns AS TEXT), CAST(ctime_ns AS TEXT), inode, sha256
FROM digests_v2
"""


class HashCache:
    """One SQLite connection per process, shared by its session threads under a lock.

    (A connection per thread would leak: a dead thread's connection is only closed
    whenever the garbage collector gets to it.)
    """

    def __init__(self, db_path: str) -> None:
        self.db_path = db_path
        self._lock = threading.Lock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            # Only a cache: set a damaged one aside and start afresh.
            log.warning("hash cache %s is unusable (%s); starting a new one", db_path, exc)
            os.replace(db_path, db_path + ".broken")
            self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=10.0, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            _upgrade(conn)
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def prune(self) -> int:
        """Forget digests of files that no longer exist; return how many went."""
        try:
            with self._lock:
                paths = [row[0] for row in self._conn.execute("SELECT path FROM digests_v3")]
            gone = [(path,) for path in paths if not os.path.lexists(path)]
            with self._lock:
                self._conn.executemany("DELETE FROM digests_v3 WHERE path = ?", gone)
        except sqlite3.Error as exc:
            log.warning("hash cache pruning failed: %s", exc)
            return 0
        return len(gone)

    def get(self, real_path: str, st: os.stat_result) -> str | None:
        """The cached digest if the file still has the size, mtime and inode it had."""
        try:
            with self._lock:
                row = self._conn.execute(
                    "SELECT size, mtime_ns, ctime_ns, inode, sha256 FROM digests_v3 WHERE path = ?",
                    (real_path,),
                ).fetchone()
        except sqlite3.Error as exc:
            log.warning("hash cache read failed: %s", exc)
            return None
        if row is None:
            return None
        if (row[0], row[1], row[2], row[3]) != _identity(st):
            return None
        return str(row[4])

    def forget(self, real_path: str) -> None:
        """Drop the digest filed under ``real_path``, if any."""
        try:
            with self._lock:
                self._conn.execute("DELETE FROM digests_v3 WHERE path = ?", (real_path,))
        except sqlite3.Error as exc:
            log.warning("hash cache delete failed: %s", exc)

    def put(self, real_path: str, st: os.stat_result, digest: str) -> None:
        self.put_many([(real_path, st, digest)])

    def put_many(self, rows: Sequence[tuple[str, os.stat_result, str]]) -> None:
        """Store several digests in one transaction (one commit, not one per file).

        Each row carries the stat it was computed for, so a row written after its
        file was replaced again can never match that file: it is a miss, never stale.
        """
        if not rows:
            return
        values = [(path, *_identity(st), digest) for path, st, digest in rows]
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                self._conn.executemany(
                    "INSERT OR REPLACE INTO digests_v3 "
                    "(path, size, mtime_ns, ctime_ns, inode, sha256) VALUES (?, ?, ?, ?, ?, ?)",
                    values,
                )
                self._conn.execute("COMMIT")
            except (sqlite3.Error, OverflowError, ValueError) as exc:
                log.warning("hash cache write failed: %s", exc)
                with contextlib.suppress(sqlite3.Error):
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")


def _identity(st: os.stat_result) -> tuple[int, str, str, int]:
    """What must be unchanged for a cached digest to still describe the file, as stored."""
    size, mtime_ns, ctime_ns = content_stamp(st)
    return (size, str(mtime_ns), str(ctime_ns), st.st_ino)


def _upgrade(conn: sqlite3.Connection) -> None:
    """Carry a ``digests_v2`` table's rows into ``digests_v3``, once, and drop it.

    Checked inside a write transaction, so two processes opening the cache at once
    do not both upgrade it."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        old = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'digests_v2'")
        if old.fetchone() is not None:
            conn.execute(_UPGRADE)
            conn.execute("DROP TABLE digests_v2")
        conn.execute("COMMIT")
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        raise
