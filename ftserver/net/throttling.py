"""Which bandwidth limits apply to a connection: its own ``limits.rate`` and the server's total.

The total (``limits.total_rate``) is one token bucket per direction shared by
every connection of the server; under the process executor its state lives in
shared memory, made by the listener (``shared_rate_states``) and handed to each
worker at start, so connections in different workers still share one budget.
The pacing itself is common/io/ratelimit.py; this file only decides who shares what.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.io.ratelimit import Throttle, TokenBucket, shared_state
from ftserver.config import Limits

RateStates = dict[str, Any]
"""Shared bucket states by direction ("upload", "download"), for worker processes."""


def shared_rate_states(context: Any, limits: Limits) -> RateStates | None:
    """Shared-memory states for the total buckets, or None when there is no total limit."""
    if not limits.total_rate:
        return None
    return {"upload": shared_state(context), "download": shared_state(context)}


@dataclass(frozen=True)
class ConnectionThrottles:
    """What one connection's uploads and downloads draw on."""

    upload: Throttle
    download: Throttle


class ServerRates:
    """The server-wide buckets, and a fresh per-connection bucket for each session."""

    def __init__(self, limits: Limits, states: RateStates | None = None) -> None:
        self.per_connection = limits.rate
        self.total_upload: TokenBucket | None = None
        self.total_download: TokenBucket | None = None
        if limits.total_rate:
            states = states or {}
            self.total_upload = TokenBucket(limits.total_rate, state=states.get("upload"))
            self.total_download = TokenBucket(limits.total_rate, state=states.get("download"))

    def for_connection(self) -> ConnectionThrottles:
        # One bucket for both directions: a connection runs one transfer at a time.
        own = TokenBucket(self.per_connection) if self.per_connection else None
        return ConnectionThrottles(Throttle(own, self.total_upload),
                                   Throttle(own, self.total_download))
