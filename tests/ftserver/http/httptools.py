"""Real clients for the HTTP tests: curl and wget as processes, raw sockets for hostile bytes."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

CLIENT_TIMEOUT = 30


def curl(*args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    """curl, quiet but showing errors; its stdout as bytes."""
    done = subprocess.run(["curl", "-sS", "--max-time", str(CLIENT_TIMEOUT), *args],
                          capture_output=True, timeout=CLIENT_TIMEOUT + 10)
    if check:
        assert done.returncode == 0, done.stderr.decode()
    return done


def curl_status(*args: str) -> tuple[int, bytes]:
    """The status and the body of one request."""
    done = curl("-o", "-", "-w", "\n%{http_code}", *args)
    body, _, status = done.stdout.rpartition(b"\n")
    return int(status), body


def curl_head(*args: str) -> dict[str, str]:
    """The response's headers (the last response's, lower-case names) and ':status'."""
    done = curl("-D", "-", "-o", "/dev/null", *args)
    blocks = done.stdout.decode("latin-1").replace("\r\n", "\n").strip().split("\n\n")
    lines = blocks[-1].split("\n")
    headers = {":status": lines[0].split()[1]}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def wget(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["wget", "-q", "--tries=1", f"--timeout={CLIENT_TIMEOUT}", *args],
                          cwd=cwd, capture_output=True, timeout=CLIENT_TIMEOUT + 10)


def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` as it is, then read until the server closes (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def status_of(response: bytes) -> int:
    """The status code of the first response in raw bytes."""
    return int(response.split(b" ", 2)[1])


def read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Read what the server sends until it closes or ``timeout`` passes; return the bytes
    and whether it closed (a reset counts as closed)."""
    chunks = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return b"".join(chunks), True
        if not chunk:
            return b"".join(chunks), True
        chunks.append(chunk)
    return b"".join(chunks), False


def status_line_ok(response: bytes) -> bool:
    """Whether ``response`` starts with a well-formed HTTP/1.1 status line."""
    line, _, _ = response.partition(b"\r\n")
    parts = line.split(b" ", 2)
    return (len(parts) >= 2 and parts[0] == b"HTTP/1.1" and len(parts[1]) == 3
            and parts[1].isdigit() and 100 <= int(parts[1]) <= 599)
