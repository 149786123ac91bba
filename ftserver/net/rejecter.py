"""The "busy, retry" answer to a connection over a limit, never stalling the accept loop."""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time

from common.protocol.errors import Busy
from common.protocol.frames import encode_frame
from common.protocol.replies import error_reply


class Rejecter:
    """Refuses connections over a limit with a "busy" reply, never stalling the accept loop.

    The reply (a small frame) is written at once without blocking, then the write side
    is shut. Closing straight away could turn into a reset that destroys the reply
    before the client reads it (its hello is still unread), so a single thread keeps
    each refused socket for at most LINGER seconds, reading and dropping at most
    LINGER_BYTES, and closes it at end of stream or deadline, whichever comes first.
    """

    LINGER = 1.0
    LINGER_BYTES = 64 * 1024
    MAX_LINGERING = 512

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._lingering: dict[socket.socket, tuple[float, int]] = {}
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="rejecter", daemon=True)
        self._thread.start()

    def reject(self, sock: socket.socket, reason: str) -> None:
        try:
            sock.setblocking(False)
            sock.send(encode_frame(error_reply(Busy(f"busy: {reason}; retry shortly"))))
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            sock.close()
            return
        with self._lock:
            if self._stopped or len(self._lingering) >= self.MAX_LINGERING:
                sock.close()
                return
            self._lingering[sock] = (time.monotonic() + self.LINGER, 0)
            self._selector.register(sock, selectors.EVENT_READ)
        self._wake()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
        self._wake()
        self._thread.join(timeout=5.0)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopped:
                    break
                deadlines = [deadline for deadline, _ in self._lingering.values()]
            timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_r:
                    with contextlib.suppress(OSError):
                        self._wake_r.recv(4096)
                else:
                    self._drain(key.fileobj)  # type: ignore[arg-type]
            self._close_expired()
        with self._lock:
            for sock in list(self._lingering):
                self._forget(sock)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _drain(self, sock: socket.socket) -> None:
        with self._lock:
            deadline, taken = self._lingering[sock]
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            taken += len(data)
            if not data or taken > self.LINGER_BYTES:
                self._forget(sock)
            else:
                self._lingering[sock] = (deadline, taken)

    def _close_expired(self) -> None:
        now = time.monotonic()
        with self._lock:
            for sock, (deadline, _) in list(self._lingering.items()):
                if deadline <= now:
                    self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        """Unregister and close; the caller holds the lock."""
        self._selector.unregister(sock)
        del self._lingering[sock]
        sock.close()
