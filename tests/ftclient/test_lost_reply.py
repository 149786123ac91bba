"""A put whose last reply was lost is retried without sending the file again (issue 18).

Every byte had arrived and the server had published the file, but the connection
died before its ``put_done`` reached the client; the retry sent the whole file once
more. Now the retry announces the SHA-256 the first attempt sent, and the server,
holding that very file, confirms it without a byte. The seam: a proxy that relays
everything but the server's last reply on the first connection.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from common.protocol.frames import encode_frame
from ftclient import Client
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

MiB = 1 << 20


def test_a_put_whose_reply_was_lost_is_confirmed_on_retry_without_resending(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "report.bin"
    data = os.urandom(6 * MiB)
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    done = encode_frame({"ok": True, "size": len(data), "sha256": digest})

    with CuttingProxy(server.port) as measure, Client("127.0.0.1", measure.port) as client:
        client.put(source, "report.bin")  # what the server says to such a put, in bytes
        client.remove("report.bin")
        client.close()
        deadline = time.monotonic() + 10  # counted once the proxy sees the connection end
        while not measure.forwarded["s2c"] and time.monotonic() < deadline:
            time.sleep(0.02)
        said = measure.forwarded["s2c"] - len(encode_frame({"ok": True}))  # the remove's

    # The proxy cuts once its budget is reached: one byte of put_done passes, no more.
    with CuttingProxy(server.port, cut_after=said - len(done) + 1, direction="s2c",
                      cut_first=1) as proxy, \
            Client("127.0.0.1", proxy.port, retries=2, retry_delay=0.1) as client:
        result = client.put(source, "report.bin")
    assert result.retries == 1 and result.sha256 == digest
    assert (server.root / "report.bin").read_bytes() == data

    logged = re.findall(r"op=put .*path='report.bin' size=(\d+) offset=(\d+) bytes=(\d+)",
                        server.log)
    assert len(logged) == 3, server.log  # measured, then the cut one, then its retry
    assert logged[1] == (str(len(data)), "0", str(len(data)))  # the first: all of it
    assert logged[-1] == (str(len(data)), str(len(data)), "0")  # the retry: not a byte
