"""What a transfer reports: progress while it runs, and the result of a put or a get."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Where a transfer stands. ``resumed_from`` is the offset it started at (0 if fresh)."""

    path: str
    total: int
    done: int
    resumed_from: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class PutResult:
    remote: str
    size: int
    sha256: str
    resumed_from: int
    retries: int = 0


@dataclass(frozen=True)
class GetResult:
    local: str
    size: int
    sha256: str
    resumed_from: int
    retries: int = 0
