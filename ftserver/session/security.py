"""Who may do what: the server's TLS context, its users and access levels, login throttling.

``prepare_security`` runs once in the listener (certificate, server secret);
``SessionSecurity`` is then built in every process that runs sessions, from the
config alone. Access levels: ``none`` may only log in, ``ro`` may list, stat and
get, ``rw`` may also do everything in ``common.protocol.messages.WRITE_OPS``.

An unknown user gets a decoy verifier derived from a server secret (stable salt
and the usual iteration count), so its login runs exactly like a wrong password
and fails the same way after the same delay. Failures from one address are
counted in ``state_dir/auth-failures`` (one small file per address, under a
file lock, so every worker process sees the same count) and each one beyond
``FREE_FAILURES`` within FAILURE_WINDOW doubles the delay, up to ``MAX_DELAY``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from common.io.tls import server_context
from common.protocol.errors import PermissionDenied
from common.protocol.requests import WRITE_OPS, AuthFinal, AuthStart, Hello
from common.protocol.scram import DEFAULT_ITERATIONS, Verifier
from ftserver.config import ServerConfig
from ftserver.net.tlscert import ensure_certificate
from ftserver.securityconfig import UserAccount

log = logging.getLogger("ftserver.security")

SECRET_NAME = "auth-secret"
FREE_FAILURES = 3
FAILURE_WINDOW = 600.0
MAX_DELAY = 30.0
LOGIN_OPS = frozenset({Hello.OP, AuthStart.OP, AuthFinal.OP})


def prepare_security(config: ServerConfig) -> ServerConfig:
    """In the listener, before any worker starts: certificate (if TLS) and the server secret."""
    if config.tls.enabled:
        config = ensure_certificate(config)
    _server_secret(Path(config.state_dir))
    return config


def _server_secret(state_dir: Path) -> bytes:
    path = state_dir / SECRET_NAME
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, secrets.token_bytes(32))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path.read_bytes()


@dataclass(frozen=True)
class Grant:
    """What a connection may do now."""

    access: str  # none, ro or rw
    user: str | None = None
    home: str = ""


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


class SessionSecurity:
    def __init__(self, config: ServerConfig) -> None:
        self.tls_context: ssl.SSLContext | None = None
        if config.tls.enabled:
            assert config.tls.cert is not None and config.tls.key is not None
            self.tls_context = server_context(str(config.tls.cert), str(config.tls.key))
        self.users = {account.name: account for account in config.users}
        self.anonymous = Grant(config.anonymous_access)
        self.throttle = FailureThrottle(Path(config.state_dir) / "auth-failures",
                                        config.limits.auth_failure_delay)
        self._secret = _server_secret(Path(config.state_dir))
        iterations = [account.verifier.iterations for account in config.users]
        self._decoy_iterations = (max(set(iterations), key=iterations.count)
                                  if iterations else DEFAULT_ITERATIONS)

    def verifier_for(self, name: str) -> tuple[UserAccount | None, Verifier]:
        """The user's account and verifier, or (None, a decoy that never matches)."""
        account = self.users.get(name)
        if account is not None:
            return account, account.verifier
        return None, Verifier(
            self._decoy_iterations,
            self._derive(b"salt", name)[:16],
            self._derive(b"stored", name),
            self._derive(b"server", name),
        )

    def _derive(self, purpose: bytes, name: str) -> bytes:
        return hmac.new(self._secret, purpose + b"\0" + name.encode(), hashlib.sha256).digest()

    @staticmethod
    def check_access(op: str, grant: Grant) -> None:
        """Raise PermissionDenied unless ``grant`` allows ``op``."""
        if op in LOGIN_OPS:
            return
        if grant.access == "none":
            raise PermissionDenied("this server needs a login: connect with --user NAME")
        if op in WRITE_OPS and grant.access != "rw":
            who = f"user {grant.user!r}" if grant.user else "anonymous access"
            raise PermissionDenied(f"{who} is read-only here: {op!r} is not allowed")
