"""The UDP discovery responder: answers ``ftclient discover`` queries with this server's address.

A thread of the listener process, started and stopped by the listener. It
answers only valid queries (common/protocol/discovery.py), with a reply no larger than
the query, and within a budget per source address and in total, so that it can
be neither an amplifier nor a flood source. Anything else is dropped with a
debug line. It never reads the share or the state folder.

Which sockets it binds follows the TCP listener's ``host``, so that it is found
exactly where the service can be reached:

- every address (``0.0.0.0``, ``::``): one socket on 0.0.0.0, for broadcasts and
  direct queries alike;
- a loopback address: that address and the loopback broadcast 127.255.255.255,
  so nothing outside this machine can see it;
- another IPv4 address: that address and the limited broadcast 255.255.255.255;
- another IPv6 address: none (broadcast discovery is IPv4 only); a line says so.

All sockets use SO_REUSEADDR, so several servers on one machine can each answer
broadcasts on the same port.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from collections.abc import Callable

from common.io.ratelimit import TokenBucket
from common.protocol.discovery import Announcement, DiscoveryError, encode_reply, parse_query

log = logging.getLogger("ftserver.discovery")

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
LOOPBACK_BROADCAST = "127.255.255.255"
LIMITED_BROADCAST = "255.255.255.255"
REPLIES_PER_ADDRESS = 2
"""Replies per second to one source address (a burst of twice as many is allowed)."""
REPLIES_TOTAL = 50
"""Replies per second in all, whatever the source addresses claim to be."""
MAX_TRACKED_ADDRESSES = 1024
RECEIVE_SIZE = 2048


def announced_host(host: str) -> str | None:
    """The host a reply names: None (use the reply's source) when listening everywhere."""
    return None if host in WILDCARD_HOSTS else host


def bind_addresses(host: str) -> list[str]:
    """The local addresses the responder binds for a TCP listener on ``host``."""
    if host in WILDCARD_HOSTS:
        return ["0.0.0.0"]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:  # a host name: resolve it as the listener did
        try:
            address = ipaddress.ip_address(socket.gethostbyname(host))
        except (OSError, ValueError):
            return []
    if address.version != 4:
        return []
    if address.is_loopback:
        return [str(address), LOOPBACK_BROADCAST]
    return [str(address), LIMITED_BROADCAST]


class DiscoveryResponder:
    """Binds at construction (errors surface at start-up); ``start``, then ``stop``."""

    def __init__(self, host: str, port: int, announce: Callable[[], Announcement]) -> None:
        self.announce = announce
        self.sockets: list[socket.socket] = []
        try:
            for address in bind_addresses(host):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                self.sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((address, port))
                sock.setblocking(False)
        except OSError:
            self._close_sockets()
            raise
        self._loopback_only = bool(self.sockets) and all(
            ipaddress.ip_address(s.getsockname()[0]).is_loopback for s in self.sockets)
        self._per_address: dict[str, TokenBucket] = {}
        self._total = TokenBucket(REPLIES_TOTAL, burst=REPLIES_TOTAL)
        self._wake_r, self._wake_w = socket.socketpair()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="discovery", daemon=True)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [sock.getsockname()[:2] for sock in self.sockets]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._close_sockets()
        self._wake_r.close()
        self._wake_w.close()

    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            for sock in self.sockets:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        continue
                    try:
                        self._serve_one(key.fileobj)  # type: ignore[arg-type]
                    except Exception:  # a bug here must not end discovery for good
                        log.exception("discovery: internal error answering a query")

    def _serve_one(self, sock: socket.socket) -> None:
        try:
            data, source = sock.recvfrom(RECEIVE_SIZE)
        except OSError:  # nothing after all, or an ICMP error from an earlier reply
            return
        try:
            parse_query(data)
            self._check_source(source[0])
            reply = encode_reply(self.announce(), len(data))
        except DiscoveryError as exc:
            log.debug("discovery: ignored %d bytes from %s: %s", len(data), source[0], exc)
            return
        if not self._within_budget(source[0]):
            log.debug("discovery: over the reply budget, not answering %s", source[0])
            return
        try:
            sock.sendto(reply, source)
        except OSError as exc:
            log.debug("discovery: could not answer %s: %s", source[0], exc)

    def _check_source(self, address: str) -> None:
        if self._loopback_only and not ipaddress.ip_address(address).is_loopback:
            raise DiscoveryError("a loopback-only server answers only this machine")

    def _within_budget(self, address: str) -> bool:
        bucket = self._per_address.get(address)
        if bucket is None:
            if len(self._per_address) >= MAX_TRACKED_ADDRESSES:
                self._per_address.clear()  # the total budget still bounds a spoofing flood
            bucket = TokenBucket(REPLIES_PER_ADDRESS, burst=2 * REPLIES_PER_ADDRESS)
            self._per_address[address] = bucket
        return bucket.try_take() and self._total.try_take()


def start_responder(
    host: str, port: int, announce: Callable[[], Announcement]
) -> DiscoveryResponder | None:
    """Bind the responder, or log why discovery is off and return None (never fatal)."""
    try:
        responder = DiscoveryResponder(host, port, announce)
    except OSError as exc:
        log.warning("discovery is off: cannot use UDP port %d: %s", port, exc.strerror or exc)
        return None
    if not responder.sockets:
        log.info("discovery is off: it works over IPv4 broadcast, and %s is not an IPv4 "
                 "address", host)
        responder.stop()
        return None
    return responder
