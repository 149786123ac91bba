"""Spooling a stream (standard input, a pipe, any binary file object) for ``put``.

The protocol announces each file's size and resumes by offset, so a stream is read to
its end into a private temporary file (mode 0600, in the system's temporary folder,
``TMPDIR``) and that file is put: published only whole and verified by SHA-256 like
any other. The spool is removed when the put ends, however it ends.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Protocol

SPOOL_CHUNK = 1 << 20


class StreamSource(Protocol):
    """Anything with a binary ``read`` (sys.stdin.buffer, an open file, a pipe)."""

    def read(self, size: int = -1, /) -> bytes: ...


@contextlib.contextmanager
def spooled(source: StreamSource) -> Iterator[str]:
    """The path of a temporary file holding everything ``source`` gives until its end."""
    fd, path = tempfile.mkstemp(prefix="ftclient-spool-")
    try:
        with os.fdopen(fd, "wb") as spool:
            while chunk := source.read(SPOOL_CHUNK):
                spool.write(chunk)
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
