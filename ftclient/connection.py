"""``Connection``: one ft server's connection as the Client's requests use it.

It connects (waiting out "busy", TLS with pinning, the login), notices a server that
hung up between requests, drops a stream that can no longer be trusted, reads one
reply within a deadline, and runs each request under the retry policy (retry.py).
"""

from __future__ import annotations

import math
import os
import select
import socket
import time
from collections.abc import Callable
from typing import Self, TypeVar

from common.io.channel import Channel
from common.io.hashing import HASH_RATE_FLOOR
from common.io.ratelimit import Throttle, TokenBucket, parse_rate
from common.protocol.errors import (
    CLOSING_CODES,
    Busy,
    CannotConnect,
    ConnectionLost,
    ProtocolError,
    Timeout,
)
from common.protocol.replies import HelloReply, carried_error
from common.protocol.requests import PROTOCOL_VERSION, Hello
from ftclient.retry import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_DELAY,
    RetryCallback,
    check_retry_settings,
    run_with_retries,
)
from ftclient.secure import log_in, make_security, open_tls

DEFAULT_PORT = 9021
BUSY_BACKOFF = (0.2, 0.5, 1.0, 2.0, 3.0)
MAX_TIMEOUT = 1e9
"""Largest timeout in seconds (about 31 years): far longer ones overflow the socket layer."""
T = TypeVar("T")


def _hung_up(channel: Channel) -> bool:
    """True if a connection between requests has something to read: the server never
    speaks unasked there, so it is its goodbye (an idle timeout) or its hang-up."""
    if channel.decoder.buffered:
        return True
    pending = getattr(channel.sock, "pending", None)  # (a TLS socket's buffered bytes)
    if pending is not None and pending():
        return True
    try:
        readable, _, _ = select.select([channel.sock], [], [], 0)
    except (OSError, ValueError):  # closed under us
        return True
    return bool(readable)


class Connection:
    """A connection to one ft server, opened on demand and again after a cut."""

    def __init__(
        self,
        host: str = "localhost",
        port: int = DEFAULT_PORT,
        *,
        timeout: float = 60.0,
        busy_wait: float = 30.0,
        limit_rate: int | str = 0,
        retries: int = DEFAULT_RETRIES,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        tls: bool = False,
        fingerprint: str | None = None,
        accept_new: bool = False,
        known_servers: str | os.PathLike[str] | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> None:
        """``fingerprint`` (64 hex digits) or ``accept_new`` imply ``tls``; see ftclient.trust.

        ``user`` logs in by SCRAM-SHA-256 with ``password``, which never leaves this process.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
                math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            raise ValueError(f"timeout must be a number of seconds above 0 and at most "
                             f"{MAX_TIMEOUT:g}, not {timeout!r}")
        self.host = host
        self.port = port
        self.timeout = timeout
        self.busy_wait = busy_wait
        check_retry_settings(retries, retry_delay)
        self.retries = retries
        """How often a request tries again after a lost connection, a timeout or "busy"."""
        self.retry_delay = retry_delay
        self.server_name = ""
        self.access: str | None = None
        """After connecting with ``user``: "ro" or "rw", as the server granted."""
        self._channel: Channel | None = None
        rate = parse_rate(limit_rate)  # bytes/s for puts and gets together; 0: no limit
        self.throttle = Throttle(TokenBucket(rate) if rate else None)
        self.security = make_security(tls, fingerprint, accept_new, known_servers, user,
                                      password)

    def __enter__(self) -> Self:
        """Connect, retrying a lost connection as transfers do (self.retries); a refused
        one, or an unknown host, fails at once (retry.reason_to_retry)."""
        run_with_retries(self.connect, path=f"{self.host}:{self.port}", retries=self.retries,
                         first_delay=self.retry_delay, before_retry=self.drop, on_retry=None)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and greet; while the server answers "busy", wait and retry (up to busy_wait)."""
        deadline = time.monotonic() + self.busy_wait
        attempt = 0
        while True:
            try:
                self._open()
                return
            except Busy:
                self.close()
                delay = BUSY_BACKOFF[min(attempt, len(BUSY_BACKOFF) - 1)]
                attempt += 1
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)

    def _open(self) -> None:
        self.close()
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except TimeoutError:
            raise ConnectionLost(f"no answer from {self.host}:{self.port}") from None
        except ConnectionRefusedError:
            raise CannotConnect(f"cannot connect to {self.host}:{self.port}: connection "
                                "refused (is ftserver running there, on that port?)") from None
        except socket.gaierror as exc:
            raise CannotConnect(f"cannot connect to {self.host}:{self.port}: unknown host "
                                f"({exc.strerror or exc})") from None
        except OSError as exc:  # a reset on the way, no route for now...: worth a retry
            raise ConnectionLost(
                f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}"
            ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.security.tls:
            sock = open_tls(sock, self.host, self.port, self.security)
        channel = Channel(sock)
        self._channel = channel
        try:
            channel.send(Hello(PROTOCOL_VERSION, "ftclient/0.1.0").to_dict())
            reply = HelloReply.from_dict(channel.receive(time.monotonic() + self.timeout))
            if self.security.user is not None:
                self.access = log_in(channel, self.security.user, self.security.password or "")
        except BaseException:
            self.close()
            raise
        self.server_name = reply.name

    def close(self) -> None:
        if self._channel is not None:
            try:
                self._channel.sock.close()
            finally:
                self._channel = None

    def channel(self) -> Channel:
        if self._channel is not None and _hung_up(self._channel):
            # Whatever goes out on it now is lost unread: a move or remove sent there
            # would be reported as of unknown outcome, though the server never saw it.
            self.drop()
        if self._channel is None:
            self.connect()
        assert self._channel is not None
        return self._channel

    def drop(self) -> None:
        """Forget a connection whose byte stream can no longer be trusted."""
        self.close()

    def retrying(self, action: Callable[[], T], path: str,
                  on_retry: RetryCallback | None) -> T:
        """``action`` under the retry policy of put and get; ``on_retry`` hears of each retry."""
        result, _ = run_with_retries(action, path=path, retries=self.retries,
                                     first_delay=self.retry_delay, before_retry=self.drop,
                                     on_retry=on_retry)
        return result

    def reply(self, cls: type, channel: Channel,  # noqa: ANN202 - returns an instance of cls
               deadline: float | None = None):
        """Receive and parse one reply; ``deadline`` (monotonic, by default ``timeout``
        from now) bounds the whole frame, so a server dripping a byte now and then
        cannot hold the client past it.

        An error reply is raised as its FtError. The connection stays for the next
        request, as the protocol says, unless the code is one after which the server
        hangs up (CLOSING_CODES). A cut, a deadline passed or a reply that is not ft
        protocol drops it: the byte stream can no longer be trusted.
        """
        if deadline is None:
            deadline = time.monotonic() + self.timeout
        try:
            frame = channel.receive(deadline)
            error = carried_error(frame)
            if error is None:
                return cls.from_dict(frame)
        except (ConnectionLost, Timeout, ProtocolError):
            self.drop()
            raise
        finally:
            if self._channel is channel:
                channel.sock.settimeout(self.timeout)  # receive(deadline) left its own
        if error.code in CLOSING_CODES:
            self.drop()
        raise error

    def deadline_after(self, work: int) -> float:
        """When to give up on a reply the server sends after reading or flushing ``work`` bytes."""
        return time.monotonic() + self.timeout + work / HASH_RATE_FLOOR
