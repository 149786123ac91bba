"""The server's side of one SCRAM-SHA-256 login inside a session: auth, auth_final, verdict.

The password never reaches the server; it checks the client's proof against the
stored verifier. A known user with a wrong password and an unknown user (run
against a decoy verifier) take the same steps, get the same ``auth_failed``
answer, and wait the same throttled delay before it.
"""

from __future__ import annotations

import logging
import time

from common.io.channel import Channel
from common.protocol.conversation import OK, Conversation
from common.protocol.errors import AuthFailed, ProtocolError
from common.protocol.replies import AuthChallenge, AuthDone
from common.protocol.requests import AuthFinal, AuthStart
from common.protocol.scram import ScramServer, parse_client_first
from ftserver.session.expect import expect_next
from ftserver.session.security import Grant, SessionSecurity

log = logging.getLogger("ftserver.login")

FAILED = "login failed: unknown user or wrong password"


def run_login(channel: Channel, talk: Conversation, security: SessionSecurity,
              start: AuthStart, peer: str, timeout: float) -> tuple[Grant, AuthDone]:
    """Answer ``start``, read the proof (within ``timeout``); return the grant and the reply.

    The caller sends the AuthDone reply once it has set the session up for the
    grant (its home folder), so a failure there is the login's only answer.
    Raises AuthFailed after the throttle's delay, or ProtocolError for a malformed exchange.
    """
    address = peer.rsplit(":", 1)[0]  # throttled by address; logged with the port, which
    # ties the login to the transfer lines of the same connection
    first = parse_client_first(start.message)
    account, verifier = security.verifier_for(first.user)
    exchange = ScramServer(first, verifier)
    channel.send(AuthChallenge(exchange.server_first).to_dict())
    talk.reply(OK)
    try:
        final = expect_next(channel, talk, AuthFinal, timeout)
        accepted, server_final = exchange.finish(final.message)
    except ProtocolError as exc:
        # A malformed proof tests no password, but it is counted, logged and delayed as a
        # failure all the same: nothing about a login attempt is free.
        _fail(security, address, peer, first.user, f"malformed auth_final ({exc})")
        raise
    if not accepted or account is None:
        _fail(security, address, peer, first.user, "failed login")
        raise AuthFailed(FAILED)
    security.throttle.forget(address, account.name)
    log.info("%s: logged in as %r (%s)", peer, account.name, account.access)
    return Grant(account.access, account.name, account.home), AuthDone(server_final,
                                                                       account.access)


def _fail(security: SessionSecurity, address: str, peer: str, user: str, what: str) -> None:
    """Count a failed attempt for ``address`` and ``user``, log it, and wait its delay."""
    delay = security.throttle.record_failure(address, user)
    log.warning("%s: %s as %r; answering in %.1f s", peer, what, user[:64], delay)
    time.sleep(delay)
