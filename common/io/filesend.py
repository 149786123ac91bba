"""Send a range of an open file over a Channel, alone or while computing its SHA-256.

Both senders use it: the server for a ``get`` and the client for a ``put``. A
sender that must hash (``send_file_hashed``) reads each buffer once, hashes it and
sends it, all on the calling thread, plain TCP or TLS alike. A sender that already
knows the digest (the server, from its hash cache) uses ``send_file``: sendfile(2),
zero-copy, on a plain TCP socket, and the same copying loop minus the hash on TLS.

Why one thread and no sendfile when hashing: measured on loopback (1 GiB put, 2
cores), sendfile plus a second thread hashing the same range through the page
cache cost the client 1.6-1.9 s of CPU; reading 256 KiB, hashing it and sending it
while it is still in the core's cache costs 1.2-1.3 s, and the server's receiving
thread spends about 0.4 s less in the kernel copying bytes that are still in cache.
At 1.2-1.3 s of CPU a GiB, one core still sends about 0.8 GB/s: several times what
an office's 1 Gb/s LAN carries.

Hashing through a memory map of the file and then sending with sendfile (no
copy into user space at all) was tried too, on the client's put: with the real
client and server (1 GiB, alternated with this loop, 16 runs each at load 3-6 and
6 each at load 0.6-2.4; medians) the client saved 0.08-0.16 s a GiB, the server's
receive cost 0.23-0.51 s more, and puts were no faster. A map would also let a
file truncated under it kill the process (SIGBUS).

Either way the digest covers bytes read from the file, not the bytes that went
out, so callers still compare the file's size, mtime and ctime before and after
(``content_stamp``) and refuse the transfer if it changed.
"""

from __future__ import annotations

import errno
import hashlib
import os
import select
import socket
import sys
from collections.abc import Callable

from common.io.channel import Channel
from common.io.ratelimit import UNLIMITED, Throttle
from common.io.spans import Span
from common.protocol.errors import ConnectionLost, SourceChanged

SEND_BUFFER = 256 * 1024
"""Bytes read, hashed and sent per step by a hashing sender: small enough to stay in
the core's cache from the read to the send, large enough that Python's cost per
step is lost next to hashing it."""
SENDFILE_CALL = 1024 * 1024
"""Most bytes asked of one sendfile(2) call: a thousand calls a GiB cost nothing, and
progress is reported at least every MiB."""

SOCKET_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN,
                           errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH,
                           errno.ENETDOWN, errno.ENETRESET, errno.EBADF})
"""sendfile(2) failures that come from the socket; any other comes from the file."""

SENDING_TOO_SLOW = "the other side is reading too slowly"

SentCallback = Callable[[int], None]
"""Told the file position reached after each piece that went out."""


def can_sendfile(sock: socket.socket) -> bool:
    """True when the kernel can copy file bytes straight into ``sock`` (plain TCP only)."""
    # No TLS socket can exist before ssl is imported: a plaintext client never imports it.
    tls = sys.modules.get("ssl")
    return isinstance(sock, socket.socket) and not (
        tls is not None and isinstance(sock, tls.SSLSocket))


def send_file_hashed(
    channel: Channel, fd: int, offset: int, count: int, hasher: hashlib._Hash,
    timeout: float | None, on_sent: SentCallback | None = None,
    throttle: Throttle = UNLIMITED,
) -> str:
    """Send ``count`` bytes of ``fd`` from ``offset``; return the hex SHA-256.

    ``hasher`` already holds the bytes before ``offset`` (a verified resume prefix)
    or nothing. ``timeout`` bounds each DEADLINE_SPAN of bytes (None: no bound): the
    socket's timeout is lowered to what is left of the span before each send, so a
    peer that takes a few bytes now and then cannot stretch the transfer by letting
    each send finish just within the socket's own timeout. Raises
    SourceChanged if the file ends early, ConnectionLost or Timeout if the socket
    fails, OSError if the file cannot be read.
    """
    _copy_range(channel, fd, offset, count, timeout, on_sent, throttle, hasher)
    return hasher.hexdigest()


def send_file(
    channel: Channel, fd: int, offset: int, count: int, timeout: float | None,
    on_sent: SentCallback | None = None, throttle: Throttle = UNLIMITED,
) -> None:
    """Send ``count`` bytes of ``fd`` from ``offset`` whose digest is already known.

    sendfile(2) on a plain TCP socket; on TLS, the copying loop without the hash
    (the receiver still checks every byte against the digest it is given).
    ``timeout`` and the errors are as for ``send_file_hashed``.
    """
    if can_sendfile(channel.sock):
        sendfile_range(channel.sock, fd, offset, count, timeout, on_sent, throttle)
    else:
        _copy_range(channel, fd, offset, count, timeout, on_sent, throttle, None)


def _copy_range(channel: Channel, fd: int, offset: int, count: int, timeout: float | None,
                on_sent: SentCallback | None, throttle: Throttle,
                hasher: hashlib._Hash | None) -> None:
    """Read a buffer, feed it to ``hasher`` (if any), send it; each span within ``timeout``."""
    buffer = memoryview(bytearray(min(SEND_BUFFER, count)))
    step = throttle.chunk_size(SEND_BUFFER)
    position, end = offset, offset + count
    with Span(channel.sock, timeout, SENDING_TOO_SLOW) as span:
        while position < end:
            span.reached(position)
            got = os.preadv(fd, [buffer[: min(end - position, step)]], position)
            if got == 0:
                raise SourceChanged("the file shrank while it was sent")
            piece = buffer[:got]
            if hasher is not None:
                hasher.update(piece)
            span.deadline += throttle.wait(got)
            span.arm()
            channel.send_raw(piece)
            position += got
            if on_sent:
                on_sent(position)


def sendfile_range(sock: socket.socket, fd: int, offset: int, count: int,
                   timeout: float | None, on_sent: SentCallback | None = None,
                   throttle: Throttle = UNLIMITED) -> None:
    """Send ``count`` bytes of ``fd`` from ``offset`` with sendfile(2), zero-copy.

    Each DEADLINE_SPAN must leave within ``timeout``: a peer reading a byte now and
    then cannot hold the connection (socket.sendfile would restart its timeout on
    every wait). With ``timeout`` None the socket is blocking and so is each call.
    Under a ``throttle`` each step is paid for before it is sent, and the wait is
    added to the span's deadline: our own pacing is not the peer's slowness.
    """
    step = throttle.chunk_size(SENDFILE_CALL)
    paid_until = offset
    position, end = offset, offset + count
    span = Span(sock, timeout, SENDING_TOO_SLOW)  # its deadline only: poll waits, not sends
    poller = select.poll()  # not select(): it fails for descriptors >= 1024
    poller.register(sock, select.POLLOUT)
    while position < end:
        span.reached(position)
        span.left()  # raises once the span's time is up
        if position >= paid_until:
            paid_until = position + min(end - position, step)
            span.deadline += throttle.wait(paid_until - position)
        try:
            sent = os.sendfile(sock.fileno(), fd, position, paid_until - position)
        except BlockingIOError:
            left = span.left()
            poller.poll(None if left is None else left * 1000)
            continue
        except OSError as exc:
            if exc.errno not in SOCKET_ERRNOS:
                raise  # the file failed (EIO, say): the caller reports it as a disk error
            raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None
        if sent == 0:
            raise SourceChanged("the file shrank while it was sent")
        position += sent
        if on_sent:
            on_sent(position)
