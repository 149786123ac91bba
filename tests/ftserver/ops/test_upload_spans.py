"""The one upload in passes (tus's PATCHes): a span at a time into the same resumable
partial, a hasher kept between passes taken only when the partial vouches for it, a
span rewound, the upload dropped. A real local store and a real socket pair."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.io.channel import Channel
from ftserver.ops.upload import Upload, UploadPlan
from ftserver.store.storage import LocalStorage

KiB = 1 << 10
DATA = os.urandom(600 * KiB)
PLAN = UploadPlan("spans/file.bin", len(DATA), 1_700_000_000.25, None, "alice")


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[LocalStorage]:
    (tmp_path / "share").mkdir()
    store = LocalStorage(str(tmp_path / "share"), str(tmp_path / "state"))
    yield store
    store.partials.close()  # (a server keeps these open for its lifetime)
    store.digests.cache.close()


def one_pass(storage: LocalStorage, offset: int, data: bytes,
             kept: hashlib._Hash | None = None, rewind: bool = False
             ) -> tuple[int, str, hashlib._Hash | None]:
    """A pass of ``data`` at ``offset``: what was held before it, the SHA-256 up to its
    end, and the hasher to keep."""
    ours, theirs = socket.socketpair()
    sender = threading.Thread(target=theirs.sendall, args=(data,), daemon=True)
    with ours, theirs, storage.folder_locks() as folder_locks:
        sender.start()
        upload = Upload(storage, PLAN, storage.alone(folder_locks))
        try:
            upload.open()
            held = upload.held
            upload.start(offset, kept)
            digest = upload.receive(Channel(ours, raw_only=True), 10.0, count=len(data))
            if rewind:
                upload.rewind()
            if offset + len(data) == PLAN.size:
                upload.finish(digest, digest)
            return held, digest, upload.hasher()
        finally:
            upload.close()
            sender.join(10.0)


def partial_of(tmp_path: Path) -> Path:
    [partial] = (tmp_path / "share" / ".ft-partials").glob("*.part")
    return partial


def test_passes_go_on_from_what_the_partial_holds_and_publish_at_the_end(
        storage: LocalStorage, tmp_path: Path) -> None:
    held, digest, kept = one_pass(storage, 0, DATA[:100 * KiB])
    assert held == 0 and digest == hashlib.sha256(DATA[:100 * KiB]).hexdigest()
    held, _, kept = one_pass(storage, 100 * KiB, DATA[100 * KiB:400 * KiB], kept)
    assert held == 100 * KiB
    held, digest, _ = one_pass(storage, 400 * KiB, DATA[400 * KiB:], kept)
    assert held == 400 * KiB and digest == hashlib.sha256(DATA).hexdigest()
    assert (tmp_path / "share" / "spans" / "file.bin").read_bytes() == DATA
    assert not list((tmp_path / "share" / ".ft-partials").glob("*.part"))


def test_a_kept_hasher_spares_reading_the_partial_again(
        storage: LocalStorage, tmp_path: Path) -> None:
    _, _, kept = one_pass(storage, 0, DATA[:300 * KiB])
    # Change a held byte behind the store's back, its size and mtime as they were: a pass
    # that read the partial again would hash the change; the kept hasher does not.
    partial = partial_of(tmp_path)
    st = partial.stat()
    with open(partial, "r+b") as stream:
        stream.write(b"\0" if DATA[0] else b"\1")
    os.utime(partial, ns=(st.st_atime_ns, st.st_mtime_ns))
    _, digest, _ = one_pass(storage, 300 * KiB, DATA[300 * KiB:400 * KiB], kept)
    assert digest == hashlib.sha256(DATA[:400 * KiB]).hexdigest()


def test_a_hasher_the_partial_does_not_vouch_for_is_not_taken(storage: LocalStorage) -> None:
    one_pass(storage, 0, DATA[:300 * KiB])
    stranger = hashlib.sha256(b"some other bytes")
    _, digest, _ = one_pass(storage, 300 * KiB, DATA[300 * KiB:400 * KiB], stranger)
    assert digest == hashlib.sha256(DATA[:400 * KiB]).hexdigest()


def test_a_rewound_span_leaves_the_partial_as_it_was(
        storage: LocalStorage, tmp_path: Path) -> None:
    _, _, kept = one_pass(storage, 0, DATA[:200 * KiB])
    one_pass(storage, 200 * KiB, DATA[200 * KiB:500 * KiB], kept, rewind=True)
    assert partial_of(tmp_path).stat().st_size == 200 * KiB
    held, digest, _ = one_pass(storage, 200 * KiB, DATA[200 * KiB:], kept)
    assert held == 200 * KiB and digest == hashlib.sha256(DATA).hexdigest()


def test_a_dropped_upload_leaves_nothing(storage: LocalStorage, tmp_path: Path) -> None:
    one_pass(storage, 0, DATA[:200 * KiB])
    with storage.folder_locks() as folder_locks:
        upload = Upload(storage, PLAN, storage.alone(folder_locks))
        try:
            upload.open()
            assert upload.held == 200 * KiB
            upload.drop()
        finally:
            upload.close()
    assert not list((tmp_path / "share" / ".ft-partials").iterdir())
