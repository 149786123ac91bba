"""One published file of the local share opened for a download: store/base.py's ``ReadFile``.

It is opened through names.py (a regular file, reached without following a symlink
swapped in), with its stat taken at once; its bytes go out with sendfile(2) on
plain TCP when no hash is wanted, else read, hashed and sent per buffer
(common/io/filesend.py). ``unchanged`` tells a write into the open file (a rename
over the name is harmless: the old file went out whole).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from common.io.channel import Channel
from common.io.filesend import send_file, send_file_hashed
from common.io.hashing import content_stamp, hash_prefix, unchanged_while_open
from common.io.ratelimit import Throttle
from ftserver.store.base import SentCallback
from ftserver.store.core import LocalCore
from ftserver.store.diskerrors import storage_error


def version_of(st: os.stat_result) -> str:
    """A file's version, for its ETag: the inode, size and mtime in ns (a new upload is a
    new inode, a write in place a new mtime)."""
    return f"{st.st_ino:x}-{st.st_size:x}-{st.st_mtime_ns:x}"


class LocalReadFile:
    def __init__(self, storage: LocalCore, name: str) -> None:
        self.storage = storage
        self.target = storage.names.resolve(name)
        self.name = name
        self.fd, self.before = storage.names.open_for_read(self.target)
        self.size = self.before.st_size
        self.mtime = self.before.st_mtime
        self.digest: str | None = storage.digests.known(self.target.real, self.before)

    def prefix_hasher(self, length: int,
                      given_up: Callable[[], bool] | None = None) -> hashlib._Hash:
        try:
            return hash_prefix(self.fd, length, given_up)
        except OSError as exc:
            raise storage_error(exc, f"reading {self.name!r}") from None

    def send(self, channel: Channel, offset: int, hasher: hashlib._Hash | None,
             timeout: float, throttle: Throttle, on_sent: SentCallback | None,
             count: int | None = None) -> None:
        """``count`` bytes from ``offset`` (None: to the end), fed to ``hasher`` too if
        given. OSError if the disk fails, ft errors if the link does."""
        if count is None:
            count = self.size - offset
        if hasher is None:
            send_file(channel, self.fd, offset, count, timeout, on_sent, throttle=throttle)
        else:
            send_file_hashed(channel, self.fd, offset, count, hasher, timeout, on_sent,
                             throttle=throttle)

    def read(self, offset: int, size: int) -> bytes:
        return os.pread(self.fd, size, offset)

    @property
    def version(self) -> str:
        return version_of(self.before)

    def unchanged(self) -> bool:
        return unchanged_while_open(self.before, os.fstat(self.fd))

    def remember(self, digest: str) -> None:
        """Cache ``digest`` as this file's, while the name still holds this very file (a
        newer version's entry stays)."""
        try:
            now = os.stat(self.target.real)
        except OSError:
            return
        if now.st_ino == self.before.st_ino and content_stamp(now) == content_stamp(self.before):
            self.storage.digests.remember(self.target.real, self.before, digest)

    def close(self) -> None:
        os.close(self.fd)
