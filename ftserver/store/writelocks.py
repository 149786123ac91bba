"""WebDAV write locks as the store enforces them: on every writer, by whatever way it came.

A lock (RFC 4918, section 6) covers a name of the share, or a folder and everything
under it (depth infinity); it is exclusive or shared, has a token, an owner, the
user who took it, and an expiry. The table lives in ``state_dir/dav.sqlite3`` (davdb.py),
so it holds across worker processes and restarts, and a lock ends by itself when its
timeout passes (expired rows are ignored, and swept whenever a lock is taken).

Every write of the local store asks ``check`` first: an upload (ft's put, HTTP PUT,
tus, WebDAV), mkdir, mv, rm and mtime. A writer that holds none of a lock's tokens
gets ``Locked``: ``ftclient put`` to a name Finder locked is refused as a WebDAV
client without the token is. Creating or removing a name changes its folder's
members, so a lock on the folder (any depth) covers that too; removing or moving a
folder also needs the tokens of every lock beneath it. Names are the real paths
names.py resolved them to, so a user's home and the whole share agree.

With no lock taken (most servers, most of the time) a check is one indexed query
that finds nothing; the database is opened once per process.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass

from common.protocol.errors import Locked
from ftserver.store.davdb import UsesDavDatabase, guarded

TOKEN_SCHEME = "opaquelocktoken:"
MAX_TIMEOUT = 3600
"""The longest a lock is granted for, whatever a client asks (an hour: a client that
keeps working refreshes it, and one that went away lets go of the name by itself)."""
DEFAULT_TIMEOUT = 3600
MAX_OWNER = 4096
"""The most bytes of a lock's owner XML kept (it goes out in every lockdiscovery)."""
MAX_LOCKS_PER_NAME = 16
MAX_LOCKS = 10_000


@dataclass(frozen=True)
class WriteLock:
    """One lock: which name it covers, how, whose, until when."""

    token: str
    root: str
    """The real path it was taken on."""
    infinite: bool
    """Depth infinity: everything under ``root`` too."""
    exclusive: bool
    owner: str
    """The client's ``owner`` XML, kept as sent, for lockdiscovery."""
    user: str
    timeout: int
    expires: float

    def covers(self, path: str) -> bool:
        return path == self.root or (self.infinite and _under(path, self.root))


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _parent(path: str) -> str:
    return os.path.dirname(path.rstrip("/")) or "/"


