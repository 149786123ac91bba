"""Bandwidth limits: parse "10M"-style rates and pace byte streams with token buckets.

Owns the arithmetic only: a ``TokenBucket`` hands out reservations and says how
long the caller must wait; a ``Throttle`` combines the buckets one stream is
subject to (its own and a shared total) and does the waiting. It never touches
a socket or a file; transfers call ``Throttle.wait`` once per chunk and size
their chunks with ``Throttle.chunk_size`` so that pacing stays smooth.

A bucket's state may live in shared memory (``shared_state``), so that worker
processes of one server draw on the same total. ``time.monotonic`` is the
system-wide CLOCK_MONOTONIC on Linux, so every process reads the same clock.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import MutableSequence
from contextlib import AbstractContextManager
from typing import Any

UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
"""Suffixes as curl's --limit-rate reads them: powers of 1024, upper or lower case."""
MIN_RATE = 32 * 1024
"""Slowest rate accepted, in bytes/s. Below it the transfer deadlines (each 1 MiB of a
stream must move within the 60 s default timeout) would cut a throttled transfer."""
MAX_RATE = 1024**4
PACE_SLICES_PER_SECOND = 10
"""A throttled stream moves in chunks of about a tenth of a second's worth of bytes."""
MIN_CHUNK = 4096

_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB](?:/s)?)?")


class RateError(ValueError):
    """A rate that cannot be used; the message says why in one sentence."""


def parse_rate(value: Any) -> int:
    """Bytes per second from ``10M``, ``512k``, ``1.5G`` or a plain integer; 0 means no limit."""
    if isinstance(value, bool):
        raise RateError(f"expected a rate such as 10M or 512K, got {value!r}")
    if isinstance(value, int):
        rate = value
    elif isinstance(value, str) and (match := _RATE.fullmatch(value.strip())):
        rate = int(float(match.group(1)) * UNITS[match.group(2).upper()])
    else:
        raise RateError(f"expected a rate such as 10M or 512K (bytes per second, suffixes "
                        f"K, M, G), got {value!r}")
    if rate == 0:
        return 0
    if not MIN_RATE <= rate <= MAX_RATE:
        raise RateError(f"a rate must be 0 (no limit) or from 32K to 1024G per second, "
                        f"got {value!r}")
    return rate


def format_rate(rate: int) -> str:
    """``10485760`` -> ``10M/s``; 0 -> ``unlimited``."""
    if not rate:
        return "unlimited"
    for suffix in ("G", "M", "K"):
        if rate % UNITS[suffix] == 0:
            return f"{rate // UNITS[suffix]}{suffix}/s"
    return f"{rate}/s"


def shared_state(context: Any) -> tuple[AbstractContextManager[Any], MutableSequence[float]]:
    """A lock and a two-number state in shared memory, from a multiprocessing context.

    Pass the pair to ``TokenBucket(..., state=...)`` in each process (as a Process
    argument at start, which is how multiprocessing shares such objects).
    """
    return context.Lock(), context.RawArray("d", 2)


class TokenBucket:
    """``rate`` bytes per second, with bursts up to ``burst`` bytes.

    ``reserve`` always grants the amount at once and lets the bucket go into debt;
    the caller then waits the returned seconds before moving the bytes. So a chunk
    larger than the burst still passes, and callers sharing a bucket queue up in
    the order they reserved, each waiting for its own share.
    """

    def __init__(
        self,
        rate: int,
        burst: int | None = None,
        state: tuple[AbstractContextManager[Any], MutableSequence[float]] | None = None,
    ) -> None:
        if rate <= 0:
            raise RateError("a token bucket needs a positive rate")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else chunk_for_rate(rate))
        if state is None:
            state = (threading.Lock(), [0.0, 0.0])
        self._lock: AbstractContextManager[Any]
        self._state: MutableSequence[float]
        self._lock, self._state = state
        with self._lock:
            if self._state[1] == 0.0:  # fresh state: start full
                self._state[0], self._state[1] = self.burst, time.monotonic()

    def reserve(self, amount: int) -> float:
        """Take ``amount`` tokens; return the seconds to wait before using them."""
        with self._lock:
            now = time.monotonic()
            tokens, last = self._state[0], self._state[1]
            tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate) - amount
            self._state[0], self._state[1] = tokens, now
        return max(0.0, -tokens / self.rate)

    def try_take(self, amount: int = 1) -> bool:
        """Take ``amount`` tokens if the bucket holds them now; never waits or borrows."""
        with self._lock:
            now = time.monotonic()
            tokens = min(self.burst, self._state[0] + max(0.0, now - self._state[1]) * self.rate)
            self._state[1] = now
            if tokens < amount:
                self._state[0] = tokens
                return False
            self._state[0] = tokens - amount
            return True


def chunk_for_rate(rate: int) -> int:
    """Bytes per pacing step at ``rate``: about a tenth of a second's worth."""
    return max(MIN_CHUNK, rate // PACE_SLICES_PER_SECOND)


class Throttle:
    """The buckets one byte stream draws on; with none it never waits."""

    def __init__(self, *buckets: TokenBucket | None) -> None:
        self.buckets = tuple(bucket for bucket in buckets if bucket is not None)

    @property
    def limited(self) -> bool:
        return bool(self.buckets)

    def chunk_size(self, default: int) -> int:
        """The chunk size to use instead of ``default``: small enough to pace smoothly."""
        if not self.buckets:
            return default
        slowest = min(bucket.rate for bucket in self.buckets)
        return min(default, chunk_for_rate(int(slowest)))

    def wait(self, amount: int) -> float:
        """Reserve ``amount`` bytes in every bucket and sleep until all allow them.

        Returns the seconds slept, so a caller can keep its own deadlines fair.
        """
        if not self.buckets or amount <= 0:
            return 0.0
        delay = max(bucket.reserve(amount) for bucket in self.buckets)
        if delay > 0:
            time.sleep(delay)
        return delay


UNLIMITED = Throttle()
