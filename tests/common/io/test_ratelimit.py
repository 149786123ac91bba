"""Rates and token buckets (common/io/ratelimit.py), in memory: parsing, arithmetic, chunk sizes."""

from __future__ import annotations

import threading

import pytest

from common.io.ratelimit import (
    MIN_RATE,
    RateError,
    Throttle,
    TokenBucket,
    format_rate,
    parse_rate,
)

K, M, G = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(("text", "rate"), [
    ("10M", 10 * M), ("10m", 10 * M), ("512K", 512 * K), ("512k", 512 * K), ("1G", G),
    ("1.5M", int(1.5 * M)), ("65536", 65536), (65536, 65536), ("0", 0), (0, 0),
    ("10MB", 10 * M), ("10MiB/s", 10 * M), (" 2M ", 2 * M),
])
def test_parse_rate(text: object, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "M", "fast", "-1M", "1e6", "10 X", "1T", "0x100",
                                  "31K", MIN_RATE - 1, True, 1.5, None, [1], "1025G"])
def test_bad_rates(text: object) -> None:
    with pytest.raises(RateError):
        parse_rate(text)


def test_format_rate() -> None:
    assert [format_rate(r) for r in (0, 10 * M, 512 * K, 2 * G, 100_000)] == [
        "unlimited", "10M/s", "512K/s", "2G/s", "100000/s"]


def test_throttle_without_buckets_never_waits() -> None:
    throttle = Throttle(None)
    assert not throttle.limited
    assert throttle.chunk_size(M) == M
    assert throttle.wait(10 * G) == 0.0


def test_chunks_follow_the_slowest_bucket() -> None:
    throttle = Throttle(TokenBucket(10 * M), TokenBucket(640 * K))
    assert throttle.chunk_size(M) == 64 * K
    assert Throttle(TokenBucket(100 * G)).chunk_size(M) == M


def test_reservations_go_into_debt_and_queue() -> None:
    bucket = TokenBucket(M, burst=64 * K)
    assert bucket.reserve(64 * K) == 0.0
    assert 0.45 <= bucket.reserve(M // 2) <= 0.5
    assert 0.95 <= bucket.reserve(M // 2) <= 1.0  # waits behind the first
    assert not bucket.try_take(1)


def test_try_take_never_borrows() -> None:
    bucket = TokenBucket(2, burst=4)
    assert [bucket.try_take() for _ in range(6)] == [True] * 4 + [False] * 2


def test_two_buckets_on_one_state_share_the_budget() -> None:
    """As worker processes do with shared memory (test_throttling covers that end to end)."""
    state = (threading.Lock(), [0.0, 0.0])
    first, second = TokenBucket(M, burst=64 * K, state=state), TokenBucket(M, state=state)
    assert first.reserve(64 * K) == 0.0
    assert 0.45 <= second.reserve(M // 2) <= 0.5  # the burst is already spent by the other


def test_zero_rate_bucket_is_refused() -> None:
    with pytest.raises(RateError):
        TokenBucket(0)
