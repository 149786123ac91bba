"""The report: targets checked as ratios, the Markdown page, the bar chart, the machine.

Targets come from issues 6 and 14; each names the figure measured, what it is compared
with, and the least ratio that passes. A target whose figures are missing (a
case skipped) is listed as "not measured", never as passed.
"""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from benchkit.figures import MiB, Results

PLACED = (("mem", "mem"), ("mem", "disk"), ("disk", "disk"), ("disk", "mem"))
"""The placement case's shapes, (share on, state_dir on): tmpfs or the system disk."""


@dataclass(frozen=True)
class Target:
    what: str
    figure: str
    against: str | None
    """Key of the figure compared with, or None for an absolute floor or ceiling."""
    ratio: float
    """Least ratio (figure / against), or the absolute bound when ``against`` is None."""
    at_most: bool = False
    """For an absolute bound: True when the figure must not exceed it (memory)."""


TARGETS = (
    Target("put ≥ 0.55× floor", "ft-put", "floor", 0.55),
    Target("put ≥ 0.8× pyftpdlib", "ft-put", "ftp-put", 0.8),
    Target("get ≥ 0.65× floor", "ft-get", "floor", 0.65),
    Target("get ≥ 1.0× pyftpdlib", "ft-get", "ftp-get", 1.0),
    Target("TLS put ≥ 0.7× bare TLS copy", "ft-tls-put", "tls-floor", 0.7),
    Target("TLS get ≥ 0.7× bare TLS copy", "ft-tls-get", "tls-floor", 0.7),
    Target("small files ≥ 5× pyftpdlib", "ft-small", "ftp-small", 5.0),
    Target("small files ≥ 3000 files/s", "ft-small", None, 3000.0),
    Target("50 clients put, thread ≥ pyftpdlib", "ft-many-put-thread", "ftp-many-put", 1.0),
    Target("50 clients get, thread ≥ pyftpdlib", "ft-many-get-thread", "ftp-many-get", 1.0),
    Target("50 clients put, process ≥ pyftpdlib", "ft-many-put-process", "ftp-many-put", 1.0),
    Target("50 clients get, process ≥ pyftpdlib", "ft-many-get-process", "ftp-many-get", 1.0),
    Target("RSS, one big upload ≤ 96 MiB", "rss-big", None, 96.0, at_most=True),
    Target("RSS, 40 concurrent uploads ≤ 96 MiB", "rss-many", None, 96.0, at_most=True),
    Target("put, state_dir on another filesystem ≥ 0.8× beside the share (issue 14)",
           "place-mem-disk-put", "place-mem-mem-put", 0.8),
)


REFERENCES = (
    ("hashed copy, both ends, receiver on a thread ÷ floor", "hashed-both-thread", "floor"),
    ("hashed copy, both ends, receiver inline ÷ floor", "hashed-both-inline", "floor"),
    ("hashed copy, receiver only ÷ floor", "hashed-receiver", "floor"),
    ("ft put ÷ hashed copy, both ends, receiver on a thread", "ft-put", "hashed-both-thread"),
    ("ft put ÷ hashed copy, both ends, receiver inline", "ft-put", "hashed-both-inline"),
    ("ft get ÷ hashed copy, receiver only", "ft-get", "hashed-receiver"),
)
"""Ratios that explain the targets, not targets: (what, figure, compared with). The
hashed copies prove their bytes as ft does, with no protocol: what hashing at both
ends (a put) or at the receiver (a get of a cached digest) leaves of the floor."""