class WriteLocks(UsesDavDatabase):
    """The lock table of one share (every process of the server opens the same file)."""

    # ------------------------------------------------------------ reading

    @guarded
    def covering(self, path: str, *, members: bool = False, beneath: bool = False
                 ) -> list[WriteLock]:
        """The live locks on ``path``: its own, those of folders above it taken with depth
        infinity, with ``members`` its folder's own (any depth), and with ``beneath``
        every lock on a name under it."""
        if self._never_used:
            return []
        now = time.time()
        db = self._db()
        found: dict[str, WriteLock] = {}
        ancestors = _ancestors(path)
        marks = ",".join("?" * len(ancestors))
        rows = db.execute(
            f"SELECT * FROM locks WHERE expires > ? AND (root = ? OR (infinite = 1 AND root IN "
            f"({marks})))", (now, path, *ancestors)).fetchall()
        if members:
            rows += db.execute("SELECT * FROM locks WHERE expires > ? AND root = ?",
                               (now, _parent(path))).fetchall()
        if beneath:
            prefix = path.rstrip("/") + "/"
            rows += db.execute(
                "SELECT * FROM locks WHERE expires > ? AND substr(root, 1, ?) = ?",
                (now, len(prefix), prefix)).fetchall()
        for row in rows:
            lock = WriteLock(row[0], row[1], bool(row[2]), bool(row[3]), row[4], row[5],
                             row[6], row[7])
            found[lock.token] = lock
        return sorted(found.values(), key=lambda lock: lock.token)

    @guarded
    def any(self) -> bool:
        """Whether any lock is live at all (the common answer, no, in one cheap query)."""
        if self._never_used:
            return False
        row = self._db().execute("SELECT EXISTS (SELECT 1 FROM locks WHERE expires > ?)",
                                 (time.time(),)).fetchone()
        return bool(row[0])

    @guarded
    def get(self, token: str) -> WriteLock | None:
        if self._never_used:
            return None
        row = self._db().execute("SELECT * FROM locks WHERE token = ? AND expires > ?",
                                 (token, time.time())).fetchone()
        if row is None:
            return None
        return WriteLock(row[0], row[1], bool(row[2]), bool(row[3]), row[4], row[5], row[6],
                         row[7])

    @guarded
    def check(self, path: str, tokens: frozenset[str], user: str, *, members: bool = False,
              beneath: bool = False, name: str = "") -> None:
        """Locked unless every lock in the way is one whose token the writer holds, and
        took as this same ``user`` (for shared locks on one name, one is enough)."""
        if not self.any():
            return
        blocking = self.covering(path, members=members, beneath=beneath)
        if not blocking:
            return
        by_root: dict[str, list[WriteLock]] = {}
        for lock in blocking:
            by_root.setdefault(lock.root, []).append(lock)
        for locks in by_root.values():
            if not any(lock.token in tokens and lock.user == user for lock in locks):
                shown = name or os.path.basename(path) or "/"
                raise Locked(f"{shown!r} is locked by a WebDAV client (a lock of "
                             f"{locks[0].user or 'anonymous'!r}); try again when it is "
                             f"unlocked or its lock expires")

    # ------------------------------------------------------------ writing

    @guarded
    def take(self, path: str, *, infinite: bool, exclusive: bool, owner: str, user: str,
             timeout: int) -> WriteLock:
        """A new lock on ``path``, or Locked if one in the way conflicts (any lock against
        an exclusive one; an exclusive one against any)."""
        timeout = max(1, min(timeout, MAX_TIMEOUT))
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM locks WHERE expires <= ?", (time.time(),))
            in_way = self.covering(path, beneath=infinite)
            if any(lock.exclusive or exclusive for lock in in_way):
                raise Locked(f"{os.path.basename(path) or '/'!r} is already locked")
            (count,) = db.execute("SELECT COUNT(*) FROM locks").fetchone()
            if len(in_way) >= MAX_LOCKS_PER_NAME or count >= MAX_LOCKS:
                raise Locked(f"{os.path.basename(path) or '/'!r} has as many locks as a "
                             "name may have")
            if len(owner.encode()) > MAX_OWNER:
                raise ValueError(f"a lock's owner may hold at most {MAX_OWNER} bytes")
            lock = WriteLock(TOKEN_SCHEME + str(uuid.uuid4()), path, infinite, exclusive,
                             owner, user, timeout, time.time() + timeout)
            db.execute("INSERT INTO locks VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (lock.token, lock.root, int(lock.infinite), int(lock.exclusive),
                        lock.owner, lock.user, lock.timeout, lock.expires))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return lock

    @guarded
    def refresh(self, token: str, timeout: int) -> WriteLock | None:
        timeout = max(1, min(timeout, MAX_TIMEOUT))
        db = self._db()
        db.execute("UPDATE locks SET timeout = ?, expires = ? WHERE token = ? AND expires > ?",
                   (timeout, time.time() + timeout, token, time.time()))
        return self.get(token)

    @guarded
    def release(self, token: str) -> bool:
        cursor = self._db().execute("DELETE FROM locks WHERE token = ? AND expires > ?",
                                    (token, time.time()))
        return cursor.rowcount > 0

    @guarded
    def forget(self, path: str) -> None:
        """``path`` and what was under it are gone (deleted, or moved away): so are their
        locks (RFC 4918: a lock does not follow a MOVE)."""
        if not self.any():
            return
        prefix = path.rstrip("/") + "/"
        self._db().execute("DELETE FROM locks WHERE root = ? OR substr(root, 1, ?) = ?",
                           (path, len(prefix), prefix))


def _ancestors(path: str) -> list[str]:
    """Every folder above ``path``, nearest first."""
    found = []
    while True:
        parent = _parent(path)
        if parent == path:
            return found
        found.append(parent)
        path = parent
