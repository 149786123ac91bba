"""The server's cached SHA-256 of the files in its share: the one place that writes them.

A digest is filed under the file's real path with the stat it describes (size,
mtime, ctime, inode: common/io/hashcache.py), so a file changed by any means is a
miss, never a stale answer. Three things file one:

- ``remember``: a digest just computed (a download that hashed as it sent, a stat
  with digest) or just verified and published (an upload, a burst of them at once);
- ``refile``: a file that was renamed or had its mtime set keeps its bytes, but its
  ctime moved (and, for a rename, its path): its digest is filed again under the new
  path and stat, if the inode and size are still the ones the digest was made for;
- ``forget``: a file removed, or moved away from a path.

Nothing else in the server writes the cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from common.io.hashcache import HashCache


class Digests:
    """Digests of one server's files (shared by every home in its share)."""

    def __init__(self, cache: HashCache) -> None:
        self.cache = cache

    def known(self, real: str, st: os.stat_result) -> str | None:
        """The digest of the file at ``real`` if it still has the stat ``st`` describes."""
        return self.cache.get(real, st)

    def remember(self, real: str, st: os.stat_result, digest: str) -> None:
        """File ``digest`` for the file at ``real`` as ``st`` describes it."""
        self.cache.put(real, st, digest)

    def remember_many(self, rows: Sequence[tuple[str, os.stat_result, str]]) -> None:
        """``remember`` for several files in one transaction (a burst of uploads)."""
        self.cache.put_many(rows)

    def refile(self, before_real: str, before: os.stat_result, after_real: str,
               after: os.stat_result) -> None:
        """A file known as ``before`` at ``before_real`` is now ``after`` at ``after_real``
        (renamed, or its mtime set): carry its digest over if it is the same inode of the
        same size, which a rename or a utime cannot change."""
        digest = self.cache.get(before_real, before)
        if digest is None:
            return
        if (after.st_ino, after.st_size) != (before.st_ino, before.st_size):
            return  # written to meanwhile, or not the same file: no digest describes it
        self.cache.put(after_real, after, digest)
        if after_real != before_real:
            self.cache.forget(before_real)

    def forget(self, real: str) -> None:
        """The file at ``real`` is gone: drop its digest."""
        self.cache.forget(real)

    def prune(self) -> int:
        """Drop the digests of files that no longer exist (at start-up); return how many."""
        return self.cache.prune()
