"""Receive a file's raw bytes from a Channel into the caller's writer, hashing on a thread.

Both receivers use it: the server for a ``put`` and the client for a ``get``. It is
the init_recv loop: it counts received bytes against the announced size, reads
with recv_into straight into preallocated buffers (a HashPipe's), hands each
filled buffer to the writer, then to the hashing thread. Memory stays at the
pipe's few buffers however large the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from common.channel import Channel
from common.hashpipe import HashPipe
from common.ratelimit import UNLIMITED, Throttle
from common.spans import Span

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
