"""The share's WebDAV state on disk: one SQLite file in state_dir, never in the share.

It holds the write locks (writelocks.py) and the dead properties clients set
(deadprops.py), so both hold across worker processes and restarts. Each process has
one connection, opened at its first use (and again after a fork), which its threads
take in turns; a share where no WebDAV client ever locked or set a property has no
such file, and asking it costs one stat.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
DB_NAME = "dav.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS locks (
    token TEXT PRIMARY KEY,
    root TEXT NOT NULL,
    infinite INTEGER NOT NULL,
    exclusive INTEGER NOT NULL,
    owner TEXT NOT NULL,
    user TEXT NOT NULL,
    timeout INTEGER NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS locks_root ON locks (root);
CREATE INDEX IF NOT EXISTS locks_expires ON locks (expires);
CREATE TABLE IF NOT EXISTS props (
    path TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (path, name)
);
"""


class DavDatabase:
    """The connection to ``state_dir/dav.sqlite3`` of one process."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, DB_NAME)
        self.guard = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0

    def conn(self) -> sqlite3.Connection:
        """The connection (three descriptors, with WAL); callers hold ``guard``."""
        if self._conn is None or self._pid != os.getpid():
            db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._conn, self._pid = db, os.getpid()
        return self._conn

    @property
    def never_used(self) -> bool:
        """No client ever locked or set a property here: the file does not even exist."""
        return self._conn is None and not os.path.exists(self.path)

    def close(self) -> None:
        with self.guard:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None


class UsesDavDatabase:
    """A table's keeper over the shared connection."""

    def __init__(self, database: DavDatabase) -> None:
        self.database = database

    def _db(self) -> sqlite3.Connection:
        return self.database.conn()

    @property
    def _never_used(self) -> bool:
        return self.database.never_used


def guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Run ``method`` holding the database's guard (one connection, threads in turn)."""

    @functools.wraps(method)
    def run(self: UsesDavDatabase, *args: Any, **kwargs: Any) -> T:
        with self.database.guard:
            return method(self, *args, **kwargs)

    return run
