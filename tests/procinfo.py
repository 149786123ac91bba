"""Read the process tree and resource use of a server from /proc (Linux), for tests."""

from __future__ import annotations

import os
import time


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stream:
            stat = stream.read()
    except OSError:
        return None
    # pid (comm) state ppid ...; comm may hold spaces and parentheses.
    return stat[stat.rfind(")") + 2:].split()


def children_of(pid: int) -> set[int]:
    """Process ids whose parent is ``pid``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.add(int(entry))
    return found


def is_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (no such process, or a zombie awaiting its reaper)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    fields = _stat_fields(pid)
    return fields is None or fields[0] in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return stream.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def worker_pids(server_pid: int) -> set[int]:
    """The process executor's workers (multiprocessing spawn children) of a server."""
    return {pid for pid in children_of(server_pid) if "spawn_main" in cmdline(pid)}


def open_files(pid: int) -> list[str]:
    """What the descriptors of ``pid`` and its children point at."""
    names = []
    for member in [pid, *children_of(pid)]:
        try:
            for fd in os.listdir(f"/proc/{member}/fd"):
                names.append(f"{member}:{os.readlink(f'/proc/{member}/fd/{fd}')}")
        except OSError:
            continue
    return sorted(names)


def usage(pid: int) -> tuple[int, int]:
    """(open file descriptors, threads) of ``pid`` and its children."""
    fds = threads = 0
    for member in [pid, *children_of(pid)]:
        try:
            fds += len(os.listdir(f"/proc/{member}/fd"))
            with open(f"/proc/{member}/status") as status:
                threads += next(int(line.split()[1]) for line in status
                                if line.startswith("Threads:"))
        except OSError:
            continue
    return fds, threads


def settle(pid: int, baseline: tuple[int, int], timeout: float = 15.0) -> tuple[int, int]:
    """``usage(pid)`` once it is back at ``baseline``, or as it is when ``timeout`` runs out."""
    deadline = time.monotonic() + timeout
    now = usage(pid)
    while now != baseline and time.monotonic() < deadline:
        time.sleep(0.1)
        now = usage(pid)
    return now


def quiet_usage(pid: int, calm: float = 1.0, timeout: float = 15.0) -> tuple[int, int]:
    """``usage(pid)`` once it has not changed for ``calm`` seconds (or when ``timeout`` runs
    out): a baseline taken while the threads and sockets of connections just closed are
    still winding down would count them, and the server, truly idle later, would never
    return to it."""
    deadline = time.monotonic() + timeout
    now = usage(pid)
    since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < calm:
        time.sleep(0.1)
        sample = usage(pid)
        if sample != now:
            now, since = sample, time.monotonic()
    return now
