"""Logins over HTTPS: HTTP Basic checked against the users' SCRAM verifiers.

Over TLS a browser or curl sends the password itself; it is checked against the
stored verifier (salted with PBKDF2, ClientKey, StoredKey), never stored. An
unknown name runs against the same decoy verifier as ft's own login, so both cost
the same, and every failure is counted and delayed by the same throttle
(ftserver/session/loginthrottle.py). Browsers send the header with every request:
a success is remembered for a while in this process, keyed by an HMAC of the header
under the server's secret, so the password's hash is not recomputed per request and
is never kept in the clear.

Over plain HTTP nothing here runs: no password is asked for or accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import threading
import time

from common.protocol.errors import AuthFailed, ProtocolError
from common.protocol.scram import USER_NAME, password_matches
from ftserver.session.security import Grant, SessionSecurity

log = logging.getLogger("ftserver.login")

REMEMBER_FOR = 300.0
"""Seconds a checked Authorization header is taken without checking it again."""
MAX_REMEMBERED = 1024
FAILED = "login failed: unknown user or wrong password"


class BasicLogins:
    """The logins one process has checked recently; shared by its HTTP sessions."""

    def __init__(self, security: SessionSecurity) -> None:
        self.security = security
        self._key = security.key_for("basic-login-cache")
        self._lock = threading.Lock()
        self._known: dict[bytes, tuple[float, Grant]] = {}

    def grant_for(self, authorization: str, address: str) -> Grant:
        """The grant an ``Authorization: Basic`` header earns; AuthFailed (after the
        throttle's delay) if it earns none, ProtocolError if it is not Basic."""
        tag = hmac.new(self._key, authorization.encode("latin-1", "replace"),
                       hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            known = self._known.get(tag)
            if known is not None and known[0] > now:
                return known[1]
        user, password = _parse_basic(authorization)
        account, verifier = self.security.verifier_for(user)
        matches = password_matches(verifier, password)
        if account is None or not matches:
            delay = self.security.throttle.record_failure(address, user)
            log.warning("%s: failed HTTP login as %r; answering in %.1f s", address,
                        user[:64], delay)
            time.sleep(delay)
            raise AuthFailed(FAILED)
        self.security.throttle.forget(address, account.name)
        grant = Grant(account.access, account.name, account.home)
        with self._lock:
            if len(self._known) >= MAX_REMEMBERED:
                self._known.clear()
            self._known[tag] = (now + REMEMBER_FOR, grant)
        log.info("%s: logged in over HTTPS as %r (%s)", address, account.name, account.access)
        return grant


def _parse_basic(authorization: str) -> tuple[str, str]:
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        raise ProtocolError("only HTTP Basic logins are taken (over HTTPS)")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise ProtocolError("the Authorization header is not valid Basic") from None
    user, colon, password = decoded.partition(":")
    if not colon or not USER_NAME.match(user):
        raise ProtocolError("the Authorization header holds no valid user name")
    return user, password