CPU_UNIT = "CPU s/GiB"
"""Unit of the big-file CPU figures: seconds of CPU, both ends together, per GiB moved."""
FILE_CPU_UNIT = "CPU µs/file"
"""Unit of the small-files CPU figures: µs of CPU, both ends together, per file."""
SERVER_CPU_UNIT = "server CPU s/GiB"
"""The HTTP case's CPU of one side only: the server's process tree, per GiB moved."""
CLIENT_CPU_UNIT = "client CPU s/GiB"
"""The HTTP case's CPU of the other side: both ends less the server's, per GiB moved."""
SIDE_CPU_UNITS = frozenset({SERVER_CPU_UNIT, CLIENT_CPU_UNIT})
"""Shown only in their case's own section (httpreport.py), not in the general tables."""
CPU_UNITS = {CPU_UNIT: ("s/GiB", "MB/s", (1 << 30) / 1e6, "{:.2f}"),
             FILE_CPU_UNIT: ("µs/file", "files/s", 1e6, "{:.0f}")}
"""For each CPU unit: how its value reads, the throughput it bounds, the throughput per
core at one CPU second (or µs) per unit, and the value's format."""


def ratio(figure: str, against: str, results: Results
          ) -> tuple[str, float | None, list[float]]:
    """The ratio of two figures' medians as text, with the single rounds' range; its value;
    and the single rounds' ratios (none unless both figures have the same rounds)."""
    value, base = results.median(figure), results.median(against)
    if value is None or not base:
        return "", None, []
    shown = f"{value / base:.2f}×"
    mine, theirs = results.figures[figure].values, results.figures[against].values
    per_round: list[float] = []
    if len(mine) == len(theirs) > 1:  # rounds ran in turn: round i's pair shares one load
        per_round = [a / b for a, b in zip(mine, theirs, strict=True)]
        shown += f" (rounds {min(per_round):.2f}–{max(per_round):.2f})"
    return shown, value / base, per_round


def check(target: Target, results: Results) -> tuple[str, str]:
    """(the ratio or value as text, PASS / MISS / not measured). A ratio's verdict also
    says how many single rounds met the target when some did and some did not: such a
    verdict is the load of the moment's as much as the code's."""
    value = results.median(target.figure)
    if value is None:
        return "", "not measured"
    if target.against is None:
        ok = value <= target.ratio if target.at_most else value >= target.ratio
        return f"{value:.0f}", "PASS" if ok else "MISS"
    shown, measured, per_round = ratio(target.figure, target.against, results)
    if measured is None:
        return "", "not measured"
    verdict = "PASS" if measured >= target.ratio else "MISS"
    met = sum(one >= target.ratio for one in per_round)
    if 0 < met < len(per_round):
        verdict += f" ({met} of {len(per_round)} rounds met it)"
    return shown, verdict


# ---------------------------------------------------------------- the machine


def _first(path: str, prefix: str) -> str:
    try:
        with open(path) as stream:
            for line in stream:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def filesystem_of(folder: str) -> str:
    """The type and mount point of the filesystem holding ``folder`` (from /proc/mounts)."""
    real = os.path.realpath(folder)
    best = ("", "unknown")
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, mount, kind, *_ = line.split()
                if (real == mount or real.startswith(mount.rstrip("/") + "/")) and \
                        len(mount) > len(best[0]):
                    best = (mount, kind)
    except OSError:
        pass
    return f"{best[1]} ({best[0]})"


def machine(data_dir: str) -> dict[str, str]:
    return {
        "CPU": _first("/proc/cpuinfo", "model name"),
        "cores": str(os.cpu_count()),
        "memory": _first("/proc/meminfo", "MemTotal"),
        "kernel": f"{platform.system()} {platform.release()}",
        "Python": sys.version.split()[0],
        "data on": f"{data_dir}: {filesystem_of(data_dir)}",
        "load average when the report was written (1, 5, 15 min)": " ".join(
            f"{load:.1f}" for load in os.getloadavg()),
    }


# ---------------------------------------------------------------- Markdown and PNG


