"""Receive a file's raw bytes from a Channel into the caller's writer, hashing on a thread.

Both receivers use it: the server for a ``put`` and the client for a ``get``. It is
the init_recv loop: it counts received bytes against the announced size, reads
with recv_into straight into preallocated buffers (a HashPipe's), hands each
filled buffer to the writer, then to the hashing thread. Memory stays at the
pipe's few buffers however large the file.

splice(2) (socket -> pipe -> file, hashing from a map of what was written) was
measured against this loop in a two-process prototype (1 GiB over loopback, 6
alternated runs, load 3.1-3.8): the receiver's CPU fell from 2.05-2.36 s a GiB
(median 2.21) to 1.99-2.14 (2.01), about 5% of a put's CPU at both ends, and
nothing when the sender used sendfile. Too little for a second receive loop
with its own deadline, drain and fallback, so it was not built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from common.io.channel import Channel
from common.io.hashpipe import HashPipe
from common.io.ratelimit import UNLIMITED, Throttle
from common.io.spans import Span

DRAIN_BUFFER = 256 * 1024
Writer = Callable[[memoryview, int], None]
"""Writes the bytes it is given at a file position (it may raise to stop the transfer)."""


def receive_file_hashed(
    channel: Channel, offset: int, count: int, hasher: hashlib._Hash, write: Writer,
    timeout: float | None = None, on_received: Callable[[int], None] | None = None,
    throttle: Throttle = UNLIMITED,
) -> str:
    """Receive ``count`` raw bytes meant for file position ``offset``; return the hex SHA-256.

    ``hasher`` already holds the bytes before ``offset`` (a verified prefix) or nothing.
    With ``timeout``, every DEADLINE_SPAN of bytes must arrive within it, however it
    trickles; without, the socket's own timeout bounds each read. ``on_received`` is
    told the file position reached after each buffer. Under a ``throttle`` each buffer
    is paid for before it is read, and that wait is added to the span's deadline: our
    own pacing is not the other side's slowness.
    """
    channel.expect_raw(count)
    with Span(channel.sock, timeout) as span, HashPipe(hasher, expected=count) as pipe:
        position, end = offset, offset + count
        step = throttle.chunk_size(pipe.buffer_size)
        while position < end:
            span.reached(position)
            buffer = pipe.buffer()
            chunk = buffer[: min(end - position, step)]
            span.deadline += throttle.wait(len(chunk))
            if timeout is None:
                channel.recv_raw_exactly(chunk)
            else:
                filled = 0
                while filled < len(chunk):
                    span.arm()
                    filled += channel.recv_raw_into(chunk[filled:])
            write(chunk, position)
            pipe.submit(buffer, len(chunk))
            position += len(chunk)
            if on_received:
                on_received(position)
        return pipe.hexdigest()


def drain_raw(channel: Channel, count: int, timeout: float | None) -> None:
    """Read and drop ``count`` raw bytes (a refused upload's), unhashed, each span of
    DEADLINE_SPAN bytes within ``timeout`` as for a file."""
    channel.expect_raw(count)
    buffer = memoryview(bytearray(min(count, DRAIN_BUFFER) or 1))
    with Span(channel.sock, timeout) as span:
        position = 0
        while position < count:
            span.reached(position)
            span.arm()
            position += channel.recv_raw_into(buffer[: min(count - position, len(buffer))])
