#!/usr/bin/env python3
"""Benchmark ft side by side with its peers on loopback, data on tmpfs; write the report.

Runs each case for several rounds and reports medians (with the spread):

  floor      bare socket: sendfile → recv_into a preallocated buffer → file
  tls-floor  the same copy through TLS (self-signed certificate)
  hashed     bare copies that prove their bytes with SHA-256 as ft does (no protocol):
             hashed at both ends (the receiver hashing inline, or on a thread), and
             at the receiver only (the sender uses sendfile and a known digest)
  ft         ft put and get of one big file (a real ftserver process, the Client API)
  ft-tls     the same with TLS on, when the installed ft supports it
  ftp        pyftpdlib server, ftplib client (the bench extra)
  rsync      rsync daemon, when rsync is installed
  scp        scp to a local sshd, when sshd is installed
  small      2000 files of 4 KiB, files/s (ft and pyftpdlib)
  many       50 clients × 20 MiB at once, aggregate MB/s (ft thread and process, pyftpdlib)
  rss        ft server peak RSS (thread mode): one 3 GiB upload, and 40 uploads at once
  http       curl GET of one big file from ftserver's HTTP, nginx and copyparty; curl -T
             into ftserver and into copyparty, beside ftclient put (each when installed)
  placement  ft as deployed, on the server's defaults: the share and state_dir each on
             tmpfs or on the disk (--disk-dir, ext4 under /var/tmp): big file put and get,
             and the small files' put -r, for each of the four shapes in turn

Every timed step also counts the CPU seconds that it cost both ends (this process
and every process under it), per GiB moved. Writes docs/benchmarks.md (targets as
ratios, PASS/MISS, the machine) and docs/bench.png. ``--smoke`` is a tiny run for
CI that writes to --out (default: a new temporary folder), never to docs/.
``--merge`` keeps the page already in --out and puts in it only the sections of
the cases that have their own (http), each replacing its own earlier one.

    python scripts/bench.py                        # everything, full size (several minutes)
    python scripts/bench.py --cases floor,ft,ftp --size-mib 1024 --rounds 5
    python scripts/bench.py --smoke --out /tmp/x   # seconds
    python scripts/bench.py --cases placement --size-mib 512 --rounds 5 --out /tmp/x
    python scripts/bench.py --cases http --rounds 5 --out docs --merge
    python scripts/bench.py --cases http --rounds 5 --dir /var/tmp --out docs --merge
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shlex
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchkit import (  # noqa: E402
    external,
    floors,
    ftcases,
    ftpcases,
    httpcases,
    httpreport,
    placement,
)
from benchkit.figures import (  # noqa: E402
    MiB,
    Results,
    Took,
    make_file,
    make_small_files,
    mb_per_s,
)
from benchkit.merge import merge_into  # noqa: E402
from benchkit.report import (  # noqa: E402
    CLIENT_CPU_UNIT,
    CPU_UNIT,
    FILE_CPU_UNIT,
    SERVER_CPU_UNIT,
    chart,
    chart_missing,
    markdown,
)

CASES = ("floor", "tls-floor", "hashed", "ft", "ft-tls", "ftp", "rsync", "scp", "small", "many",
         "rss", "http", "placement")
SMOKE = {"size_mib": 4, "rounds": 1, "small_count": 20, "clients": 3, "client_mib": 1,
         "rss_mib": 8, "rss_clients": 3}


def add_took(results: Results, key: str, label: str, size: int, took: Took) -> None:
    """A timed step's MB/s, and its CPU seconds (both ends) per GiB moved."""
    results.add(key, label, "MB/s", mb_per_s(size, took.seconds))
    results.add(f"{key}-cpu", label, CPU_UNIT, took.cpu * (1 << 30) / size)


def add_files_took(results: Results, key: str, label: str, count: int, took: Took) -> None:
    """Files/s of a many-files step, and its CPU µs (both ends) per file."""
    results.add(key, label, "files/s", count / took.seconds)
    results.add(f"{key}-cpu", label, FILE_CPU_UNIT, took.cpu * 1e6 / count)


def big_file_cases(args: argparse.Namespace, work: Path, results: Results) -> None:
    """Every contender once per round, in turn, so that each round's ratios share one load."""
    size = args.size_mib * MiB
    source = make_file(work / "source.bin", size)
    download = work / "download.bin"
    print(f"one file of {args.size_mib} MiB, {args.rounds} rounds", flush=True)
    with contextlib.ExitStack() as stack:
        contenders = big_file_contenders(args, work, stack, results, source)
        for _ in range(args.rounds):
            for key, label, run_round in contenders:
                took = run_round(source, download)
                if len(took) == 1:
                    add_took(results, key, label, size, took[0])
                else:
                    add_took(results, f"{key}-put", f"{label} put", size, took[0])
                    add_took(results, f"{key}-get", f"{label} get", size, took[1])
    source.unlink()


Round = Callable[[Path, Path], tuple[Took, ...]]


