"""When ``Client`` tries a failed transfer again, and how long it waits in between.

Only failures of the link or of the moment are retried: the connection dropped
or could not be made, a deadline passed, the server was shutting down, and
``locked`` right after a cut (the server may still be closing the session that
was cut). A request that must not run twice (``Client.move``, ``remove``, a
``mkdir`` without ``parents``) is retried only while it has not been sent whole:
a cut after that raises ``OutcomeUnknown``, which is never retried, since the
server may have done it already (a retried remove would answer ``not_found``
for a file it had just removed). A server at its connection limit ("busy") is already waited out by
``Client.connect`` for up to ``busy_wait`` seconds, so it is not retried again.
Everything that would fail the same way again (a bad name, a missing file,
permissions, a full disk, a changed source, a checksum mismatch) is reported at
once. Each retry reconnects and the transfer resumes from the offset the other
side proves it holds.

This module decides and waits; it prints nothing (the CLI shows ``RetryNote``s).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from common.protocol.errors import (
    Busy,
    CannotConnect,
    ConnectionLost,
    FtError,
    Locked,
    OutcomeUnknown,
    StreamCut,
    Timeout,
    WrongProtocol,
)

DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = 1.0
"""Seconds before the first retry; each next one waits twice as long, up to MAX_RETRY_DELAY.
With the defaults a dead server costs 1 + 2 + 4 = 7 s of waiting before the error."""
MAX_RETRY_DELAY = 8.0
MAX_RETRIES = 1000

_CUT = (ConnectionLost, Timeout)
_REASONS: tuple[tuple[type[FtError], str], ...] = (
    (ConnectionLost, "connection lost"),
    (Timeout, "timed out"),
    (Locked, "name still locked"),
)
SHUTTING_DOWN = "shutting down"
"""In the message of the ``busy`` reply a server sends to requests while it stops."""

T = TypeVar("T")


@dataclass(frozen=True)
class RetryNote:
    """A retry about to happen: the ``attempt``-th of ``retries``, after ``delay`` seconds."""

    path: str
    attempt: int
    retries: int
    delay: float
    reason: str
    error: FtError

    def __str__(self) -> str:
        return f"retry {self.attempt}/{self.retries} in {self.delay:g} s: {self.reason}"


RetryCallback = Callable[[RetryNote], None]


def check_retry_settings(retries: int, delay: float) -> None:
    """Raise ValueError for a retry count or first delay a caller cannot mean."""
    if isinstance(retries, bool) or not isinstance(retries, int) or not (
            0 <= retries <= MAX_RETRIES):
        raise ValueError(f"retries must be a whole number from 0 to {MAX_RETRIES}, "
                         f"not {retries!r}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not (
            0 <= delay <= MAX_RETRY_DELAY):
        raise ValueError(f"retry_delay must be 0 to {MAX_RETRY_DELAY:g} seconds, not {delay!r}")


def reason_to_retry(error: FtError, after_cut: bool) -> str | None:
    """A short reason if ``error`` is worth another attempt, else None.

    ``after_cut``: the previous attempt of this transfer lost its connection, so a
    ``locked`` now is most likely our own cut session not yet closed by the server, and
    a refused connection a server restarting. Before any cut, a refused connection or
    an unknown host fails at once: waiting 7 s would not change them.
    """
    if isinstance(error, (OutcomeUnknown, StreamCut, WrongProtocol)) or (
            isinstance(error, (Locked, CannotConnect)) and not after_cut):
        return None
    if isinstance(error, Busy):
        return "server shutting down" if SHUTTING_DOWN in error.message else None
    for cls, reason in _REASONS:
        if isinstance(error, cls):
            return reason
    return None


def backoff(first_delay: float, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): doubling, capped."""
    return min(first_delay * 2 ** (attempt - 1), MAX_RETRY_DELAY)


def run_with_retries(
    action: Callable[[], T], *, path: str, retries: int, first_delay: float,
    before_retry: Callable[[], None], on_retry: RetryCallback | None,
) -> tuple[T, int]:
    """Run ``action`` until it succeeds or fails for good; return (result, retries used).

    ``before_retry`` drops the connection so the next attempt reconnects. The error
    that ends it all says how many retries were made.
    """
    attempt = 0
    after_cut = False
    while True:
        try:
            return action(), attempt
        except FtError as error:
            reason = reason_to_retry(error, after_cut)
            if reason is None or attempt >= retries:
                note_gave_up(error, attempt)
                raise
            attempt += 1
            after_cut = after_cut or isinstance(error, _CUT)
            delay = backoff(first_delay, attempt)
            if on_retry is not None:
                on_retry(RetryNote(path, attempt, retries, delay, reason, error))
            before_retry()
            time.sleep(delay)


def note_gave_up(error: FtError, retries: int) -> None:
    """Append "(gave up after N retries)" to ``error``'s message, if any retry was made."""
    if retries:
        error.message += f" (gave up after {retries} {'retry' if retries == 1 else 'retries'})"
        error.args = (error.message,)
