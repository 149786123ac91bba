"""The "busy, retry" answer to a connection over a limit, never stalling the accept loop.

In the protocol the client speaks: an ft "busy" frame, or, to a client whose first
byte starts an HTTP method, 503 with Retry-After.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time

from common.protocol.errors import Busy
from common.protocol.frames import encode_frame
from common.protocol.replies import error_reply
from ftserver.http.busyanswer import busy_response
from ftserver.net.connection import looks_like_http


class Rejecter:
    """Refuses connections over a limit with a "busy" reply, never stalling the accept loop.

    A single thread waits, at most FIRST_BYTE_WAIT seconds, for the client's first
    byte (ft's hello and an HTTP request both come at once), peeks at it, and writes
    the reply in that protocol without blocking (a small frame or answer), then shuts
    the write side; a client that sends nothing in time is answered in ft's protocol,
    as are all when HTTP is off. Closing straight away could turn into a reset that
    destroys the reply before the client reads it (its hello is still unread), so the
    thread keeps each refused socket for at most LINGER seconds more, reading and
    dropping at most LINGER_BYTES, and closes it at end of stream or deadline,
    whichever comes first.
    """

    FIRST_BYTE_WAIT = 0.5
    LINGER = 1.0
    LINGER_BYTES = 64 * 1024
    MAX_LINGERING = 512

    def __init__(self, http_enabled: bool = False) -> None:
        self._http_enabled = http_enabled
        self._unanswered: dict[socket.socket, str] = {}
        """Refused sockets waiting for their first byte, with the reason they were refused."""
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
        except OSError:
            sock.close()
            return
        with self._lock:
            if self._stopped or len(self._lingering) >= self.MAX_LINGERING:
                sock.close()
                return
            self._unanswered[sock] = reason
            self._lingering[sock] = (time.monotonic() + self.FIRST_BYTE_WAIT, 0)
            self._selector.register(sock, selectors.EVENT_READ)
        self._wake()

    def _answer(self, sock: socket.socket, http: bool) -> bool:
        """Send the busy reply in the client's protocol and shut the write side; the
        socket then lingers. False if the connection already broke (it is forgotten).
        The caller holds the lock."""
        reason = self._unanswered.pop(sock)
        if http and self._http_enabled:
            reply = busy_response(reason)
        else:
            reply = encode_frame(error_reply(Busy(f"busy: {reason}; retry shortly")))
        try:
            sock.send(reply)  # small: it fits the fresh socket's buffer
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            self._forget(sock)
            return False
        self._lingering[sock] = (time.monotonic() + self.LINGER, 0)
        return True

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
            if sock not in self._lingering:
                return
            if sock in self._unanswered:
                try:
                    first = sock.recv(1, socket.MSG_PEEK)
                except BlockingIOError:
                    return
                except OSError:
                    first = b""
                if first:
                    self._answer(sock, looks_like_http(first[0]))  # drained from now on
                else:
                    self._forget(sock)  # gone before it said anything
                return
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
                if deadline > now:
                    continue
                if sock in self._unanswered:
                    self._answer(sock, http=False)  # silent so far: ft's own reply
                else:
                    self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        """Unregister and close; the caller holds the lock."""
        self._selector.unregister(sock)
        del self._lingering[sock]
        self._unanswered.pop(sock, None)
        sock.close()