def markdown(results: Results, settings: dict[str, str], command: str, data_dir: str,
             placed: tuple[int, int, int] = (0, 0, 0), sections: list[str] | None = None
             ) -> str:
    """The page; ``placed`` is the placement case's (big file bytes, small files, KiB each);
    ``sections``, the lines of the cases' own sections (httpreport.py), after it."""
    lines = ["# Benchmarks", "",
             "Produced by `scripts/bench.py` (see README, \"Benchmark\"). Client and server run "
             "on one machine over loopback (127.0.0.1); all data is on tmpfs so that disk "
             "noise does not dominate, except where the placement case puts the server's "
             "share or state_dir on the system disk. Each figure is the median of the "
             "rounds, with the lowest and highest round beside it: the machine is shared, "
             "so the spread matters.", "", f"Command: `{command}`", "", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in machine(data_dir).items()]
    lines += ["", "## Settings", ""]
    lines += [f"- {key}: {value}" for key, value in settings.items()]
    lines += ["", "## Targets (issues 6 and 14)", "",
              "Ratios are of medians; beside each, the lowest and highest ratio of a single "
              "round (the contenders take turns within a round); where single rounds fall on "
              "both sides of a target, the verdict says how many met it.", "",
              "| target | measured | result |", "|---|---|---|"]
    for target in TARGETS:
        shown, verdict = check(target, results)
        lines.append(f"| {target.what} | {shown} | {verdict} |")
    references = [(what, ratio(figure, against, results)[0])
                  for what, figure, against in REFERENCES]
    if any(shown for _, shown in references):
        lines += ["", "## Reference ratios (not targets)", "",
                  "How much of the floor is left to any copy that proves its bytes as ft does, "
                  "and how near ft comes to such a copy.", "",
                  "| ratio | measured |", "|---|---|"]
        lines += [f"| {what} | {shown} |" for what, shown in references if shown]
    lines += placement_table(results, *placed)
    lines += sections or []
    lines += ["", "## Figures", "", "| figure | median | unit | rounds (min–max) | n |",
              "|---|---|---|---|---|"]
    for figure in results.figures.values():
        if figure.unit not in CPU_UNITS and figure.unit not in SIDE_CPU_UNITS:
            lines.append(f"| {figure.label} | {figure.median:.1f} | {figure.unit} | "
                         f"{figure.spread} | {len(figure.values)} |")
    lines += cpu_table(results)
    lines += cpu_gaps(results)
    if results.skipped:
        lines += ["", "## Not measured", ""]
        lines += [f"- {note}" for note in results.skipped]
    lines += ["", "## How to read this", "", *HOW_TO_READ]
    return "\n".join(lines) + "\n"


def placement_table(results: Results, size: int, count: int, kib: int) -> list[str]:
    """One row per shape of the placement case: its put, get and put -r, each beside the
    same share with state_dir on the share's own filesystem."""
    keys = [key.removesuffix("-put") for key in results.figures
            if key.startswith("place-") and key.endswith("-put")]
    if not keys or not size or not count:
        return []
    lines = ["", "## Where the share and state_dir live (issue 14)", "",
             "The server on its defaults, its share and its state_dir each on tmpfs (mem) or "
             "on the system disk (disk, ext4); the client's files stay on tmpfs. Shapes take "
             "turns in each round, the order moved on by one a round. \"÷ beside\" is each "
             "put's speed over that of the same share with state_dir on the share's own "
             "filesystem: partials live in the "
             "share's `.ft-partials`, so it should be near 1.", "",
             f"| share, state_dir | {size / MiB:.0f} MiB put: s | put MB/s (min–max) | "
             f"÷ beside | get MB/s (min–max) | put -r {count} × {kib} KiB: s | "
             "files/s (min–max) | ÷ beside |", "|---|---|---|---|---|---|---|---|"]
    for key in keys:
        put, get, small = (results.figures.get(f"{key}-{kind}") for kind in ("put", "get",
                                                                               "small"))
        beside = "-".join(key.split("-")[:2] + key.split("-")[1:2])
        row = [results.figures[f"{key}-put"].label.split(", ", 1)[1]]
        for figure, amount, kind in ((put, size / 1e6, "put"), (get, 0, "get"),
                                     (small, count, "small")):
            if figure is None or not figure.values:
                row += [""] * (1 if kind == "get" else 3)
                continue
            if amount:
                row.append(f"{amount / figure.median:.2f}")
            row.append(f"{figure.median:.0f}" + (f" ({figure.spread})" if figure.spread
                                                  else ""))
            if kind != "get":
                row.append("" if beside == key else
                           ratio(f"{key}-{kind}", f"{beside}-{kind}", results)[0])
        lines.append("| " + " | ".join(row) + " |")
    on_disk = [(what, ratio(f"place-disk-disk-{kind}", f"place-mem-mem-{kind}", results)[0])
               for what, kind in (("put", "put"), ("put -r of the small files", "small"))]
    notes = [f"- {what}, share and state_dir both on the disk ÷ both on tmpfs: {shown}"
             for what, shown in on_disk if shown]
    lines += ["", *notes] if notes else []
    return lines


