"""Measured values: each figure keeps every round, and reports its median and spread.

Also the small helpers every case shares: making data files on tmpfs, reading a
process's peak RSS, and timing a callable (wall clock and CPU).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20


@dataclass
class Figure:
    """One measured quantity (say "ft put, MB/s") over several rounds."""

    key: str
    label: str
    unit: str
    values: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def spread(self) -> str:
        if len(self.values) < 2:
            return ""
        return f"{min(self.values):.0f}–{max(self.values):.0f}"


@dataclass
class Results:
    """Every figure of one run, by key, plus notes on what was skipped and why."""

    figures: dict[str, Figure] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def add(self, key: str, label: str, unit: str, value: float) -> None:
        figure = self.figures.setdefault(key, Figure(key, label, unit))
        figure.values.append(value)
        print(f"  {label}: {value:.1f} {unit}", flush=True)

    def skip(self, note: str) -> None:
        self.skipped.append(note)
        print(f"  skipped: {note}", flush=True)

    def median(self, key: str) -> float | None:
        figure = self.figures.get(key)
        return figure.median if figure and figure.values else None


def make_file(path: Path, size: int) -> Path:
    """A file of ``size`` random-looking bytes (a random MiB, repeated)."""
    block = os.urandom(min(size, MiB) or 1)
    with open(path, "wb") as stream:
        left = size
        while left:
            n = min(left, len(block))
            stream.write(block[:n])
            left -= n
    return path


def make_small_files(folder: Path, count: int, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"f{index:05d}.bin"
        path.write_bytes(os.urandom(size))
        paths.append(path)
    return paths


def peak_rss_mib(pid: int) -> float:
    """The process's high-water resident set (VmHWM) in MiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Took:
    """What one timed action cost."""

    seconds: float
    """Wall-clock seconds."""
    cpu: float
    """CPU seconds (user and system) of this process and every process under it (the
    servers, their workers, scp's ssh and sshd) while the action ran: both ends of
    the copy, since client and server share the machine."""


def proc_times(pid: int) -> tuple[float, float, float, float]:
    """CPU seconds of process ``pid`` so far: user, system, and its reaped children's
    user and system (utime, stime, cutime, cstime: fields 14-17 of proc(5))."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # counted from the state, field 3
    utime, stime, cutime, cstime = (int(value) / TICKS for value in fields[11:15])
    return utime, stime, cutime, cstime


def _live_descendants_cpu(pid: int) -> float:
    """CPU seconds of every live process under ``pid``, whichever of its threads began it."""
    total = 0.0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as children:
                child_ids = children.read().split()
        except FileNotFoundError:  # that thread ended meanwhile
            continue
        total += sum(_process_tree_cpu(int(child)) for child in child_ids)
    return total


def _process_tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid``, of its reaped children, and of its live descendants."""
    try:
        return sum(proc_times(pid)) + _live_descendants_cpu(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # it exited meanwhile: its parent's reaped-children figure has it


def process_tree_cpu(pid: int) -> float:
    """CPU seconds so far of process ``pid`` and everything under it (0 once it is gone):
    one side of a copy, when that side is a server this process started."""
    return _process_tree_cpu(pid)


def cpu_seconds() -> float:
    """CPU seconds spent so far by this process and all processes under it."""
    own = os.times()
    return (own.user + own.system + own.children_user + own.children_system
            + _live_descendants_cpu(os.getpid()))


def timed(action: Callable[[], object]) -> Took:
    """Run ``action``; what it took in wall-clock and CPU seconds."""
    cpu_before, started = cpu_seconds(), time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    return Took(seconds, cpu_seconds() - cpu_before)


def mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def concurrent_timed(count: int, work: Callable[[int], None]) -> Took:
    """Run ``work(i)`` for i in range(count) on as many threads at once; re-raise a failure."""
    errors: list[BaseException] = []
    start = threading.Barrier(count + 1)

    def run(index: int) -> None:
        try:
            start.wait(60)
            work(index)
        except BaseException as exc:  # reported by the measuring thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), name=f"bench-client-{i}")
               for i in range(count)]
    for thread in threads:
        thread.start()

    def wait_all() -> None:
        start.wait(60)
        for thread in threads:
            thread.join()

    took = timed(wait_all)
    if errors:
        raise errors[0]
    return took
