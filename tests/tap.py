"""A wire tap for tests: relay one TCP connection on 127.0.0.1 and keep every byte it carried.

``WireTap(target_port)`` listens on a free port; the first connection it accepts
is relayed to the target both ways, and ``client_bytes`` / ``server_bytes`` hold
what each side sent. One thread, every wait bounded, ``close`` joins it.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time

TAP_TIMEOUT = 30.0


class WireTap:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TAP_TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.client_bytes = bytearray()
        self.server_bytes = bytearray()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="wire-tap")
        self.thread.start()

    def __enter__(self) -> WireTap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", self.target_port), timeout=TAP_TIMEOUT)
        ends = {client: (server, self.client_bytes), server: (client, self.server_bytes)}
        deadline = time.monotonic() + TAP_TIMEOUT
        with client, server, selectors.DefaultSelector() as selector:
            for sock in ends:
                selector.register(sock, selectors.EVENT_READ)
            while not self._stop.is_set() and time.monotonic() < deadline:
                for key, _ in selector.select(0.05):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    other, record = ends[source]
                    try:
                        data = source.recv(65536)
                    except OSError:
                        data = b""
                    if not data:
                        return
                    record.extend(data)
                    with contextlib.suppress(OSError):
                        other.sendall(data)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.thread.join(TAP_TIMEOUT)
        self.listener.close()
