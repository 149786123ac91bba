"""Make an upload's partial durable as it grows, so a crash or power cut loses little.

Without it, what the kernel still holds in its page cache is lost by a power cut
(a kill -9 of the server loses nothing the kernel got). Every SYNC_BYTES or
SYNC_SECONDS, whichever comes first, the partial's data and size are flushed
with fdatasync; the first flush also makes the partial's name in the partials
folder durable. Measured on ext4 (virtio disk), 512 MiB written in 1 MiB
chunks: 292-390 MB/s with one fsync at the end, 355-432 MB/s with an fdatasync
every 32 MiB, so the cost is lost in the noise (the final fsync gets cheaper).
"""

from __future__ import annotations

import os
import time

from common.io.durable import fsync_dir

SYNC_BYTES = 32 * 1024 * 1024
SYNC_SECONDS = 2.0


class PeriodicSync:
    """Call ``wrote(n)`` after each write to ``fd``; it syncs when enough has piled up."""

    def __init__(self, fd: int, folder: str, every_bytes: int = SYNC_BYTES,
                 every_seconds: float = SYNC_SECONDS) -> None:
        self.fd = fd
        self.folder = folder
        self.every_bytes = every_bytes
        self.every_seconds = every_seconds
        self._unsynced = 0
        self._last = time.monotonic()
        self._folder_synced = False

    def wrote(self, count: int) -> None:
        """Note ``count`` more bytes written; flush if due. Raises OSError as a write would."""
        self._unsynced += count
        if (self._unsynced >= self.every_bytes
                or time.monotonic() - self._last >= self.every_seconds):
            self.sync()

    def sync(self) -> None:
        os.fdatasync(self.fd)
        if not self._folder_synced:
            fsync_dir(self.folder)
            self._folder_synced = True
        self._unsynced = 0
        self._last = time.monotonic()
