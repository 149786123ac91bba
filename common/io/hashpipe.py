"""SHA-256 on its own thread, so that hashing overlaps the socket and the disk.

hashlib releases the GIL while it hashes a large buffer, so a transfer loop that
hands each filled buffer to a ``HashPipe`` goes on receiving and writing while
another core hashes. Buffers are preallocated and recycled through a bounded
pool: memory per transfer is fixed (``depth`` buffers) whatever the file size,
and a loop that outruns the hash waits for a free buffer instead of queueing more.

A transfer of at most one buffer is hashed inline, without a thread: a small
file would pay more to start a thread than to hash it.

This module owns no socket and no file; the caller fills the buffers.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from types import TracebackType

BUFFER_SIZE = 256 * 1024
"""Bytes per buffer: large enough that a call per buffer costs nothing next to the hash."""
DEPTH = 4
"""Buffers per pipe: one being filled, the rest queued or being hashed (1 MiB in all)."""


class HashPipe:
    """Feed a SHA-256 from buffers the caller fills, hashing on a thread of its own.

    Use as a context manager: take a buffer with ``buffer()``, fill part of it,
    hand that part to ``submit``; ``hexdigest()`` waits for every submitted byte.
    Leaving the ``with`` block (even by an exception) stops the thread.
    """

    def __init__(self, hasher: hashlib._Hash | None = None, *, expected: int,
                 buffer_size: int = BUFFER_SIZE, depth: int = DEPTH) -> None:
        self._hasher = hasher if hasher is not None else hashlib.sha256()
        self.buffer_size = max(1, min(buffer_size, expected))
        self._threaded = expected > buffer_size
        count = depth if self._threaded else 1
        self._free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
        for _ in range(count):
            self._free.put(memoryview(bytearray(self.buffer_size)))
        self._work: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if self._threaded:
            self._thread = threading.Thread(target=self._run, name="ft-hash", daemon=True)
            self._thread.start()

    def __enter__(self) -> HashPipe:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def buffer(self) -> memoryview:
        """A whole free buffer (``buffer_size`` bytes); waits while all are being hashed."""
        return self._free.get()

    def submit(self, buffer: memoryview, length: int) -> None:
        """Hash the first ``length`` bytes of ``buffer`` (from ``buffer()``), then free it."""
        if self._thread is None:
            self._hasher.update(buffer[:length])
            self._free.put(buffer)
        else:
            self._work.put((buffer, length))

    def hexdigest(self) -> str:
        """The digest of everything submitted; stops the thread."""
        self.close()
        if self._error is not None:
            raise self._error
        return self._hasher.hexdigest()

    def close(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            buffer, length = item
            try:
                if self._error is None:
                    self._hasher.update(buffer[:length])
            except BaseException as exc:  # never leave the filler waiting for a buffer
                self._error = exc
            finally:
                self._free.put(buffer)
