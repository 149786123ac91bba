"""The "busy, retry" answer for a TLS server: the refusal itself has to travel inside TLS.

A TLS client reads nothing until its handshake is done, so a plaintext busy
frame would look to it like a server that does not speak TLS. ``TlsRejecter``
runs the handshake of each refused connection without blocking, on the
rejecter's one thread (never the accept loop), then sends the busy frame over
TLS and drains the client's hello until it closes, within LINGER seconds.
The reply is the ft frame whatever the client speaks (an HTTPS client reports an
answer it cannot read): telling them apart would mean reading inside TLS.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import time

from common.io.tls import server_context
from common.protocol.errors import Busy
from common.protocol.frames import encode_frame
from common.protocol.replies import error_reply
from ftserver.config import ServerConfig
from ftserver.net.rejecter import Rejecter


class TlsRejecter(Rejecter):
    LINGER = 5.0
    """Room for the handshake, the busy frame and the client's close."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._unsent: dict[socket.socket, bytes] = {}
        """Busy frames waiting for their connection's handshake to finish."""
        super().__init__()

    def reject(self, sock: socket.socket, reason: str) -> None:
        try:
            sock.setblocking(False)
            tls = self._context.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        except (OSError, ValueError):
            sock.close()
            return
        frame = encode_frame(error_reply(Busy(f"busy: {reason}; retry shortly")))
        with self._lock:
            if self._stopped or len(self._lingering) >= self.MAX_LINGERING:
                tls.close()
                return
            self._unsent[tls] = frame
            self._lingering[tls] = (time.monotonic() + self.LINGER, 0)
            self._selector.register(tls, selectors.EVENT_READ)
        self._wake()

    def _drain(self, sock: socket.socket) -> None:
        assert isinstance(sock, ssl.SSLSocket)
        with self._lock:
            if sock not in self._lingering:
                return
            frame = self._unsent.get(sock)
            try:
                if frame is not None:
                    sock.do_handshake()
                    sock.send(frame)  # one small frame: it fits the socket's buffer
                    del self._unsent[sock]
                    return
                data = sock.recv(4096)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except OSError:
                data = b""
            deadline, taken = self._lingering[sock]
            taken += len(data)
            if not data or taken > self.LINGER_BYTES:
                self._forget(sock)
            else:
                self._lingering[sock] = (deadline, taken)

    def _forget(self, sock: socket.socket) -> None:
        self._unsent.pop(sock, None)
        super()._forget(sock)


def make_rejecter(config: ServerConfig) -> Rejecter:
    """The rejecter for this server: TLS-speaking when the server speaks TLS."""
    if not config.tls.enabled:
        return Rejecter(http_enabled=config.http.enabled)
    assert config.tls.cert is not None and config.tls.key is not None
    return TlsRejecter(server_context(str(config.tls.cert), str(config.tls.key)))
