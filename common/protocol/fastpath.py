"""Frames of the pipelined small-file path read and written without the JSON codec.

Each function gives exactly what the general path (frames.py with requests.py
and replies.py) gives for the one form of frame it knows, and hands every other
body to the general path.
"""

from __future__ import annotations

import math
import re
from typing import Any

from common.protocol.fields import SHA256_HEX
from common.protocol.frames import (
    HEADER,
    MAX_FRAME,
    decode_json_object,
    encode_frame,
    encode_json_string,
)
from common.protocol.replies import PutDone
from common.protocol.requests import PutEnd, PutRequest, Request, parse_request

_STREAMED_PUT = re.compile(
    rb'\{"op":"put","path":"([^"\\\x00-\x1f]*)","size":(0|[1-9][0-9]*),'
    rb'"mtime":(-?(?:0|[1-9][0-9]*))((?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?),"stream":true\}\Z')
"""The exact form encode_frame gives a streamed PutRequest without a sha256 (as the
reference client sends each small file): a path with no escape in it, JSON numbers."""


def encode_streamed_put(path: str, size: int, mtime: float, max_frame: int = MAX_FRAME) -> bytes:
    """``encode_frame(PutRequest(path, size, mtime, stream=True).to_dict(), max_frame)``:
    the same bytes (the form ``_STREAMED_PUT`` reads), made without a dict or the
    encoder's walk over it; a client that pipelines small files sends one per file."""
    if type(size) is not int or type(mtime) is not float or not math.isfinite(mtime):
        return encode_frame(PutRequest(path, size, mtime, stream=True).to_dict(), max_frame)
    body = (f'{{"op":"put","path":{encode_json_string(path)},"size":{size},'
            f'"mtime":{float.__repr__(mtime)},"stream":true}}').encode()
    if len(body) > max_frame:
        raise ValueError(f"frame of {len(body)} bytes exceeds the {max_frame}-byte cap")
    return HEADER.pack(len(body)) + body


def decode_request(payload: bytes) -> dict[str, Any]:
    """``decode_json_object(payload)`` for a request: the same dict, or the same
    FrameError. A streamed put in the exact form of ``_STREAMED_PUT`` is read with
    one match instead of the JSON scanner (a small file costs the server one each);
    any other body, or one whose path is not UTF-8 or whose mtime is out of range,
    goes the whole way."""
    match = _STREAMED_PUT.match(payload)
    if match is not None:
        path, size, whole, fraction = match.groups()
        try:
            mtime: float = float(whole + fraction) if fraction else int(whole)
            if math.isfinite(mtime):
                return {"op": "put", "path": path.decode("utf-8"), "size": int(size),
                        "mtime": mtime, "stream": True}
        except (UnicodeDecodeError, ValueError, OverflowError):
            pass  # an int mtime too big for a float, say: the JSON decoder's answer stands
    return decode_json_object(payload)


_PUT_DONE = re.compile(rb'\{"ok":true,"size":(0|[1-9][0-9]{0,15}),"sha256":"([0-9a-f]{64})"\}\Z')
"""The exact form encode_frame gives a PutDone reply (sizes up to 16 digits)."""


def encode_put_done(done: PutDone) -> bytes:
    """``encode_frame(done.to_dict())``: the same bytes (the form ``_PUT_DONE`` reads),
    made without a dict; a server answers one per small file."""
    if type(done.size) is not int or not SHA256_HEX.match(done.sha256):
        return encode_frame(done.to_dict())
    body = b'{"ok":true,"size":%d,"sha256":"%s"}' % (done.size, done.sha256.encode("ascii"))
    return HEADER.pack(len(body)) + body


def decode_reply(payload: bytes) -> dict[str, Any]:
    """``decode_json_object(payload)`` for a reply: the same dict, or the same FrameError.
    A PutDone in the exact form of ``_PUT_DONE`` is read with one match (a pipelined
    small file costs the client one each); any other body goes the whole way."""
    match = _PUT_DONE.match(payload)
    if match is not None:
        return {"ok": True, "size": int(match[1]), "sha256": match[2].decode("ascii")}
    return decode_json_object(payload)


_PUT_END_HEAD = b'{"op":"put_end","sha256":"'
_PUT_END_TAIL = b'"}'
_PUT_END_SIZE = len(_PUT_END_HEAD) + 64 + len(_PUT_END_TAIL)


def encode_put_end(sha256: str) -> bytes:
    """``encode_frame(PutEnd(sha256).to_dict())``: the same bytes (the form parse_put_end
    takes apart), made without a dict; a pipelining client sends one per file."""
    if type(sha256) is not str or not SHA256_HEX.match(sha256):
        return encode_frame(PutEnd(sha256).to_dict())
    body = _PUT_END_HEAD + sha256.encode("ascii") + _PUT_END_TAIL
    return HEADER.pack(len(body)) + body


def parse_put_end(payload: bytes) -> Request:
    """``parse_request(decode_json_object(payload))`` for the frame expected after a
    streamed put's bytes. The exact bytes that encode_frame makes of a PutEnd, whose
    digest is 64 lowercase hex digits, are taken apart at once (they can decode to
    nothing else); any other body goes the whole way, with the same answers."""
    if (len(payload) == _PUT_END_SIZE and payload.startswith(_PUT_END_HEAD)
            and payload.endswith(_PUT_END_TAIL)):
        digest = payload[len(_PUT_END_HEAD):-len(_PUT_END_TAIL)].decode("ascii", "replace")
        if SHA256_HEX.match(digest):
            return PutEnd(digest)
    return parse_request(decode_json_object(payload))
