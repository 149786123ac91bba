"""Admission: the live connections, overall and per address, and whether one more may come in.

When all slots are taken, the listener may make room by closing an idle connection
(one that holds no request): ``eviction_candidates`` orders the live connections
for that, those of the address holding the most first, oldest first, so two
addresses parking idle connections in every slot cannot keep everyone else out.
"""

from __future__ import annotations

import threading
from collections import Counter


class Admission:
    """Counts live connections, overall and per address."""

    def __init__(self, max_total: int, max_per_address: int) -> None:
        self.max_total = max_total
        self.max_per_address = max_per_address
        self._lock = threading.Lock()
        self._by_address: Counter[str] = Counter()
        self._address_of: dict[int, str] = {}

    def try_admit(self, session_id: int, address: str) -> str | None:
        """Admit and return None, or return the reason for refusing.

        An address over its own limit is told so first: closing someone's idle
        connection would not let it in (``full`` says whether room would)."""
        with self._lock:
            if self._by_address[address] >= self.max_per_address:
                return (f"your address already has {self.max_per_address} connections "
                        "open, the most allowed")
            if len(self._address_of) >= self.max_total:
                return f"the server is serving its limit of {self.max_total} connections"
            self._by_address[address] += 1
            self._address_of[session_id] = address
            return None

    def release(self, session_id: int) -> None:
        with self._lock:
            address = self._address_of.pop(session_id, None)
            if address is not None:
                self._by_address[address] -= 1
                if not self._by_address[address]:
                    del self._by_address[address]

    def full(self, address: str) -> bool:
        """Whether only the total limit keeps a connection from ``address`` out."""
        with self._lock:
            return (len(self._address_of) >= self.max_total
                    and self._by_address[address] < self.max_per_address)

    def eviction_candidates(self) -> list[int]:
        """The live connections in the order to close an idle one: the addresses holding
        the most connections first, and each address's oldest first."""
        with self._lock:
            return sorted(self._address_of,
                          key=lambda sid: (-self._by_address[self._address_of[sid]], sid))

    def address_of(self, session_id: int) -> str | None:
        with self._lock:
            return self._address_of.get(session_id)

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._address_of)
