#!/usr/bin/env python3
"""Benchmark ft side by side with its peers on loopback, data on tmpfs; write the report.

Runs each case for several rounds and reports medians (with the spread):

  floor      bare socket: sendfile → recv_into a preallocated buffer → file
  tls-floor  the same copy through TLS (self-signed certificate)
  ft         ft put and get of one big file (a real ftserver process, the Client API)
  ft-tls     the same with TLS on, when the installed ft supports it
  ftp        pyftpdlib server, ftplib client (the bench extra)
  rsync      rsync daemon, when rsync is installed
  scp        scp to a local sshd, when sshd is installed
  small      2000 files of 4 KiB, files/s (ft and pyftpdlib)
  many       50 clients × 20 MiB at once, aggregate MB/s (ft thread and process, pyftpdlib)
  rss        ft server peak RSS (thread mode): one 3 GiB upload, and 40 uploads at once

and writes docs/benchmarks.md (targets as ratios, PASS/MISS, the machine) and
docs/bench.png. ``--smoke`` is a tiny run for CI that writes to --out (default: a
new temporary folder), never to docs/.

    python scripts/bench.py                        # everything, full size (several minutes)
    python scripts/bench.py --cases floor,ft,ftp --size-mib 1024 --rounds 5
    python scripts/bench.py --smoke --out /tmp/x   # seconds
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchkit import external, floors, ftcases, ftpcases  # noqa: E402
from benchkit.figures import MiB, Results, make_file, make_small_files, mb_per_s  # noqa: E402
from benchkit.report import chart, markdown  # noqa: E402

CASES = ("floor", "tls-floor", "ft", "ft-tls", "ftp", "rsync", "scp", "small", "many", "rss")
SMOKE = {"size_mib": 4, "rounds": 1, "small_count": 20, "clients": 3, "client_mib": 1,
         "rss_mib": 8, "rss_clients": 3}


def big_file_cases(args: argparse.Namespace, work: Path, results: Results) -> None:
    size = args.size_mib * MiB
    source = make_file(work / "source.bin", size)
    download = work / "download.bin"
    print(f"one file of {args.size_mib} MiB, {args.rounds} rounds", flush=True)
    if "floor" in args.cases:
        for _ in range(args.rounds):
            seconds = floors.bare_copy_seconds(source, download)
            download.unlink()
            results.add("floor", "bare socket copy", "MB/s", mb_per_s(size, seconds))
    if "tls-floor" in args.cases:
        contexts = floors.self_signed_contexts(work)
        for _ in range(args.rounds):
            seconds = floors.tls_copy_seconds(source, download, contexts)
            download.unlink()
            results.add("tls-floor", "bare TLS copy", "MB/s", mb_per_s(size, seconds))
    if "ft" in args.cases:
        with ftcases.ft_server(work / "ft") as server, ftcases.client_for(server) as client:
            for _ in range(args.rounds):
                put_s, get_s = ftcases.big_file_round(client, source, download)
                results.add("ft-put", "ft put", "MB/s", mb_per_s(size, put_s))
                results.add("ft-get", "ft get", "MB/s", mb_per_s(size, get_s))
    if "ft-tls" in args.cases:
        note = ftcases.tls_support()
        if note:
            results.skip(note)
        else:
            with ftcases.ft_server(work / "ft-tls", tls={"enabled": True}) as server:
                options = ftcases.tls_client_options(server)
                with ftcases.client_for(server, **options) as client:
                    for _ in range(args.rounds):
                        put_s, get_s = ftcases.big_file_round(client, source, download)
                        results.add("ft-tls-put", "ft TLS put", "MB/s", mb_per_s(size, put_s))
                        results.add("ft-tls-get", "ft TLS get", "MB/s", mb_per_s(size, get_s))
    if "ftp" in args.cases and not _skipped(ftpcases.available(), results):
        with ftpcases.ftp_server(work / "ftp") as port:
            ftp = ftpcases.connect(port)
            try:
                for _ in range(args.rounds):
                    put_s, get_s = ftpcases.big_file_round(ftp, source, download)
                    results.add("ftp-put", "pyftpdlib put", "MB/s", mb_per_s(size, put_s))
                    results.add("ftp-get", "pyftpdlib get", "MB/s", mb_per_s(size, get_s))
            finally:
                ftp.close()
    if "rsync" in args.cases and not _skipped(external.rsync_missing(), results):
        with external.rsync_daemon(work / "rsync") as (url, share):
            for _ in range(args.rounds):
                put_s, get_s = external.rsync_round(url, share, source, download)
                results.add("rsync-put", "rsync daemon put", "MB/s", mb_per_s(size, put_s))
                results.add("rsync-get", "rsync daemon get", "MB/s", mb_per_s(size, get_s))
    if "scp" in args.cases and not _skipped(external.scp_missing(), results):
        with external.local_sshd(work / "sshd") as options:
            for _ in range(args.rounds):
                put_s, get_s = external.scp_round(options, source, work / "scp-remote.bin",
                                                  download)
                results.add("scp-put", "scp put", "MB/s", mb_per_s(size, put_s))
                results.add("scp-get", "scp get", "MB/s", mb_per_s(size, get_s))
    source.unlink()


def small_files_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"{args.small_count} files of {args.small_kib} KiB, {args.rounds} rounds", flush=True)
    files = make_small_files(work / "small", args.small_count, args.small_kib * 1024)
    with ftcases.ft_server(work / "ft-small") as server:
        for index in range(args.rounds):
            with ftcases.client_for(server) as client:
                seconds = ftcases.small_files_put_seconds(client, files, f"r{index}")
            results.add("ft-small", "ft put, small files", "files/s", len(files) / seconds)
    if not _skipped(ftpcases.available(), results):
        with ftpcases.ftp_server(work / "ftp-small") as port:
            for index in range(args.rounds):
                ftp = ftpcases.connect(port)
                try:
                    seconds = ftpcases.small_files_put_seconds(ftp, files, f"r{index}")
                finally:
                    ftp.close()
                results.add("ftp-small", "pyftpdlib put, small files", "files/s",
                            len(files) / seconds)
    shutil.rmtree(work / "small")


def many_clients_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"{args.clients} clients × {args.client_mib} MiB, {args.rounds} rounds", flush=True)
    size = args.client_mib * MiB
    total = args.clients * size
    source = make_file(work / "many.bin", size)
    for executor in ("thread", "process"):
        with ftcases.ft_server(work / f"ft-many-{executor}", executor) as server:
            for _ in range(args.rounds):
                put_s, get_s = ftcases.concurrent_put_get(server, source, work / "down",
                                                          args.clients)
                results.add(f"ft-many-put-{executor}",
                            f"ft put, {args.clients} clients ({executor})", "MB/s",
                            mb_per_s(total, put_s))
                results.add(f"ft-many-get-{executor}",
                            f"ft get, {args.clients} clients ({executor})", "MB/s",
                            mb_per_s(total, get_s))
    if not _skipped(ftpcases.available(), results):
        with ftpcases.ftp_server(work / "ftp-many") as port:
            for _ in range(args.rounds):
                put_s, get_s = ftpcases.concurrent_put_get(port, source, work / "down",
                                                           args.clients)
                results.add("ftp-many-put", f"pyftpdlib put, {args.clients} clients", "MB/s",
                            mb_per_s(total, put_s))
                results.add("ftp-many-get", f"pyftpdlib get, {args.clients} clients", "MB/s",
                            mb_per_s(total, get_s))
    source.unlink()


def rss_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"server peak RSS: one {args.rss_mib} MiB upload; {args.rss_clients} uploads of "
          f"{args.client_mib} MiB at once", flush=True)
    big = make_file(work / "rss-big.bin", args.rss_mib * MiB)
    results.add("rss-big", f"RSS, one {args.rss_mib} MiB upload", "MiB",
                ftcases.rss_after_puts(work / "ft-rss-big", big, 1))
    big.unlink()
    small = make_file(work / "rss-many.bin", args.client_mib * MiB)
    results.add("rss-many", f"RSS, {args.rss_clients} uploads at once", "MiB",
                ftcases.rss_after_puts(work / "ft-rss-many", small, args.rss_clients))
    small.unlink()


def _skipped(note: str | None, results: Results) -> bool:
    if note is not None and note not in results.skipped:
        results.skip(note)
    return note is not None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(CASES),
                        help=f"comma-separated, from: {', '.join(CASES)} (default: all)")
    parser.add_argument("--size-mib", type=int, default=1024, help="the big file (1024)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (3)")
    parser.add_argument("--small-count", type=int, default=2000)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--client-mib", type=int, default=20)
    parser.add_argument("--rss-mib", type=int, default=3072, help="the one big upload (3072)")
    parser.add_argument("--rss-clients", type=int, default=40)
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where data goes (default /dev/shm: tmpfs, so disk noise is out)")
    parser.add_argument("--out", help="folder for benchmarks.md and bench.png (default docs/)")
    parser.add_argument("--smoke", action="store_true",
                        help="a tiny run of every case, to check the harness works")
    args = parser.parse_args(argv)
    args.cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    unknown = sorted(set(args.cases) - set(CASES))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}")
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    if args.out is None:
        args.out = tempfile.mkdtemp(prefix="ft-bench-out-") if args.smoke else REPO / "docs"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python scripts/bench.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    results = Results()
    work = Path(tempfile.mkdtemp(prefix="ft-bench-", dir=args.dir))
    try:
        if set(args.cases) & {"floor", "tls-floor", "ft", "ft-tls", "ftp", "rsync", "scp"}:
            big_file_cases(args, work, results)
        if "small" in args.cases:
            small_files_case(args, work, results)
        if "many" in args.cases:
            many_clients_case(args, work, results)
        if "rss" in args.cases:
            rss_case(args, work, results)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    settings = {
        "big file": f"{args.size_mib} MiB", "rounds": str(args.rounds),
        "small files": f"{args.small_count} × {args.small_kib} KiB",
        "many clients": f"{args.clients} × {args.client_mib} MiB",
        "RSS cases": f"one {args.rss_mib} MiB upload; {args.rss_clients} × "
                     f"{args.client_mib} MiB at once (thread mode)",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    page = markdown(results, settings, command, args.dir or tempfile.gettempdir())
    (out / "benchmarks.md").write_text(page)
    chart(results, out / "bench.png")
    print(page)
    print(f"wrote {out / 'benchmarks.md'} and {out / 'bench.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
