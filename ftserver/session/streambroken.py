"""The ft protocol's byte stream out of step: the connection must close, never reply."""

from __future__ import annotations

from common.protocol.errors import FtError


class StreamBroken(Exception):
    """The byte stream is out of step; the connection must close. Wraps the cause."""

    def __init__(self, cause: FtError, moved: int = 0) -> None:
        super().__init__(cause.message)
        self.cause = cause
        self.moved = moved
        """Bytes of file data that crossed before the break (for the transfer's log line)."""
