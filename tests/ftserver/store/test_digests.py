"""The one writer of the server's digest cache: remember, refile after a rename or utime, forget.

Real files in tmp_path, a real SQLite cache.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.io.hashcache import HashCache
from ftserver.store.digests import Digests

DIGEST = "ab" * 32


@pytest.fixture
def digests(tmp_path: Path) -> Iterator[Digests]:
    cache = HashCache(str(tmp_path / "hashes.sqlite3"))
    yield Digests(cache)
    cache.close()


def test_a_renamed_file_keeps_its_digest_under_the_new_name_only(
        tmp_path: Path, digests: Digests) -> None:
    old, new = tmp_path / "a.txt", tmp_path / "b.txt"
    old.write_bytes(b"hello")
    before = os.stat(old)
    digests.remember(str(old), before, DIGEST)
    os.rename(old, new)
    after = os.stat(new)
    digests.refile(str(old), before, str(new), after)
    assert digests.known(str(new), after) == DIGEST
    assert digests.cache.get(str(old), before) is None  # forgotten at the old path


def test_an_mtime_change_refiles_the_digest_under_the_new_stamp(
        tmp_path: Path, digests: Digests) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    before = os.stat(path)
    digests.remember(str(path), before, DIGEST)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 10**9))
    after = os.stat(path)
    assert digests.known(str(path), after) is None  # the stamp moved: a miss until refiled
    digests.refile(str(path), before, str(path), after)
    assert digests.known(str(path), after) == DIGEST


def test_a_file_written_to_meanwhile_is_not_refiled(
        tmp_path: Path, digests: Digests) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    before = os.stat(path)
    digests.remember(str(path), before, DIGEST)
    path.write_bytes(b"hello, longer")
    after = os.stat(path)
    digests.refile(str(path), before, str(path), after)
    assert digests.known(str(path), after) is None


def test_forget_drops_the_digest(
        tmp_path: Path, digests: Digests) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello")
    st = os.stat(path)
    digests.remember(str(path), st, DIGEST)
    digests.forget(str(path))
    assert digests.known(str(path), st) is None
