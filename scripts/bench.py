#!/usr/bin/env python3
"""Measure ft's put and get of one big file on loopback, with the data on tmpfs.

Starts a real ftserver process (port 0, 127.0.0.1 only), uploads and downloads
a file of random bytes ``--rounds`` times through the Client API, and prints
the median seconds and MB/s per direction plus the server's peak RSS. Each
put after the first overwrites the same name from scratch (the partial is gone
once published), so every round moves the whole file.

    python scripts/bench.py --size-mib 1024 --rounds 3
    python scripts/bench.py --size-mib 8 --rounds 1        # smoke run (CI)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ftclient import Client  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, "wb") as stream:
        left = size
        while left:
            n = min(left, len(block))
            stream.write(block[:n])
            left -= n


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run(size_mib: int, rounds: int, base_dir: str, executor: str) -> dict[str, float]:
    base = Path(tempfile.mkdtemp(prefix="ft-bench-", dir=base_dir))
    server = ServerProcess(base / "server", executor=executor)
    try:
        server.start()
        source = base / "source.bin"
        make_file(source, size_mib << 20)
        put_times, get_times = [], []
        with Client(server.host, server.port) as client:
            for _ in range(rounds):
                started = time.perf_counter()
                client.put(source, "bench.bin")
                put_times.append(time.perf_counter() - started)
                target = base / "download.bin"
                started = time.perf_counter()
                client.get("bench.bin", target)
                get_times.append(time.perf_counter() - started)
                target.unlink()
        rss = peak_rss_mib(server.proc.pid) if executor == "thread" else float("nan")
    finally:
        server.terminate()
        shutil.rmtree(base, ignore_errors=True)
    size_mb = (size_mib << 20) / 1e6
    put_s, get_s = statistics.median(put_times), statistics.median(get_times)
    return {"put_s": put_s, "get_s": get_s, "put_mbs": size_mb / put_s,
            "get_mbs": size_mb / get_s, "rss_mib": rss}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where data goes (default /dev/shm: tmpfs, so disk noise is out)")
    parser.add_argument("--executor", choices=("thread", "process"), default="thread")
    args = parser.parse_args()
    result = run(args.size_mib, args.rounds, args.dir, args.executor)
    print(f"ft {args.executor}, {args.size_mib} MiB, median of {args.rounds} on {args.dir}:")
    print(f"  put {result['put_s']:.2f} s  {result['put_mbs']:.0f} MB/s")
    print(f"  get {result['get_s']:.2f} s  {result['get_mbs']:.0f} MB/s")
    print(f"  server peak RSS {result['rss_mib']:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
