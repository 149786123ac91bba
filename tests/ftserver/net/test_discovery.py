"""Discovery end to end: servers answer UDP queries on loopback; ``ftclient discover`` lists them.

Every query goes to the loopback broadcast address 127.255.255.255 or to
127.0.0.1, on a UDP port chosen per test, never to a real interface.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.protocol.discovery import (
    QUERY_SIZE,
    Announcement,
    encode_query,
    encode_reply,
    parse_reply,
)
from ftclient.discovery import discover
from ftserver.config import ConfigError, load_config
from tests.cliutil import one_error_line
from tests.serverproc import ServerProcess

LOOPBACK_BROADCAST = "127.255.255.255"
CLIENT = [sys.executable, "-m", "ftclient"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def discoverable(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start servers with discovery on a given UDP port and a given name; stopped by pid."""
    started: list[ServerProcess] = []

    def start(udp_port: int, server_name: str = "ft", executor: str = "thread",
              folder: str = "srv", **settings: object) -> ServerProcess:
        server = ServerProcess(tmp_path / folder, executor=executor, name=server_name,
                               discovery={"enabled": True, "port": udp_port},
                               **settings).start()
        started.append(server)
        assert server.wait_for_log(r"discovery: answering on UDP"), server.log
        return server

    yield start
    for server in started:
        try:
            server.terminate(timeout=20)
        except Exception:
            server.kill()


