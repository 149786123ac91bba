"""Not locked out by its own dead session (issue 18, faults).

A link that goes silent mid-put leaves the server's session waiting for bytes
until its transfer deadline (60 s): before, the client's own retries were all
refused "another upload to ... is in progress" inside that window, and it gave
up. Now a resume of the same upload (the same owner's same file) asks the
stalled session to give way, and it does once it has moved nothing for a few
seconds; anyone else's upload of that name still gets ``locked`` at once.
Real servers, a proxy whose first connection goes silent, the real Client.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ftclient import Client
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess
from tests.stallproxy import stalling_proxy

MiB = 1 << 20


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_retry_takes_over_from_its_own_stalled_session(
        executor: str, start_server: Callable[..., ServerProcess], make_file) -> None:
    server = start_server(executor)
    source = make_file("big.bin", 32 * MiB)
    with stalling_proxy(server.port, stall_after=6 * MiB) as proxy:
        started = time.monotonic()
        with Client("127.0.0.1", proxy.port, timeout=3.0, retries=4,
                    retry_delay=0.5) as client:
            result = client.put(source)
        took = time.monotonic() - started
        assert proxy.stalled.is_set()
    assert result.retries >= 1
    assert result.resumed_from >= 4 * MiB  # what reached the server before the link died
    assert took < 30, f"{took:.1f} s: the retry waited out the stalled session"
    assert (server.root / "big.bin").read_bytes() == source.read_bytes()
    assert server.wait_for_log("being resumed over another connection"), server.log


def test_another_upload_of_the_name_is_still_told_locked(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server()
    with RawConnection(server.port) as holder, RawConnection(server.port) as other:
        holder.hello()
        other.hello()
        holder.start_put("doc.bin", 4 * MiB)
        holder.send_bytes(b"x" * MiB)  # then silent, but not another file's to take over
        time.sleep(4.0)  # longer than a stalled upload takes to give way to itself
        started = time.monotonic()
        reply = other.request({"op": "put", "path": "doc.bin", "size": 5 * MiB, "mtime": 1.0})
        waited = time.monotonic() - started
    assert reply["ok"] is False and reply["error"]["code"] == "locked"
    assert waited < 4.0  # the lock's own short wait, not the takeover's


def test_how_long_a_writer_waits_for_a_held_name_is_a_setting(
        start_server: Callable[..., ServerProcess]) -> None:
    """``limits.lock_wait`` (2 s by default) bounds a put's and a mkdir's wait for a name."""
    server = start_server(limits={"lock_wait": 0.2})
    with RawConnection(server.port) as holder, RawConnection(server.port) as other:
        holder.hello()
        other.hello()
        holder.start_put("held.bin", 4 * MiB)
        waits = []
        for request in ({"op": "put", "path": "held.bin", "size": 9, "mtime": 1.0},
                        {"op": "mkdir", "path": "held.bin"}):
            started = time.monotonic()
            reply = other.request(request)
            waits.append(time.monotonic() - started)
            assert reply["ok"] is False and reply["error"]["code"] == "locked", reply
    assert max(waits) < 1.5, waits  # not the 2 s default
