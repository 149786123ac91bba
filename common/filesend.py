"""Send a range of an open file over a Channel while computing its SHA-256.

Both senders use it: the server for a ``get`` and the client for a ``put``. On a
plain TCP socket the bytes go by sendfile(2), zero-copy, while a second thread
reads the same range through the page cache and hashes it. A socket that cannot
sendfile (a TLS socket encrypts in user space) gets the copying loop instead:
read a buffer, send it, and hash it on the HashPipe's thread.

Either way the digest covers bytes read from the file, not the bytes that went
out, so callers still compare the file's size, mtime and ctime before and after
(``content_stamp``) and refuse the transfer if it changed: then the two reads
may differ and nothing is published.
"""

from __future__ import annotations

import errno
import hashlib
import os
import select
import socket
import ssl
import threading
from collections.abc import Callable

from common.channel import Channel
from common.errors import ConnectionLost, SourceChanged
from common.hashpipe import BUFFER_SIZE, HashPipe
from common.ratelimit import UNLIMITED, Throttle
from common.spans import Span

SENDFILE_CALL = 1024 * 1024
"""Most bytes asked of one sendfile(2) call: a thousand calls a GiB cost nothing, and
progress is reported at least every MiB."""

MAX_LEAD = 32 * 1024 * 1024
"""How far the hashing read may run ahead of sendfile, or fall behind it."""

SOCKET_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ECONNABORTED, errno.ENOTCONN,
                           errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH,
                           errno.ENETDOWN, errno.ENETRESET, errno.EBADF})
"""sendfile(2) failures that come from the socket; any other comes from the file."""

SENDING_TOO_SLOW = "the other side is reading too slowly"

SentCallback = Callable[[int], None]
"""Told the file position reached after each piece that went out."""


def can_sendfile(sock: socket.socket) -> bool:
    """True when the kernel can copy file bytes straight into ``sock`` (plain TCP only)."""
    return isinstance(sock, socket.socket) and not isinstance(sock, ssl.SSLSocket)


def send_file_hashed(
    channel: Channel, fd: int, offset: int, count: int, hasher: hashlib._Hash,
    timeout: float | None, on_sent: SentCallback | None = None,
    throttle: Throttle = UNLIMITED,
) -> str:
    """Send ``count`` bytes of ``fd`` from ``offset``; return the hex SHA-256.

    ``hasher`` already holds the bytes before ``offset`` (a verified resume prefix)
    or nothing. ``timeout`` bounds each DEADLINE_SPAN of bytes (None: no bound), on
    either path.
    Raises SourceChanged if the file ends early, ConnectionLost or Timeout if the
    socket fails, OSError if the file cannot be read. A range of one buffer or less
    is simply copied: a hashing thread would cost more than it saves.
    """
    if count > BUFFER_SIZE and can_sendfile(channel.sock):
        return _sendfile_hashed(channel.sock, fd, offset, count, hasher, timeout, on_sent,
                                throttle)
    return _copy_hashed(channel, fd, offset, count, hasher, timeout, on_sent, throttle)


def _copy_hashed(channel: Channel, fd: int, offset: int, count: int, hasher: hashlib._Hash,
                 timeout: float | None, on_sent: SentCallback | None,
                 throttle: Throttle = UNLIMITED) -> str:
    """Read a buffer, send it, hash it on the pipe's thread; each span within ``timeout``.

    The socket's timeout is lowered to what is left of the span before each send, so
    a peer that reads a few bytes now and then cannot keep one sendall going (TLS
    restarts the socket's timeout at every record it manages to write).
    """
    with Span(channel.sock, timeout, SENDING_TOO_SLOW) as span, \
            HashPipe(hasher, expected=count) as pipe:
        position, end = offset, offset + count
        step = throttle.chunk_size(pipe.buffer_size)
        while position < end:
            span.reached(position)
            buffer = pipe.buffer()
            got = os.preadv(fd, [buffer[: min(end - position, step)]], position)
            if got == 0:
                raise SourceChanged("the file shrank while it was sent")
            span.deadline += throttle.wait(got)
            span.arm()
            channel.send_raw(buffer[:got])
            pipe.submit(buffer, got)
            position += got
            if on_sent:
                on_sent(position)
        return pipe.hexdigest()


class _RangeHasher:
    """Hash ``count`` bytes of ``fd`` from ``offset`` on a thread, reading by pread.

    It keeps within MAX_LEAD bytes of the sendfile position, ahead or behind, so
    that the second read of each byte finds it in the page cache: a file larger
    than memory is still read from disk once, not twice.
    """

    def __init__(self, fd: int, offset: int, count: int, hasher: hashlib._Hash) -> None:
        self.fd, self.offset, self.count, self.hasher = fd, offset, count, hasher
        self.error: BaseException | None = None
        self.cancelled = False
        self.hashed = self.sent = offset
        self.moved = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="ft-hash-file", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            view = memoryview(bytearray(min(BUFFER_SIZE, self.count)))
            position, end = self.offset, self.offset + self.count
            while position < end:
                with self.moved:
                    while position - self.sent > MAX_LEAD and not self.cancelled:
                        self.moved.wait()
                    if self.cancelled:
                        return
                got = os.preadv(self.fd, [view[: min(end - position, len(view))]], position)
                if got == 0:
                    raise SourceChanged("the file shrank while it was sent")
                self.hasher.update(view[:got])
                position += got
                with self.moved:
                    self.hashed = position
                    self.moved.notify_all()
        except BaseException as exc:
            self.error = exc
        finally:
            with self.moved:
                self.hashed = self.offset + self.count  # nobody need wait for this thread
                self.moved.notify_all()

    def sent_up_to(self, position: int) -> None:
        """The sender reached ``position``; wait while it is MAX_LEAD ahead of the hash."""
        with self.moved:
            self.sent = position
            self.moved.notify_all()
            while position - self.hashed > MAX_LEAD:
                self.moved.wait()

    def stop(self) -> None:
        with self.moved:
            self.cancelled = True
            self.moved.notify_all()
        self.thread.join()

    def hexdigest(self) -> str:
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.hasher.hexdigest()


def _sendfile_hashed(sock: socket.socket, fd: int, offset: int, count: int,
                     hasher: hashlib._Hash, timeout: float | None,
                     on_sent: SentCallback | None, throttle: Throttle = UNLIMITED) -> str:
    reader = _RangeHasher(fd, offset, count, hasher)

    def sent(position: int) -> None:
        reader.sent_up_to(position)
        if on_sent:
            on_sent(position)

    try:
        sendfile_range(sock, fd, offset, count, timeout, sent, throttle)
    except BaseException:
        reader.stop()
        raise
    return reader.hexdigest()


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
