"""How long a failed login waits before its answer: failures counted across worker processes.

Failures from one address are counted in ``state_dir/auth-failures`` (one small
file per address, under a file lock, so every worker process sees the same
count) and each one beyond ``FREE_FAILURES`` within FAILURE_WINDOW doubles the
delay, up to ``MAX_DELAY``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger("ftserver.security")

FREE_FAILURES = 3
FAILURE_WINDOW = 600.0
MAX_DELAY = 30.0


class FailureThrottle:
    """Failed logins per address in the last FAILURE_WINDOW seconds, and the delay they earn.

    Shared by all processes of the server through one file per address in ``folder``
    (named by a digest of the address, holding the failure times), read and
    rewritten under flock. Files of addresses quiet for FAILURE_WINDOW are pruned.
    """

    KEEP = 64
    PRUNE_EVERY = 64

    def __init__(self, folder: Path, base_delay: float) -> None:
        self.folder = folder
        self.base_delay = base_delay
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._recorded = 0
        self._lock = threading.Lock()

    def _path(self, address: str) -> Path:
        return self.folder / hashlib.sha256(address.encode()).hexdigest()[:32]

    def record_failure(self, address: str) -> float:
        """Count a failure; return how long to wait before answering it."""
        now = time.time()
        try:
            fd = os.open(self._path(address), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            log.warning("cannot count failed logins: %s", exc)
            return min(MAX_DELAY, self.base_delay * 2)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.pread(fd, 4096, 0).decode("ascii", "replace")
            recent = [t for t in _floats(text) if 0 <= now - t < FAILURE_WINDOW]
            recent = (recent + [now])[-self.KEEP:]
            data = "\n".join(f"{t:.3f}" for t in recent).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)
        with self._lock:
            self._recorded += 1
            prune = self._recorded % self.PRUNE_EVERY == 0
        if prune:
            self._prune(now)
        extra = max(0, len(recent) - FREE_FAILURES)
        return min(MAX_DELAY, self.base_delay * 2 ** min(extra, 16))

    def forget(self, address: str) -> None:
        with contextlib.suppress(OSError):
            self._path(address).unlink()

    def _prune(self, now: float) -> None:
        with contextlib.suppress(OSError), os.scandir(self.folder) as scan:
            for entry in scan:
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > FAILURE_WINDOW:
                        os.unlink(entry.path)


def _floats(text: str) -> list[float]:
    values = []
    for line in text.split():
        with contextlib.suppress(ValueError):
            values.append(float(line))
    return values
