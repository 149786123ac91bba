"""The records behind tus URLs: only their owner finds them, a guess finds nothing, they
expire, and the state folder holds no token a copy of it would give away."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import pytest

from common.protocol.errors import NotFound
from ftserver.http.tusrecords import Gone, TusRecords


def test_only_the_owner_finds_an_upload(tmp_path: Path) -> None:
    records = TusRecords(tmp_path, ttl=3600)
    alice = records.create("inbox/a.bin", 10, "alice", "filename YS5iaW4=", None)
    found = records.find(alice.token, "alice")
    assert replace(found, touched=0) == replace(alice, touched=0)
    for who in ("mallory", ""):
        with pytest.raises(NotFound) as refused:
            records.find(alice.token, who)
        assert not isinstance(refused.value, Gone)  # as if there were no such upload
    assert alice.plan().identity.owner == "alice" and alice.plan().resumable


def test_tokens_are_random_and_never_stored(tmp_path: Path) -> None:
    records = TusRecords(tmp_path, ttl=3600)
    made = [records.create("a.bin", 10, "", "", None) for _ in range(20)]
    tokens = {record.token for record in made}
    assert len(tokens) == 20 and all(len(token) == 43 for token in tokens)
    stored = b"".join(path.read_bytes() + path.name.encode()
                      for path in (tmp_path / "tus-uploads").iterdir())
    assert not any(token.encode() in stored for token in tokens)
    for guess in ("", "x" * 43, "../" * 15, made[0].token[:-1] + "?"):
        with pytest.raises(NotFound):
            records.find(guess, "")


def test_a_record_untouched_for_its_ttl_is_gone(tmp_path: Path) -> None:
    records = TusRecords(tmp_path, ttl=60)
    old = records.create("a.bin", 10, "", "", None)
    fresh = records.touch(records.create("b.bin", 10, "", "", None))
    past = time.time() - 120
    os.utime(records._path(old.token), (past, past))
    with pytest.raises(Gone):
        records.find(old.token, "")
    with pytest.raises(NotFound):
        records.find(old.token, "")
    assert records.find(fresh.token, "").name == "b.bin"
    done = records.published(fresh, "ab" * 32)
    assert records.find(fresh.token, "").published == done.published
