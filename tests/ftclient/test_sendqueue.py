"""``wait_until_sent``: the client waits for its last bytes to leave before timing a reply.

Real TCP sockets on 127.0.0.1: the receiver has a small buffer and reads slowly
(or not at all), the sender a big one, so ``sendall`` returns while most of the
data still waits, unacknowledged, in the sender's queue, as on a slow link.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from common.protocol.errors import Timeout
from ftclient.sendqueue import unacknowledged_bytes, wait_until_sent

KiB, MiB = 1 << 10, 1 << 20
PAYLOAD = 1 * MiB


@pytest.fixture
def slow_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """(sender, receiver): a sender with a deep queue, a receiver with a shallow buffer."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * KiB)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    sender = socket.socket()
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * MiB)
    sender.connect(listener.getsockname())
    receiver, _ = listener.accept()
    listener.close()
    try:
        yield sender, receiver
    finally:
        sender.close()
        receiver.close()


def test_waits_while_a_slow_reader_drains_the_queue(slow_pair) -> None:
    sender, receiver = slow_pair
    sender.sendall(b"x" * PAYLOAD)
    assert (unacknowledged_bytes(sender) or 0) > 0  # sendall returned, bytes still queued
    received = 0

    def read_slowly() -> None:  # about a second in all: longer than the timeout below
        nonlocal received
        receiver.settimeout(10)
        while received < PAYLOAD:
            received += len(receiver.recv(64 * KiB))
            time.sleep(0.03)

    reader = threading.Thread(target=read_slowly)
    reader.start()
    try:
        wait_until_sent(sender, timeout=0.5)  # no stall reaches 0.5 s: no Timeout
        assert unacknowledged_bytes(sender) == 0
    finally:
        reader.join(15)
    assert received == PAYLOAD


def test_a_queue_that_stops_moving_times_out(slow_pair) -> None:
    sender, _receiver = slow_pair
    sender.sendall(b"x" * PAYLOAD)  # nobody reads
    with pytest.raises(Timeout):
        wait_until_sent(sender, timeout=0.5)


def test_returns_when_the_peer_resets(slow_pair) -> None:
    sender, receiver = slow_pair
    sender.sendall(b"x" * PAYLOAD)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        receiver.close()
    wait_until_sent(sender, timeout=30)  # returns; the reply read will report the reset
