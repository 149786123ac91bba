"""HashPipe: the digest is SHA-256 of exactly what was submitted; memory and threads bounded."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

from common.io.hashpipe import BUFFER_SIZE, DEPTH, HashPipe


def feed(data: bytes, hasher: hashlib._Hash | None = None, **options: int) -> str:
    """Push ``data`` through a pipe in buffer-sized pieces, as the transfer loops do."""
    with HashPipe(hasher, expected=len(data), **options) as pipe:
        position = 0
        while position < len(data):
            buffer = pipe.buffer()
            piece = data[position: position + pipe.buffer_size]
            buffer[: len(piece)] = piece
            pipe.submit(buffer, len(piece))
            position += len(piece)
        return pipe.hexdigest()


@pytest.mark.parametrize("size", [0, 1, BUFFER_SIZE - 1, BUFFER_SIZE, BUFFER_SIZE + 1,
                                  5 * BUFFER_SIZE + 17])
def test_digest_is_sha256_of_everything_submitted(size: int) -> None:
    data = os.urandom(size)
    assert feed(data) == hashlib.sha256(data).hexdigest()


def test_a_prefix_hasher_is_continued() -> None:
    """A resume hands in the hash of the verified prefix; the pipe adds the rest."""
    prefix, rest = os.urandom(1000), os.urandom(3 * BUFFER_SIZE)
    hasher = hashlib.sha256(prefix)
    assert feed(rest, hasher) == hashlib.sha256(prefix + rest).hexdigest()


def test_short_buffers_hash_only_their_filled_part() -> None:
    """A recv that fills part of a buffer must not hash the stale bytes behind it."""
    with HashPipe(expected=4 * BUFFER_SIZE) as pipe:
        buffer = pipe.buffer()
        buffer[:] = b"x" * len(buffer)
        pipe.submit(buffer, 10)
        assert pipe.hexdigest() == hashlib.sha256(b"x" * 10).hexdigest()


def test_a_small_transfer_is_hashed_inline_without_a_thread() -> None:
    before = threading.active_count()
    with HashPipe(expected=BUFFER_SIZE) as pipe:
        assert threading.active_count() == before
        buffer = pipe.buffer()
        pipe.submit(buffer, 0)
        assert pipe.hexdigest() == hashlib.sha256().hexdigest()


def test_memory_is_bounded_by_depth_buffers() -> None:
    """A filler that outruns the hash waits for a free buffer: never more than DEPTH exist."""
    pipe = HashPipe(expected=100 * BUFFER_SIZE)
    try:
        held = [pipe.buffer() for _ in range(DEPTH)]
        assert all(len(b) == BUFFER_SIZE for b in held)
        waiter_got: list[memoryview] = []
        waiter = threading.Thread(target=lambda: waiter_got.append(pipe.buffer()))
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and not waiter_got  # all DEPTH buffers are out
        pipe.submit(held[0], 1)  # hashed, then handed back
        waiter.join(10)
        assert not waiter.is_alive()
        assert waiter_got[0].obj is held[0].obj  # the same preallocated buffer, recycled
    finally:
        pipe.close()


def test_leaving_the_block_early_stops_the_thread() -> None:
    """An error in the transfer loop must not leave the hashing thread behind."""
    before = threading.active_count()
    with pytest.raises(RuntimeError), HashPipe(expected=10 * BUFFER_SIZE) as pipe:
        assert threading.active_count() == before + 1
        buffer = pipe.buffer()
        pipe.submit(buffer, 5)
        raise RuntimeError("the link dropped")
    assert threading.active_count() == before