def cpu_table(results: Results) -> list[str]:
    """CPU per GiB (or file) of each timed step, and the most the machine's cores allow it."""
    cores = os.cpu_count() or 1
    rows = [f for f in results.figures.values() if f.unit in CPU_UNITS and f.values]
    if not rows:
        return []
    lines = ["", "## CPU per GiB moved (and per small file)", "",
             "CPU (user and system) that each step cost, both ends together (the bench "
             "process and every process under it: servers, their workers, ssh), per GiB "
             f"moved or per file; and the most that this CPU cost allows on {cores} cores, "
             "were nothing else to wait for and nothing else running.", "",
             "| step | CPU | rounds (min–max) | at most | measured |", "|---|---|---|---|---|"]
    for figure in rows:
        unit, rate, per_core, shape = CPU_UNITS[figure.unit]
        throughput = results.median(figure.key.removesuffix("-cpu"))
        # CPU time comes in clock ticks: a tiny smoke run may have cost none at all
        ceiling = (f"{cores * per_core / figure.median:.0f} {rate}" if figure.median else "")
        lines.append(f"| {figure.label} | {shape.format(figure.median)} {unit} | "
                     f"{shape.format(min(figure.values))}–{shape.format(max(figure.values))} | "
                     f"{ceiling} | "
                     f"{'' if throughput is None else f'{throughput:.0f} {rate}'} |")
    return lines


CPU_GAPS = (
    ("ft-put-cpu", "ftp-put-cpu", 2),
    ("ft-get-cpu", "ftp-get-cpu", 1),
    ("ft-many-put-thread-cpu", "ftp-many-put-cpu", 2),
    ("ft-many-get-thread-cpu", "ftp-many-get-cpu", 1),
    ("ft-many-put-process-cpu", "ftp-many-put-cpu", 2),
    ("ft-many-get-process-cpu", "ftp-many-get-cpu", 1),
)
"""(ft's CPU figure, pyftpdlib's for the same case, the SHA-256 passes over each byte
that ft makes and pyftpdlib does not: a get's server sends a cached digest)."""


def cpu_gaps(results: Results) -> list[str]:
    """ft's CPU per GiB beyond pyftpdlib's, case by case, from this run's medians."""
    rows = []
    for ours, theirs, passes in CPU_GAPS:
        mine, peer = results.median(ours), results.median(theirs)
        if mine is not None and peer is not None:
            rows.append(f"| {results.figures[ours].label} − {results.figures[theirs].label} "
                        f"| {mine - peer:+.2f} s/GiB | {passes} |")
    if not rows:
        return []
    return ["", "## CPU beyond pyftpdlib's", "",
            "ft's CPU per GiB (both ends) minus pyftpdlib's, medians of this run, beside "
            "the SHA-256 passes over each byte that ft makes and pyftpdlib does not. "
            "Each pass is about 0.75 s of CPU a GiB on this kind of core; what is "
            "left over is the rest of ft's work per byte (fsync and rename per file, the "
            "protocol, its threads).", "",
            "| ft − pyftpdlib | more CPU | SHA-256 passes |", "|---|---|---|", *rows]


