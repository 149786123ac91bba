"""CPU per small file on each side: where the small-files figure of bench.py goes.

Runs a real ftserver process and, in this process, a client that uploads
``--count`` files of ``--kib`` KiB with ``Client.put_many`` (pipelined, as
``ftclient put -r`` sends them), ``--rounds`` times over one connection. For each
round it reads both processes' CPU time from /proc/PID/stat and prints the
medians (and ranges) of CPU µs per file for the server (user and system) and
the client, files/s, and the load average before and after. Data goes under
``--dir`` (default /dev/shm) and is deleted at the end. Compare two checkouts
by running each one's copy alternately: the machine's noise is larger than
most single changes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchkit import ftcases  # noqa: E402
from benchkit.figures import make_small_files, proc_times  # noqa: E402


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} ({min(values):.0f}–{max(values):.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--kib", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default="/dev/shm")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="ft-smallcpu-", dir=args.dir))
    figures: dict[str, list[float]] = {"server user": [], "server sys": [], "client": [],
                                       "files/s": []}
    try:
        files = make_small_files(work / "source", args.count, args.kib * 1024)
        with ftcases.ft_server(work / "server") as server, ftcases.client_for(server) as client:
            for index in range(args.rounds):
                server_before, client_before = proc_times(server.proc.pid), os.times()
                seconds = ftcases.small_files_put(client, files, f"round{index}").seconds
                server_after, client_after = proc_times(server.proc.pid), os.times()
                per_file = 1e6 / args.count
                figures["server user"].append((server_after[0] - server_before[0]) * per_file)
                figures["server sys"].append((server_after[1] - server_before[1]) * per_file)
                figures["client"].append((client_after.user + client_after.system
                                          - client_before.user - client_before.system)
                                         * per_file)
                figures["files/s"].append(args.count / seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.count} × {args.kib} KiB, {args.rounds} rounds; medians (min–max); "
          f"load {load_before:.2f} → {os.getloadavg()[0]:.2f}")
    for name, values in figures.items():
        unit = "" if name == "files/s" else " µs/file"
        print(f"  {name + unit:22} {spread(values)}")


if __name__ == "__main__":
    main()