def big_file_contenders(args: argparse.Namespace, work: Path, stack: contextlib.ExitStack,
                        results: Results, source: Path) -> list[tuple[str, str, Round]]:
    """(key, label, one round) for each big-file case asked for; servers live on ``stack``."""
    contenders: list[tuple[str, str, Round]] = []

    def once(copy: Callable[[Path, Path], Took]) -> Round:
        def run(source: Path, download: Path) -> tuple[Took, ...]:
            took = copy(source, download)
            download.unlink()
            return (took,)
        return run

    if "floor" in args.cases:
        contenders.append(("floor", "bare socket copy", once(floors.bare_copy)))
    if "tls-floor" in args.cases:
        contexts = floors.self_signed_contexts(work)
        contenders.append(("tls-floor", "bare TLS copy",
                           once(lambda s, d: floors.tls_copy(s, d, contexts))))
    if "hashed" in args.cases:
        digest = floors.file_digest(source)
        for key, label, sender_hashes, receiver_thread in (
                ("hashed-both-inline", "hashed copy, both ends (receiver inline)", True, False),
                ("hashed-both-thread", "hashed copy, both ends (receiver thread)", True, True),
                ("hashed-receiver", "hashed copy, receiver only (thread)", False, True)):
            contenders.append((key, label, once(
                lambda s, d, h=sender_hashes, t=receiver_thread:
                    floors.hashed_copy(s, d, h, t, digest))))
    if "ft" in args.cases:
        server = stack.enter_context(ftcases.ft_server(work / "ft"))
        client = stack.enter_context(ftcases.client_for(server))
        contenders.append(("ft", "ft", lambda s, d: ftcases.big_file_round(client, s, d)))
    if "ft-tls" in args.cases and not _skipped(ftcases.tls_support(), results):
        server = stack.enter_context(ftcases.ft_server(work / "ft-tls", tls={"enabled": True}))
        tls_client = stack.enter_context(
            ftcases.client_for(server, **ftcases.tls_client_options(server)))
        contenders.append(("ft-tls", "ft TLS",
                           lambda s, d: ftcases.big_file_round(tls_client, s, d)))
    if "ftp" in args.cases and not _skipped(ftpcases.available(), results):
        port = stack.enter_context(ftpcases.ftp_server(work / "ftp"))
        ftp = ftpcases.connect(port)
        stack.callback(ftp.close)
        contenders.append(("ftp", "pyftpdlib",
                           lambda s, d: ftpcases.big_file_round(ftp, s, d)))
    if "rsync" in args.cases and not _skipped(external.rsync_missing(), results):
        url, share = stack.enter_context(external.rsync_daemon(work / "rsync"))
        contenders.append(("rsync", "rsync daemon",
                           lambda s, d: external.rsync_round(url, share, s, d)))
    if "scp" in args.cases and not _skipped(external.scp_missing(), results):
        options = stack.enter_context(external.local_sshd(work / "sshd"))
        remote = work / "scp-remote.bin"
        contenders.append(("scp", "scp",
                           lambda s, d: external.scp_round(options, s, remote, d)))
    return contenders


def small_files_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"{args.small_count} files of {args.small_kib} KiB, {args.rounds} rounds", flush=True)
    files = make_small_files(work / "small", args.small_count, args.small_kib * 1024)
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(ftcases.ft_server(work / "ft-small"))
        port = None
        if not _skipped(ftpcases.available(), results):
            port = stack.enter_context(ftpcases.ftp_server(work / "ftp-small"))
        for index in range(args.rounds):  # in turn, so each round's ratio shares one load
            with ftcases.client_for(server) as client:
                took = ftcases.small_files_put(client, files, f"r{index}")
            add_files_took(results, "ft-small", "ft put, small files", len(files), took)
            if port is None:
                continue
            ftp = ftpcases.connect(port)
            try:
                took = ftpcases.small_files_put(ftp, files, f"r{index}")
            finally:
                ftp.close()
            add_files_took(results, "ftp-small", "pyftpdlib put, small files", len(files), took)
    shutil.rmtree(work / "small")


def many_clients_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"{args.clients} clients × {args.client_mib} MiB, {args.rounds} rounds", flush=True)
    size = args.client_mib * MiB
    total = args.clients * size
    source = make_file(work / "many.bin", size)
    down = work / "down"
    with contextlib.ExitStack() as stack:
        contenders: list[tuple[str, str, Callable[[], tuple[Took, Took]]]] = []
        for executor in ("thread", "process"):
            server = stack.enter_context(ftcases.ft_server(work / f"ft-many-{executor}",
                                                           executor))
            contenders.append(
                (f"ft-many-{{}}-{executor}", f"ft {{}}, {args.clients} clients ({executor})",
                 lambda server=server: ftcases.concurrent_put_get(server, source, down,
                                                                  args.clients)))
        if not _skipped(ftpcases.available(), results):
            port = stack.enter_context(ftpcases.ftp_server(work / "ftp-many"))
            contenders.append(
                ("ftp-many-{}", f"pyftpdlib {{}}, {args.clients} clients",
                 lambda: ftpcases.concurrent_put_get(port, source, down, args.clients)))
        for _ in range(args.rounds):  # in turn, so each round's ratios share one load
            for key, label, run_round in contenders:
                put, get = run_round()
                add_took(results, key.format("put"), label.format("put"), total, put)
                add_took(results, key.format("get"), label.format("get"), total, get)
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