def replies_to(datagrams: list[bytes], port: int, wait: float = 1.0, enough: int = 0
               ) -> list[bytes]:
    """Send each datagram to 127.0.0.1:port from one socket; collect what comes back.

    Stops after ``enough`` replies (if given), else when ``wait`` s pass without one.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, ("127.0.0.1", port))
        sock.settimeout(wait)
        replies = []
        for _ in range(len(datagrams) + 1):
            try:
                replies.append(sock.recv(4096))
            except TimeoutError:
                break
            if len(replies) == enough:
                break
        return replies


def test_broadcast_finds_the_server(discoverable: Callable[..., ServerProcess]) -> None:
    # The responder is a thread of the listener, whichever executor runs the sessions.
    udp_port = free_udp_port()
    server = discoverable(udp_port, "Front office", "process")
    found = discover(LOOPBACK_BROADCAST, udp_port, timeout=1.5)
    assert [(s.name, s.host, s.port, s.tls, s.fingerprint) for s in found] == [
        ("Front office", "127.0.0.1", server.port, False, None)]
    assert server.terminate() == 0
    assert "Traceback" not in server.log


def test_a_tls_server_announces_its_fingerprint(
        discoverable: Callable[..., ServerProcess]) -> None:
    udp_port = free_udp_port()
    server = discoverable(udp_port, "Secure office", tls={"enabled": True})
    logged = re.search(r"fingerprint: ([0-9a-f]{64})", server.log)
    assert logged, server.log
    found = discover(LOOPBACK_BROADCAST, udp_port, timeout=1.5)
    assert [(s.name, s.port, s.tls, s.fingerprint) for s in found] == [
        ("Secure office", server.port, True, logged.group(1))]
    assert server.terminate() == 0


def test_cli_lists_every_server_on_one_port(discoverable: Callable[..., ServerProcess]) -> None:
    udp_port = free_udp_port()  # two servers share it: SO_REUSEADDR, broadcasts reach both
    first = discoverable(udp_port, "Front office", folder="a")
    second = discoverable(udp_port, "Back office", folder="b")
    result = subprocess.run(
        CLIENT + ["discover", "--broadcast", LOOPBACK_BROADCAST, "--port", str(udp_port),
                  "--timeout", "1", "--json"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert listed == [
        {"name": "Back office", "host": "127.0.0.1", "port": second.port, "tls": False,
         "fingerprint": None},
        {"name": "Front office", "host": "127.0.0.1", "port": first.port, "tls": False,
         "fingerprint": None},
    ]
    table = subprocess.run(
        CLIENT + ["discover", "--broadcast", LOOPBACK_BROADCAST, "--port", str(udp_port),
                  "--timeout", "1"], capture_output=True, text=True, timeout=30)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].split() == ["Front", "office", f"127.0.0.1:{first.port}", "plain", "-"]


def test_nobody_answering_is_one_line_and_exit_1() -> None:
    result = subprocess.run(
        CLIENT + ["discover", "--broadcast", "127.0.0.1", "--port", str(free_udp_port()),
                  "--timeout", "0.5"], capture_output=True, text=True, timeout=30)
    assert "no server answered" in one_error_line(result, 1)
    assert result.stdout == ""


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "x"], ["--timeout", "-1"],
                                  ["--timeout", "nan"]])
def test_bad_arguments_exit_2(args: list[str]) -> None:
    result = subprocess.run(CLIENT + ["discover", "--broadcast", "127.0.0.1", *args],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_and_oversized_datagrams_get_no_reply(
        discoverable: Callable[..., ServerProcess]) -> None:
    udp_port = free_udp_port()
    server = discoverable(udp_port)
    short_query = json.dumps({"op": "ft-discover", "version": 1}).encode()
    hostile = [
        b"",
        b"\xff\xfe not utf-8" * 60,
        b"[" * 1000,  # deep nesting
        b"x" * QUERY_SIZE,  # not JSON
        json.dumps(["ft-discover"] * 60).encode(),  # JSON, not an object
        short_query,  # valid but too short to answer: the reply would be bigger
        encode_query()[:-2] + b" " * 2000 + b"}",  # oversized
        encode_query().replace(b'"version":1', b'"version":true'),
        encode_query().replace(b"ft-discover", b"ft-discovex"),
    ]
    assert replies_to(hostile, udp_port, wait=1.0) == []
    # ...and the responder still answers a proper query afterwards.
    [reply] = replies_to([encode_query()], udp_port, wait=5.0, enough=1)
    assert parse_reply(reply).port == server.port
    assert "Traceback" not in server.log


def test_reply_never_larger_than_the_query(discoverable: Callable[..., ServerProcess]) -> None:
    udp_port = free_udp_port()
    long_name = "Front office " + "é" * 400  # 800+ bytes of UTF-8
    discoverable(udp_port, long_name)
    [reply] = replies_to([encode_query()], udp_port, wait=5.0, enough=1)
    assert len(reply) <= QUERY_SIZE
    announced = parse_reply(reply).name
    assert announced and long_name.startswith(announced)


def test_replies_to_one_address_are_rate_limited(
        discoverable: Callable[..., ServerProcess]) -> None:
    udp_port = free_udp_port()
    discoverable(udp_port)
    replies = replies_to([encode_query()] * 40, udp_port, wait=1.0)
    # A burst of 4 plus 2 per second: 40 queries sent at once get a handful of answers.
    assert 1 <= len(replies) <= 8, len(replies)


def test_disabled_discovery_answers_nothing(start_server: Callable[..., ServerProcess]) -> None:
    udp_port = free_udp_port()
    server = start_server(discovery={"enabled": False, "port": udp_port})
    assert replies_to([encode_query()], udp_port, wait=1.0) == []
    assert "discovery: answering" not in server.log


def test_busy_udp_port_leaves_the_server_serving(
        start_server: Callable[..., ServerProcess], connect: Callable[..., object]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:  # no SO_REUSEADDR
        squatter.bind(("127.0.0.1", 0))
        udp_port = squatter.getsockname()[1]
        server = start_server(discovery={"enabled": True, "port": udp_port})
        assert "discovery is off: cannot use UDP port" in server.log
        client = connect(server)
        assert client.list() == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(("settings", "key"), [
    ("discovery: 5", "discovery"),
    ("discovery: {enabled: 'yes'}", "discovery.enabled"),
    ("discovery: {port: 0}", "discovery.port"),
    ("discovery: {port: 70000}", "discovery.port"),
    ("discovery: {port: '9021'}", "discovery.port"),
    ("discovery: {bogus: 1}", "discovery.bogus"),
])
def test_bad_discovery_settings(tmp_path: Path, settings: str, key: str) -> None:
    config_file = tmp_path / "ftserver.yaml"
    config_file.write_text(settings + "\n")
    with pytest.raises(ConfigError, match=re.escape(repr(key))):
        load_config(config_file)


def test_query_goes_out_more_than_once_within_the_wait() -> None:
    """A lost datagram is sent again: the listener sees several queries in one discover."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.settimeout(0.05)
        started = time.monotonic()
        assert discover("127.0.0.1", listener.getsockname()[1], timeout=0.6) == []
        assert time.monotonic() - started >= 0.6
        seen = 0
        while True:
            try:
                listener.recv(4096)
            except TimeoutError:
                break
            seen += 1
        assert seen >= 2


def test_one_host_answering_with_hundreds_of_servers_cannot_hide_the_others() -> None:
    """Issue 18: a host answering first with 256 bogus servers hid the real one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flooder, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as honest:
        flooder.bind(("127.0.0.1", 0))
        honest.bind(("127.0.0.2", 0))
        flooder.settimeout(5)

        def answer() -> None:
            _, client = flooder.recvfrom(4096)
            for index in range(300):
                bogus = Announcement(f"bogus {index}", f"127.1.{index // 250}.{index % 250 + 1}",
                                     9021, False, None)
                flooder.sendto(encode_reply(bogus, 512), client)
                if index % 25 == 24:
                    time.sleep(0.005)  # paced: the kernel's receive buffer drops none of it
            real = Announcement("Front office", "127.0.0.2", 9021, False, None)
            for _ in range(5):  # a busy machine may still drop one datagram; it answers again
                honest.sendto(encode_reply(real, 512), client)
                time.sleep(0.1)

        thread = threading.Thread(target=answer)
        thread.start()
        found = discover("127.0.0.1", flooder.getsockname()[1], timeout=2.0)
        thread.join(10)
    names = [server.name for server in found]
    assert "Front office" in names
    assert sum(name.startswith("bogus") for name in names) <= 16
