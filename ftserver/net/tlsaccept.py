"""The server's half of the TLS handshake, run inside a session (never in the accept loop).

The whole handshake has one deadline, however slowly the peer trickles its
bytes, so an idle or slow connection costs only its own session slot. A peer
that speaks plaintext to a TLS server is told so in a plaintext ft error frame
(which any ft client can read) and closed at once, instead of hanging.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import time

from common.io.tls import TLS_RECORD_HANDSHAKE
from common.protocol.errors import ConnectionLost, FrameError, Timeout
from common.protocol.frames import encode_frame
from common.protocol.replies import error_reply

PLAINTEXT_PEER = ("this server requires TLS: connect with `ftclient --tls` "
                  "(and --accept-new or --fingerprint to trust it)")


def accept_tls(sock: socket.socket, context: ssl.SSLContext, deadline: float) -> ssl.SSLSocket:
    """Complete the server side of a handshake by ``deadline`` (monotonic); return the TLS socket.

    Raises Timeout, ConnectionLost, or FrameError for a peer that does not speak TLS
    (after telling it so in plaintext).
    """
    first = _peek_first_byte(sock, deadline)
    if first != TLS_RECORD_HANDSHAKE:
        _tell_plaintext_peer(sock)
        raise FrameError("the client does not speak TLS")
    tls = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    tls.setblocking(False)
    poller = select.poll()
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                events = select.POLLIN
            except ssl.SSLWantWriteError:
                events = select.POLLOUT
            except ssl.SSLError as exc:
                raise ConnectionLost(f"TLS handshake failed: {exc.reason or exc}") from None
            except OSError as exc:
                raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("the TLS handshake did not finish in time")
            poller.register(tls, events)
            poller.poll(left * 1000)
            poller.unregister(tls)
    except BaseException:
        tls.close()
        raise
    tls.setblocking(True)
    return tls


def _peek_first_byte(sock: socket.socket, deadline: float) -> int | None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise Timeout("the TLS handshake did not start in time")
    sock.settimeout(left)
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        raise Timeout("the TLS handshake did not start in time") from None
    except OSError as exc:
        raise ConnectionLost(f"the connection dropped: {exc.strerror or exc}") from None
    if not data:
        raise ConnectionLost("the client closed the connection before the TLS handshake")
    return data[0]


def _tell_plaintext_peer(sock: socket.socket) -> None:
    """Answer a plaintext ft client in its own framing, without waiting on it."""
    with contextlib.suppress(OSError):
        sock.settimeout(0.2)
        sock.recv(65536)  # its hello: unread data would turn our close into a reset
    with contextlib.suppress(OSError):
        sock.settimeout(1.0)
        sock.sendall(encode_frame(error_reply(FrameError(PLAINTEXT_PEER))))
        sock.shutdown(socket.SHUT_WR)
