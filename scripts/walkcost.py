#!/usr/bin/env python3
"""What walks cost the server: one walk of a deep tree, or many walks beside a small request.

    scripts/walkcost.py deep 2000              # server CPU of one walk of a 2,000-deep tree
    scripts/walkcost.py crowd 31 20000 [process]
        # a probe's median stat time, quiet and while 31 other client processes walk a
        # flat 20,000-entry folder over and over

Everything runs on 127.0.0.1 in a temporary folder under /var/tmp (the system disk),
with discovery off; the server is started and stopped by process id. Issue 18's figures
(a 2,000-deep walk, 32 walkers of a 20k tree) were measured with this.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ftclient import Client  # noqa: E402

WALKER = """
import sys, time
sys.path.insert(0, {root!r})
from ftclient import Client
client = Client("127.0.0.1", {port}, timeout=120)
client.connect()
stop = time.monotonic() + {seconds}
while time.monotonic() < stop:
    client.walk("flat")
client.close()
"""


def start_server(base: Path, executor: str) -> tuple[subprocess.Popen[str], int]:
    config = base / "ftserver.yaml"
    config.write_text(yaml.safe_dump({
        "root": str(base / "share"), "state_dir": str(base / "state"), "host": "127.0.0.1",
        "port": 0, "executor": executor, "discovery": {"enabled": False}}))
    proc = subprocess.Popen([sys.executable, "-m", "ftserver", "--config", str(config)],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening on" in line:
            return proc, int(line.rsplit(":", 1)[1])
    raise SystemExit("the server did not start")


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_deep_tree(top: Path, depth: int) -> None:
    """``depth`` nested folders, one small file in each, made by descriptor (no PATH_MAX)."""
    top.mkdir(parents=True)
    fd = os.open(top, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=fd)
        os.close(os.open("f.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
        below = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)


def deep(base: Path, depth: int) -> None:
    make_deep_tree(base / "share" / "deep", depth)
    proc, port = start_server(base, "thread")
    try:
        client = Client("127.0.0.1", port, timeout=600)
        client.connect()
        before, started = server_cpu(proc.pid), time.monotonic()
        entries = client.walk("deep")
        print(f"walk of a tree {depth} deep: {len(entries)} entries, server CPU "
              f"{server_cpu(proc.pid) - before:.2f} s, wall {time.monotonic() - started:.2f} s")
        client.close()
    finally:
        proc.terminate()
        proc.wait(30)


def crowd(base: Path, walkers: int, entries: int, executor: str) -> None:
    flat = base / "share" / "flat"
    flat.mkdir(parents=True)
    for index in range(entries):
        (flat / f"f{index:06}").touch()
    (base / "share" / "one.txt").write_bytes(b"x")
    proc, port = start_server(base, executor)
    try:
        probe = Client("127.0.0.1", port, timeout=120)
        probe.connect()

        def median_stat_ms() -> float:
            times = []
            for _ in range(30):
                started = time.perf_counter()
                probe.stat("one.txt")
                times.append((time.perf_counter() - started) * 1000)
            return statistics.median(times)

        quiet = median_stat_ms()
        code = WALKER.format(root=str(ROOT), port=port, seconds=12)
        crowd_procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(walkers)]
        time.sleep(5)
        loaded = median_stat_ms()
        for walker in crowd_procs:
            walker.wait(60)
        print(f"{walkers} clients walking {entries} entries ({executor} executor): probe stat "
              f"median {quiet:.2f} ms quiet, {loaded:.2f} ms among them ({loaded / quiet:.1f}x)")
        probe.close()
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] not in ("deep", "crowd"):
        raise SystemExit(__doc__)
    base = Path(tempfile.mkdtemp(prefix="walkcost-", dir="/var/tmp"))
    try:
        if sys.argv[1] == "deep":
            deep(base, int(sys.argv[2]))
        else:
            crowd(base, int(sys.argv[2]), int(sys.argv[3]),
                  sys.argv[4] if len(sys.argv) > 4 else "thread")
    finally:
        subprocess.run(["rm", "-rf", str(base)], check=False)  # rmtree recurses: too deep


if __name__ == "__main__":
    main()
