"""Find ft servers on the LAN: broadcast a discovery query over UDP and collect the replies.

A library function, quiet like ``Client``: it returns what answered and raises
``ConnectionLost`` when the query cannot be sent at all. Replies are validated
(common/protocol/discovery.py) and anything malformed is ignored, so a hostile host on
the LAN can at worst add a bogus entry, never crash the client. The wire format
lives in common/protocol/discovery.py; the server side is ftserver/net/discovery.py.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from dataclasses import dataclass

from common.protocol.discovery import (
    DEFAULT_DISCOVERY_PORT,
    DiscoveryError,
    encode_query,
    parse_reply,
)
from common.protocol.errors import ConnectionLost

DEFAULT_BROADCAST = "255.255.255.255"
SENDS = 3
"""The query goes out this many times, spread over the first half of the wait (UDP may drop)."""
MAX_SERVERS = 256
MAX_PER_SENDER = 16
"""Servers taken from one sending address: a host that answers first with hundreds of
bogus servers cannot crowd out the others' answers."""


@dataclass(frozen=True)
class FoundServer:
    """One server that answered: where to reach it and how to trust it."""

    name: str
    host: str
    port: int
    tls: bool
    fingerprint: str | None


def discover(
    broadcast: str = DEFAULT_BROADCAST, port: int = DEFAULT_DISCOVERY_PORT,
    timeout: float = 2.0,
) -> list[FoundServer]:
    """Ask every server reachable at ``broadcast`` (or one address) and wait ``timeout`` s.

    Returns the servers found, sorted by name and address, each listed once.
    """
    query = encode_query()
    found: dict[tuple[str, int], FoundServer] = {}
    per_sender: dict[str, int] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            selectors.DefaultSelector() as selector:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        started = time.monotonic()
        deadline = started + timeout
        send_times = [started + i * timeout / (2 * SENDS) for i in range(SENDS)]
        while (now := time.monotonic()) < deadline:
            if send_times and send_times[0] <= now:
                send_times.pop(0)
                _send(sock, query, broadcast, port)
            wake = min([deadline, *send_times[:1]])
            for _ in selector.select(max(0.0, wake - time.monotonic())):
                _collect(sock, found, per_sender)
    return sorted(found.values(), key=lambda s: (s.name, s.host, s.port))


def _send(sock: socket.socket, query: bytes, broadcast: str, port: int) -> None:
    try:
        sock.sendto(query, (broadcast, port))
    except socket.gaierror as exc:
        raise ConnectionLost(f"cannot resolve {broadcast!r}: {exc.strerror or exc}") from None
    except OSError as exc:
        raise ConnectionLost(f"cannot send the discovery query to {broadcast}:{port}: "
                             f"{exc.strerror or exc}") from None


def _collect(sock: socket.socket, found: dict[tuple[str, int], FoundServer],
             per_sender: dict[str, int]) -> None:
    for _ in range(MAX_SERVERS):  # bounded: a flood of datagrams cannot hold us here
        try:
            data, source = sock.recvfrom(2048)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # an ICMP "port unreachable" from a host without a server
            continue
        with contextlib.suppress(DiscoveryError):
            reply = parse_reply(data)
            host = reply.host or source[0]
            key = (host, reply.port)
            if key in found or len(found) >= MAX_SERVERS:
                continue
            if per_sender.get(source[0], 0) >= MAX_PER_SENDER:
                continue
            per_sender[source[0]] = per_sender.get(source[0], 0) + 1
            found[key] = FoundServer(reply.name, host, reply.port, reply.tls,
                                     reply.fingerprint)
