"""Who may do what: the server's TLS context, its users and access levels, login throttling.

``prepare_security`` runs once in the listener (certificate, server secret);
``SessionSecurity`` is then built in every process that runs sessions, from the
config alone. Access levels: ``none`` may only log in, ``ro`` may list, stat and
get, ``rw`` may also do everything in ``common.protocol.messages.WRITE_OPS``.

An unknown user gets a decoy verifier derived from a server secret (stable salt
and the usual iteration count), so its login runs exactly like a wrong password
and fails the same way after the same delay; failures are counted and delayed
by ftserver/session/loginthrottle.py.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from common.io.tls import server_context
from common.protocol.errors import PermissionDenied
from common.protocol.requests import WRITE_OPS, AuthFinal, AuthStart, Hello
from common.protocol.scram import DEFAULT_ITERATIONS, Verifier
from ftserver.config import ServerConfig
from ftserver.net.tlscert import ensure_certificate
from ftserver.securityconfig import UserAccount
from ftserver.session.loginthrottle import FailureThrottle

log = logging.getLogger("ftserver.security")

SECRET_NAME = "auth-secret"
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


class SessionSecurity:
    def __init__(self, config: ServerConfig) -> None:
        self.tls_context: ssl.SSLContext | None = None
        if config.tls.enabled:
            assert config.tls.cert is not None and config.tls.key is not None
            self.tls_context = server_context(str(config.tls.cert), str(config.tls.key))
            if config.http.enabled:  # browsers, curl and wget say so: net/connection.py
                self.tls_context.set_alpn_protocols(["http/1.1"])
        self.users = {account.name: account for account in config.users}
        self.anonymous = Grant(config.anonymous_access)
        self.throttle = FailureThrottle(Path(config.state_dir) / "auth-failures",
                                        config.limits.auth_failure_delay)
        self._secret = _server_secret(Path(config.state_dir))
        self.state_dir = Path(config.state_dir)
        """Where the HTTP front end keeps its tus uploads' records (unguessable tokens)."""
        self.upload_ttl = config.partial_ttl
        """Seconds an untouched resumable upload (its partial, its tus URL) is kept."""
        self._iterations = sorted(account.verifier.iterations for account in config.users) \
            or [DEFAULT_ITERATIONS]
        if len(set(self._iterations)) > 1:
            log.warning("users' verifiers use %d different iteration counts: a login's "
                        "challenge can hint which names exist; make them all the same "
                        "(ftserver passwd --iterations)", len(set(self._iterations)))

    def verifier_for(self, name: str) -> tuple[UserAccount | None, Verifier]:
        """The user's account and verifier, or (None, a decoy that never matches).

        The decoy is derived for every name, known or not, so both cost the same
        HMACs. Its iteration count is one of the configured users' counts, drawn by
        the name's digest in proportion to how many users have it: an unusual count
        in a challenge does not by itself say that the name exists.
        """
        decoy = Verifier(
            self._decoy_iterations(name),
            self._derive(b"salt", name)[:16],
            self._derive(b"stored", name),
            self._derive(b"server", name),
        )
        account = self.users.get(name)
        if account is not None:
            return account, account.verifier
        return None, decoy

    def _decoy_iterations(self, name: str) -> int:
        pick = int.from_bytes(self._derive(b"iterations", name)[:8], "big")
        return self._iterations[pick % len(self._iterations)]

    def key_for(self, purpose: str) -> bytes:
        """A key of this server's own for ``purpose``, derived from its secret."""
        return self._derive(b"key", purpose)

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