HOW_TO_READ = [
    "- The floor copies bytes and checks nothing. ft proves every byte: the sender and "
    "the receiver each compute the file's SHA-256 (about 0.75 s of CPU per GiB each on "
    "this kind of core), and the receiver fsyncs and renames before it answers. "
    "pyftpdlib and scp make no end-to-end check of the file (scp trusts SSH's "
    "transport MAC); rsync checks a whole-file checksum.",
    "- Client and server share the machine's cores, so whatever CPU one side spends, "
    "the other lacks; the table \"CPU per GiB moved\" counts both ends together. "
    "Once both cores are busy (and other jobs share them), throughput follows CPU per "
    "byte, which is why the ratios against the floor and pyftpdlib move with the load. "
    "On this virtual machine the kernel's own cost varies too: a bare two-process "
    "copy of 1 GiB (sendfile, recv_into, write to tmpfs, no hashing) cost its "
    "receiver from 0.9 to 2.3 s of system time from one run to the next, the same "
    "code on the same file, which is most of the spread between rounds. "
    "Between two machines each side has its own cores, and the receiver's hashing "
    "thread overlaps the network instead of competing with the peer.",
    "- How ft moves bytes: a sender that must hash reads 256 KiB, hashes it and sends "
    "it on one thread while it is still in the core's cache (cheaper in CPU, at both "
    "ends, than sendfile(2) plus a second thread hashing through the page cache); "
    "a receiver reads with recv_into into a few preallocated 256 KiB buffers, writes "
    "each, and hands it to a hashing thread (hashlib releases the GIL), so hashing "
    "overlaps the network and the disk. Memory per transfer is fixed at 1 MiB of "
    "buffers. A get of a file whose digest is cached is pure sendfile on the server "
    "(over TLS: read and encrypt, no hash). Tried and measured, not kept: splice(2) "
    "on receive saved the receiver about 0.2 s of CPU a GiB (5% of a put's at "
    "both ends); hashing through a memory map and sending with sendfile saved the "
    "client 0.08-0.16 s a GiB but cost the server's receive 0.23-0.51 s more.",
    "- Where a target is missed, and why: proving every byte costs SHA-256 at both "
    "ends of a put (about 0.75 s of CPU a GiB each) and at the receiver of a get (the "
    "server sends a cached digest), on the same two cores that move the bytes. The "
    "hashed copies measure that cost apart from anything ft does: the reference ratios "
    "show how much of the floor a bare copy keeps once it hashes as ft does, and how "
    "near ft's put and get come to it. A put target at 0.55× the floor asks for about "
    "what a bare copy hashing at both ends reaches here, with no protocol, no fsync "
    "and no rename. A TLS put pays both hashes on top of the encryption that the bare "
    "TLS copy pays alone, and the server's SSL reads (one 16 KiB record at a time, "
    "each holding the GIL) take turns with its hashing thread, as py-spy shows.",
    "- The 50-client cases keep both cores busy, so they follow CPU per byte: the "
    "table \"CPU beyond pyftpdlib's\" sets each of ft's gaps beside the SHA-256 "
    "passes that account for most of it.",
    "- Small files go pipelined "
    "(requests, bytes and ends back to back, up to 128 files unanswered, replies "
    "read as they come), and the server answers a pipelined run in bursts (up to "
    "64 files or 0.25 s): one set of folder locks, one walk and one free-space "
    "check per folder, one fsync per folder, one digest-cache transaction, one "
    "write of the log lines and one send of the replies per burst, no reply before "
    "the fsync that covers it; a name lock is a byte of one file, held by the burst "
    "until its replies are settled. Every frame goes through the JSON codec: the "
    "hand-written frame readers and writers that once skipped it saved 6% of small "
    "files per second on a quiet machine, and were removed (issue 14). What is left "
    "per file (on a quiet machine about 55 µs of the server's user CPU and 20 µs of "
    "its system CPU, 30 µs of the client's, by scripts/smallcpu.py) is mostly the "
    "file's own "
    "syscalls (open, write, fsync, utimensat, rename, about 11 a file at the "
    "server) and the Python that issues them, on the same two cores as the "
    "client. pyftpdlib does none of the fsyncs, no hashing and keeps no cache.",
    "- Where the share and state_dir live (issue 14): a partial waits in the share's "
    "own `.ft-partials`, so an upload is written once, on the share's filesystem, "
    "wherever state_dir is. The issue measured the code before that change, share on "
    "tmpfs: a 1 GiB put took 3.6 s with state_dir beside the share and 10.5 s with it "
    "on the system disk, 2000 small files 1.0 s and 6.9 s. state_dir now sees no "
    "fsync per file: strace of a 300-file put -r and a 64 MiB put with state_dir on "
    "ext4 found all 303 of the file fsyncs in the share's `.ft-partials` and none in "
    "state_dir after start-up (the digest cache is SQLite in WAL mode, synchronous="
    "NORMAL; locks are byte ranges of one file). On the disk, every put waits for "
    "fsyncs of the virtual disk that the other jobs on this machine share, so the "
    "small files on ext4 swing several-fold from round to round (see the spreads) "
    "whichever filesystem state_dir is on; the get of a file just put reads it from "
    "the page cache, not the disk.",
    "- rsync (daemon, --whole-file) and scp run when they are installed; both are "
    "C. rsync checks a whole-file checksum; scp leaves integrity to SSH's MAC and "
    "pays for encryption, so it compares with ft's TLS figures.",
]


