"""Wait until the bytes already handed to the kernel have reached the other side.

``sendall`` returns when the last byte is in the socket's send queue, which on a
slow link can hold megabytes. A client that starts its reply deadline right then
gives up on a server that has not even received the data yet. ``wait_until_sent``
watches the queue (SIOCOUTQ: bytes not yet acknowledged by the peer) and returns
once it is empty; it fails only if the queue stops shrinking for ``timeout``
seconds, so a slow but moving link is never cut. It also returns as soon as the
socket turns readable or fails: a reply (or a reset) is there to be read, and a
queue on a reset connection never drains. Linux only; elsewhere (or on a
socket that cannot tell) it returns at once, as before.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import time

from common.protocol.errors import Timeout

POLL_FIRST = 0.001
POLL_MAX = 0.05


def unacknowledged_bytes(sock: socket.socket) -> int | None:
    """Bytes in ``sock``'s send queue not yet acknowledged by the peer, or None if unknown."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except (OSError, ValueError):
        return None
    return struct.unpack("i", raw)[0]


def wait_until_sent(sock: socket.socket, timeout: float) -> None:
    """Return once the send queue is empty; raise Timeout if it stalls for ``timeout`` s."""
    left = unacknowledged_bytes(sock)
    if not left:
        return
    stalled_since = time.monotonic()
    pause = POLL_FIRST
    poller = select.poll()  # not select(): it fails for descriptors >= 1024
    poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    while True:
        if poller.poll(pause * 1000):
            return
        pause = min(pause * 2, POLL_MAX)
        now_left = unacknowledged_bytes(sock)
        if not now_left:
            return
        now = time.monotonic()
        if now_left < left:
            left, stalled_since = now_left, now
        elif now - stalled_since > timeout:
            raise Timeout(f"the server stopped receiving with {left} bytes still on their way")
