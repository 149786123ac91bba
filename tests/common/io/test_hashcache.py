"""The digest cache carries an older cache's rows forward and keeps working (real SQLite files)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from common.io.hashcache import HashCache


def test_a_cache_written_by_the_previous_version_is_carried_over(tmp_path: Path) -> None:
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"kept")
    st = kept.stat()
    db_path = tmp_path / "digests.db"
    with sqlite3.connect(db_path) as old:  # the table 0.2 wrote: times as integers
        old.execute("CREATE TABLE digests_v2 (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
                    "mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, "
                    "inode INTEGER NOT NULL, sha256 TEXT NOT NULL)")
        old.execute("INSERT INTO digests_v2 VALUES (?, ?, ?, ?, ?, ?)",
                    (str(kept), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, "e" * 64))
    old.close()

    first = HashCache(str(db_path))
    second = HashCache(str(db_path))  # a second process opening it after the upgrade
    try:
        assert first.get(str(kept), st) == "e" * 64
        assert second.get(str(kept), st) == "e" * 64
        kept.write_bytes(b"changed")
        assert first.get(str(kept), kept.stat()) is None  # still checked by size and times
    finally:
        first.close()
        second.close()
    with sqlite3.connect(db_path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    db.close()
    assert "digests_v2" not in tables and "digests_v3" in tables
    assert not (tmp_path / "digests.db.broken").exists()
