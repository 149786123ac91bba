"""WebDAV's dead properties: what clients set with PROPPATCH, kept in state_dir, never
in the share (davdb.py's table).

A property is named in Clark notation (``{namespace}name``) and its value is the XML
the client sent inside it, kept as text. Properties belong to a name: a move takes
them along (a folder's, and those of everything under it), a copy copies them, and a
removal forgets them, whichever way the change came (fileops.py calls these), so a
new file under an old name never inherits an old file's properties.
"""

from __future__ import annotations

from ftserver.store.davdb import UsesDavDatabase, guarded

MAX_PROPS_PER_NAME = 256
MAX_VALUE_BYTES = 64 * 1024
MAX_PROPS = 1_000_000
"""The most properties kept in all: past it a PROPPATCH gets 507, as a full disk would."""


class DeadProps(UsesDavDatabase):
    @guarded
    def of_many(self, paths: list[str]) -> dict[str, dict[str, str]]:
        """The properties of each of ``paths`` that has any, in a few queries."""
        if self._never_used or not paths:
            return {}
        found: dict[str, dict[str, str]] = {}
        db = self._db()
        for start in range(0, len(paths), 500):
            some = paths[start:start + 500]
            rows = db.execute(f"SELECT path, name, value FROM props WHERE path IN "
                              f"({','.join('?' * len(some))})", some).fetchall()
            for path, name, value in rows:
                found.setdefault(path, {})[name] = value
        return found

    @guarded
    def change(self, path: str, sets: dict[str, str], removes: list[str]) -> None:
        """Set and remove, all or nothing (ValueError past a limit, and nothing changed)."""
        if any(len(value.encode()) > MAX_VALUE_BYTES for value in sets.values()):
            raise ValueError(f"a property's value may hold at most {MAX_VALUE_BYTES} bytes")
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            for name in removes:
                db.execute("DELETE FROM props WHERE path = ? AND name = ?", (path, name))
            for name, value in sets.items():
                db.execute("INSERT OR REPLACE INTO props VALUES (?, ?, ?)", (path, name, value))
            (count,) = db.execute("SELECT COUNT(*) FROM props WHERE path = ?",
                                  (path,)).fetchone()
            if count > MAX_PROPS_PER_NAME:
                raise ValueError(f"at most {MAX_PROPS_PER_NAME} properties a name")
            if sets:
                (total,) = db.execute("SELECT COUNT(*) FROM props").fetchone()
                if total > MAX_PROPS:
                    raise ValueError(f"the share keeps at most {MAX_PROPS} properties")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @guarded
    def moved(self, source: str, destination: str) -> None:
        if self._never_used:
            return
        db = self._db()
        prefix = source.rstrip("/") + "/"
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM props WHERE path = ? OR substr(path, 1, ?) = ?",
                       (destination, len(destination) + 1, destination.rstrip("/") + "/"))
            db.execute("UPDATE props SET path = ? WHERE path = ?", (destination, source))
            db.execute("UPDATE props SET path = ? || substr(path, ?) WHERE substr(path, 1, ?) = ?",
                       (destination.rstrip("/") + "/", len(prefix) + 1, len(prefix), prefix))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    @guarded
    def copied(self, source: str, destination: str) -> None:
        """``source``'s own properties onto ``destination`` (a copy, one name at a time)."""
        if self._never_used:
            return
        db = self._db()
        db.execute("DELETE FROM props WHERE path = ?", (destination,))
        db.execute("INSERT INTO props SELECT ?, name, value FROM props WHERE path = ?",
                   (destination, source))

    @guarded
    def forget(self, path: str) -> None:
        if self._never_used:
            return
        prefix = path.rstrip("/") + "/"
        self._db().execute("DELETE FROM props WHERE path = ? OR substr(path, 1, ?) = ?",
                           (path, len(prefix), prefix))