CHART_GROUPS = (
    ("One big file, MB/s", ("floor", "tls-floor", "hashed-both-inline", "hashed-both-thread",
                            "hashed-receiver", "ft-put", "ft-get", "ft-tls-put",
                            "ft-tls-get", "ftp-put", "ftp-get", "rsync-put", "rsync-get",
                            "scp-put", "scp-get")),
    ("HTTP, one big file by curl (and ftclient put), MB/s",
     ("http-get-ft", "http-get-nginx", "http-get-copyparty", "http-put-ft",
      "http-put-copyparty", "http-put-ftclient")),
    ("Small files, files/s", ("ft-small", "ftp-small")),
    ("Many clients, aggregate MB/s", ("ft-many-put-thread", "ft-many-get-thread",
                                      "ft-many-put-process", "ft-many-get-process",
                                      "ftp-many-put", "ftp-many-get")),
    ("Server peak RSS, MiB", ("rss-big", "rss-many")),
    ("Share and state_dir placed: big file put, MB/s",
     tuple(f"place-{a}-{b}-put" for a, b in PLACED)),
    ("Share and state_dir placed: small files put -r, files/s",
     tuple(f"place-{a}-{b}-small" for a, b in PLACED)),
)


def chart_missing() -> str | None:
    """None if matplotlib is installed; otherwise the note that replaces the chart."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return "chart: matplotlib is not installed (pip install -e '.[bench]'); no PNG written"
    return None


def chart(results: Results, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot

    groups = [(title, [results.figures[k] for k in keys if k in results.figures])
              for title, keys in CHART_GROUPS]
    groups = [(title, figures) for title, figures in groups if figures]
    fig, axes = pyplot.subplots(len(groups) or 1, 1, figsize=(9, 2.2 + 2.0 * len(groups)),
                                squeeze=False)
    for axis, (title, figures) in zip(axes[:, 0], groups, strict=False):
        labels = [f.label for f in figures]
        medians = [f.median for f in figures]
        lows = [m - min(f.values) for m, f in zip(medians, figures, strict=True)]
        highs = [max(f.values) - m for m, f in zip(medians, figures, strict=True)]
        axis.barh(labels, medians, xerr=[lows, highs], color="#4a7fb5", capsize=3)
        axis.invert_yaxis()
        axis.set_title(title, fontsize=10)
        axis.tick_params(labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
