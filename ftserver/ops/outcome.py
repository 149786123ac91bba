"""What one transfer did, for its log line: the same fields for every front end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TransferResult:
    """One upload or download that succeeded."""

    path: str
    size: int
    offset: int
    """Where it started: 0, or the bytes the receiver already held."""
    moved: int
    """Bytes of file data that crossed."""
