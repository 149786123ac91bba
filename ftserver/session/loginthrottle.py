"""How long a failed login waits before its answer: failures counted across worker processes.

Each failure is counted twice, for the address it came from and for the user it
named, each in a small file in ``state_dir/auth-failures`` under a file lock,
so every worker process sees the same counts. Each failure beyond
``FREE_FAILURES`` within FAILURE_WINDOW, on the larger of the two counts,
doubles the delay, up to ``MAX_DELAY``: a guesser is slowed down from one
address against many users, and from many addresses against one user.

A successful login as user U from address A forgets only the failures that
named U *and* came from A (her own typing errors). It never clears what other
logins from that address, or against that user from elsewhere, have earned, so
an attacker who logs in with an account of their own between guesses gains
nothing by it.
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
    """Failed logins in the last FAILURE_WINDOW seconds per address and per user, and their delay.

    Files are named by a digest of ``a:ADDRESS`` or ``u:USER`` and hold one line per
    failure: its time and a short digest of the other half of the pair, so a success
    can take back exactly its own pair's failures. Files quiet for FAILURE_WINDOW
    are pruned.
    """

    KEEP = 64
    PRUNE_EVERY = 64

    def __init__(self, folder: Path, base_delay: float) -> None:
        self.folder = folder
        self.base_delay = base_delay
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._recorded = 0
        self._lock = threading.Lock()

    def record_failure(self, address: str, user: str) -> float:
        """Count a failed login as ``user`` from ``address``; return how long to wait."""
        now = time.time()
        try:
            by_address = self._update(_key("a", address), now, add=_tag(user))
            by_user = self._update(_key("u", user), now, add=_tag(address))
        except OSError as exc:
            log.warning("cannot count failed logins: %s", exc)
            return min(MAX_DELAY, self.base_delay * 2)
        with self._lock:
            self._recorded += 1
            prune = self._recorded % self.PRUNE_EVERY == 0
        if prune:
            self._prune(now)
        extra = max(0, max(by_address, by_user) - FREE_FAILURES)
        return min(MAX_DELAY, self.base_delay * 2 ** min(extra, 16))

    def forget(self, address: str, user: str) -> None:
        """After a successful login: forget the failures of this address for this user only."""
        now = time.time()
        try:
            self._update(_key("a", address), now, drop=_tag(user))
            self._update(_key("u", user), now, drop=_tag(address))
        except OSError as exc:
            log.warning("cannot update failed-login counts: %s", exc)

    def _update(self, key: str, now: float, add: str | None = None,
                drop: str | None = None) -> int:
        """Rewrite one file: recent failures kept, ``add`` counted, ``drop``'s taken back.

        Returns how many recent failures the file holds afterwards."""
        path = self.folder / key
        if add is None and not path.exists():
            return 0
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            text = os.pread(fd, 1 << 14, 0).decode("ascii", "replace")
            recent = [(t, tag) for t, tag in _records(text)
                      if 0 <= now - t < FAILURE_WINDOW and tag != drop]
            if add is not None:
                recent = (recent + [(now, add)])[-self.KEEP:]
            data = "".join(f"{t:.3f} {tag}\n" for t, tag in recent).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)
        return len(recent)

    def _prune(self, now: float) -> None:
        with contextlib.suppress(OSError), os.scandir(self.folder) as scan:
            for entry in scan:
                with contextlib.suppress(OSError):
                    if now - entry.stat().st_mtime > FAILURE_WINDOW:
                        os.unlink(entry.path)


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:32]


def _tag(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def _records(text: str) -> list[tuple[float, str]]:
    """The (time, tag) lines of a file; lines of an older format (a time alone) count too."""
    values = []
    for line in text.splitlines():
        parts = line.split()
        with contextlib.suppress(ValueError, IndexError):
            values.append((float(parts[0]), parts[1] if len(parts) > 1 else ""))
    return values