def placement_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"share and state_dir placed: {args.size_mib} MiB, {args.small_count} × "
          f"{args.small_kib} KiB, {args.rounds} rounds", flush=True)
    disk = Path(tempfile.mkdtemp(prefix="ft-bench-", dir=args.disk_dir))
    try:
        big = make_file(work / "placed.bin", args.size_mib * MiB)
        small = make_small_files(work / "placed-small", args.small_count, args.small_kib * 1024)
        size = big.stat().st_size

        def record(key: str, label: str, kind: str, took: Took) -> None:
            if kind == "small":
                add_files_took(results, key, label, len(small), took)
            else:
                add_took(results, key, label, size, took)
        placement.run_rounds(placement.shapes(work, disk), args.rounds, big, small, work,
                             record)
        big.unlink()
        shutil.rmtree(work / "placed-small")
    finally:
        shutil.rmtree(disk, ignore_errors=True)


def http_case(args: argparse.Namespace, work: Path, results: Results) -> None:
    print(f"HTTP: one file of {args.size_mib} MiB by curl (and ftclient put), {args.rounds} "
          "rounds", flush=True)
    if _skipped(httpcases.curl_missing(), results):
        return
    size = args.size_mib * MiB
    source = make_file(work / "http-source.bin", size)

    def record(step: httpcases.Step, took: Took, server_cpu: float) -> None:
        add_took(results, step.key, step.label, size, took)
        per_gib = (1 << 30) / size
        results.add(f"{step.key}-server-cpu", step.label, SERVER_CPU_UNIT, server_cpu * per_gib)
        results.add(f"{step.key}-client-cpu", step.label, CLIENT_CPU_UNIT,
                    (took.cpu - server_cpu) * per_gib)
    try:
        httpcases.run_rounds(work, source, args.rounds, record,
                             lambda note: _skipped(note, results))
    finally:
        source.unlink()


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
    parser.add_argument("--disk-dir", default="/var/tmp",
                        help="the real disk for the placement case (default /var/tmp)")
    parser.add_argument("--out", help="folder for benchmarks.md and bench.png (default docs/)")
    parser.add_argument("--merge", action="store_true",
                        help="keep --out's benchmarks.md and put in it only this run's own "
                             "case sections (http), each replacing its earlier one; no chart")
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
    load_at_start = " ".join(f"{load:.1f}" for load in os.getloadavg())
    started = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    work = Path(tempfile.mkdtemp(prefix="ft-bench-", dir=args.dir))
    groups = [
        ("big file", big_file_cases,
         bool(set(args.cases) & {"floor", "tls-floor", "hashed", "ft", "ft-tls", "ftp", "rsync",
                                "scp"})),
        ("small files", small_files_case, "small" in args.cases),
        ("many clients", many_clients_case, "many" in args.cases),
        ("RSS", rss_case, "rss" in args.cases),
        ("HTTP", http_case, "http" in args.cases),
        ("placement", placement_case, "placement" in args.cases),
    ]
    failed = False
    try:
        for name, run_group, wanted in groups:
            if not wanted:
                continue
            try:
                run_group(args, work, results)
            except Exception as exc:  # keep the other groups' figures; fail at the end
                traceback.print_exc()
                results.skip(f"{name}: the run failed ({type(exc).__name__}: {exc})")
                failed = True
    finally:
        shutil.rmtree(work, ignore_errors=True)
    settings = {
        "big file": f"{args.size_mib} MiB", "rounds": str(args.rounds),
        "small files": f"{args.small_count} × {args.small_kib} KiB",
        "many clients": f"{args.clients} × {args.client_mib} MiB",
        "RSS cases": f"one {args.rss_mib} MiB upload; {args.rss_clients} × "
                     f"{args.client_mib} MiB at once (thread mode)",
        "placement case": f"share and state_dir each on {args.dir} or on {args.disk_dir}; "
                          "server defaults; big file and small files as above",
        "load average at the start (1, 5, 15 min)": load_at_start,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    no_chart = chart_missing()
    if no_chart:
        results.skip(no_chart)
    data_dir = args.dir or tempfile.gettempdir()
    own = httpreport.section(results, command, data_dir, started, args.size_mib, args.rounds,
                             load_at_start)
    if args.merge:
        merge_into(out / "benchmarks.md", [own] if own else [])
        print("\n".join(own))
        print(f"merged this run's own sections into {out / 'benchmarks.md'} (no chart)")
        return 1 if failed else 0
    page = markdown(results, settings, command, data_dir,
                    (args.size_mib * MiB, args.small_count, args.small_kib), own)
    (out / "benchmarks.md").write_text(page)
    print(page)
    if no_chart:
        print(f"wrote {out / 'benchmarks.md'} ({no_chart})")
    else:
        chart(results, out / "bench.png")
        print(f"wrote {out / 'benchmarks.md'} and {out / 'bench.png'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
