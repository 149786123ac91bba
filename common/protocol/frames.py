"""Frame codec: 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object).

Sans-IO, as h11 is: ``FrameDecoder`` takes bytes in and hands decoded dict headers
out; ``encode_frame`` turns a dict into bytes. Nothing here touches a socket.

Raw file bytes may follow a header that announces them. The caller says so with
``expect_raw(n)``; until those n bytes are taken with ``take_raw`` (or read
straight from the socket and reported with ``skip_raw``), the decoder does not
look for a frame, so file bytes are never mistaken for a length.

Limits are checked before anything is buffered: a length over ``max_frame``
fails as soon as its four bytes arrive. Any error moves the decoder to a
permanent error state, because a byte stream that lost its framing cannot be
trusted again.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

from common.protocol.errors import FrameError

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 1024
"""Largest dict header we send or accept, in bytes of JSON."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _finite_float(text: str) -> float:
    # "1e400" is a valid JSON number that Python reads as infinity: refuse it like Infinity.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):  # rare: only then look for which key came twice
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys, parse_constant=_reject_constant,
                            parse_float=_finite_float)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
"""Built once: ``json.loads``/``json.dumps`` with options build a new one per call, which
was a measurable share of the work per small file. Both hold no state between calls."""


def decode_json_object(payload: bytes) -> dict[str, Any]:
    """Parse one frame body; raise FrameError unless it is a JSON object."""
    try:
        text = payload.decode("utf-8")
        obj = _DECODER.decode(text)
    except RecursionError:
        raise FrameError("frame is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"frame is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise FrameError("frame must hold a JSON object")
    # A lone surrogate escape ("\\ud800") decodes to text no UTF-8 can hold; such a
    # string would break logging and re-encoding later, so refuse the frame now. Valid
    # UTF-8 never decodes to a surrogate, so only a frame with a \\u escape can hold one.
    if b"\\u" in payload:
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise FrameError("frame holds a lone surrogate escape") from None
    return obj


def encode_frame(obj: dict[str, Any], max_frame: int = MAX_FRAME) -> bytes:
    """Serialise one dict header with its length prefix."""
    body = _ENCODER.encode(obj).encode()
    if len(body) > max_frame:
        raise ValueError(f"frame of {len(body)} bytes exceeds the {max_frame}-byte cap")
    return HEADER.pack(len(body)) + body


class FrameDecoder:
    """Incremental decoder for a stream of frames (and the raw bytes between them)."""

    def __init__(self, max_frame: int = MAX_FRAME, raw_only: bool = False) -> None:
        """``raw_only``: the stream carries no frames of ours, only raw bytes announced by
        someone else's framing (an HTTP body): nothing is ever read as a frame length."""
        self.max_frame = max_frame
        self.raw_only = raw_only
        self._buffer = bytearray()
        self._error: FrameError | None = None
        self._raw_pending = 0

    @property
    def buffered(self) -> int:
        """How many bytes are held that no frame has consumed yet."""
        return len(self._buffer)

    @property
    def raw_pending(self) -> int:
        """How many raw bytes are still expected before the next frame."""
        return self._raw_pending

    def feed(self, data: bytes) -> None:
        self._check_error()
        self._buffer += data
        if self._raw_pending == 0:
            self._check_length()

    def expect_raw(self, count: int) -> None:
        """Announce that the next ``count`` bytes of the stream are raw file data."""
        if count < 0 or self._raw_pending:
            raise RuntimeError("expect_raw called while raw bytes are still pending")
        self._raw_pending = count
        if count == 0:
            self._check_length()

    def next_frame(self) -> dict[str, Any] | None:
        """Return the next complete dict header, or None if more bytes are needed."""
        self._check_error()
        if self._raw_pending:
            raise RuntimeError("next_frame called while raw bytes are still pending")
        if len(self._buffer) < HEADER.size or self.raw_only:
            return None
        length = self._check_length()
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        payload = bytes(self._buffer[HEADER.size:end])
        del self._buffer[:end]
        try:
            return decode_json_object(payload)
        except FrameError as exc:
            self._error = exc
            raise

    def take_raw(self, limit: int) -> bytes:
        """Hand out up to ``limit`` of the buffered raw bytes announced by ``expect_raw``."""
        self._check_error()
        count = min(limit, self._raw_pending, len(self._buffer))
        chunk = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._raw_pending -= count
        if self._raw_pending == 0:
            self._check_length()
        return chunk

    def take_unread(self) -> bytes:
        """Hand back every byte held that nothing announced (the next HTTP request, read
        along with the end of a body); only between raw spans."""
        if self._raw_pending:
            raise RuntimeError("take_unread called while raw bytes are still pending")
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    def skip_raw(self, count: int) -> None:
        """Record that ``count`` raw bytes were read by the caller without passing through here.

        Only allowed when nothing is buffered: the caller read them straight from
        the socket into its own buffer (the fast path for big transfers).
        """
        if self._buffer or count > self._raw_pending:
            raise RuntimeError("skip_raw needs an empty buffer and that many pending bytes")
        self._raw_pending -= count

    def _check_length(self) -> int:
        if len(self._buffer) < HEADER.size or self.raw_only:
            return -1
        length: int = HEADER.unpack_from(self._buffer)[0]
        if length == 0 or length > self.max_frame:
            self._error = FrameError(
                f"frame length {length} is outside 1..{self.max_frame} bytes"
            )
            raise self._error
        return length

    def _check_error(self) -> None:
        if self._error is not None:
            raise FrameError(f"connection is in error state: {self._error.message}")
