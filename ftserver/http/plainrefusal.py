"""The answer to a plain HTTP request on a port that speaks only TLS: use https://.

Read (briefly) what the browser sent, so closing does not turn into a reset that
destroys the answer, and send it, in HTTP written by h11, to the same address over
https (a redirect, 301), or say so (400) if it named no host.
"""

from __future__ import annotations

import contextlib
import socket

import h11

from ftserver.http.headers import ALWAYS

READ_WAIT = 0.5


def tell_http_client_to_use_https(sock: socket.socket) -> None:
    conn = h11.Connection(h11.SERVER)
    location = ""
    with contextlib.suppress(OSError, h11.RemoteProtocolError):
        sock.settimeout(READ_WAIT)
        conn.receive_data(sock.recv(16 * 1024))
        event = conn.next_event()
        if isinstance(event, h11.Request):
            host = dict(event.headers).get(b"host", b"").decode("latin-1")
            target = bytes(event.target).decode("latin-1")
            if host and target.startswith("/") and "\r" not in host + target:
                location = f"https://{host}{target}"
    body = f"this server speaks HTTPS only: use {location or 'https://'}\n".encode()
    headers = [*ALWAYS, ("Content-Type", "text/plain; charset=utf-8"),
               ("Content-Length", str(len(body))), ("Connection", "close")]
    if location:
        headers.append(("Location", location))
    status, reason = (301, b"Moved Permanently") if location else (400, b"Bad Request")
    with contextlib.suppress(OSError, h11.LocalProtocolError):
        data = conn.send(h11.Response(status_code=status, headers=headers,
                                      reason=reason)) or b""
        data += conn.send(h11.Data(data=body)) or b""
        sock.settimeout(1.0)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
