"""The "busy, retry" answer in HTTP: 503 with Retry-After, written by h11.

Sans-IO: the rejecter (ftserver/net/rejecter.py) sends these bytes to a refused
connection whose first byte says HTTP, without ever reading its request.
"""

from __future__ import annotations

import h11

from ftserver.http.headers import ALWAYS
from ftserver.http.statuses import REASONS, RETRY_AFTER_SECONDS


def busy_response(reason: str) -> bytes:
    """A whole 503 answer (head and body) that closes the connection."""
    conn = h11.Connection(h11.SERVER)
    body = f"busy: {reason}; retry shortly\n".encode()
    headers = [*ALWAYS, ("Content-Type", "text/plain; charset=utf-8"),
               ("Content-Length", str(len(body))), ("Retry-After", RETRY_AFTER_SECONDS),
               ("Connection", "close")]
    data = conn.send(h11.Response(status_code=503, headers=headers,
                                  reason=REASONS[503].encode())) or b""
    data += conn.send(h11.Data(data=body)) or b""
    data += conn.send(h11.EndOfMessage()) or b""
    return data
