"""Admission: the live connections, overall and per address, and whether one more may come in."""

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
        """Admit and return None, or return the reason for refusing."""
        with self._lock:
            if len(self._address_of) >= self.max_total:
                return f"the server is serving its limit of {self.max_total} connections"
            if self._by_address[address] >= self.max_per_address:
                return (f"your address already has {self.max_per_address} connections "
                        "open, the most allowed")
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

    @property
    def active(self) -> int:
        with self._lock:
            return len(self._address_of)
