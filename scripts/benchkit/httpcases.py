"""The HTTP case: one big file by curl from ft, nginx and copyparty, and into ft and copyparty.

Downloads: ``curl -o`` of the file from ftserver's HTTP (its own port), from nginx
(nginxserve.py) and from copyparty (copypartyserve.py). Uploads: ``curl -T`` into
ftserver (HTTP PUT), ``curl -T`` into copyparty (its PUT), and ``ftclient put`` (the
command, as a user runs it) into ftserver. Every server is started on 127.0.0.1 only
and stopped by pid; curl is told to use no proxy. The three servers serve one file:
it is hard-linked into each one's folder, so each reads the same pages of the same
file. The steps of a kind take turns within a round, the order moved on by one
each round, so each round's ratios share one load. After every step its result is
checked for size and removed, and the filesystems are synced (untimed), so no step
pays for the write-back of the one before it. One download before the first round
is not timed: in trials the run's first 1 GiB download into tmpfs cost curl 2-3 s
of system time, the later ones about 1 s.

Every step is timed with the CPU seconds of both ends (as every other case), and
apart from them those of the server's process tree: the client's share is the
rest (curl, or the ftclient process). A missing program (curl, nginx, copyparty)
or an ft without HTTP leaves the steps that need it out with a note.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchkit import ftcases
from benchkit.copypartyserve import copyparty_missing, copyparty_server
from benchkit.figures import Took, process_tree_cpu, timed
from benchkit.nginxserve import nginx_missing, nginx_server
from benchkit.procs import Served
from ftserver.config import ServerConfig

STEP_TIMEOUT = 600.0
"""Seconds one curl or ftclient run may take before the case fails (1 GiB at 2 MB/s)."""
CURL = ["curl", "--silent", "--show-error", "--fail", "--noproxy", "*",
        "--max-time", str(int(STEP_TIMEOUT))]


@dataclass(frozen=True)
class Step:
    """One timed transfer of the case, and what it leaves to check and remove."""

    key: str
    label: str
    run: Callable[[], object]
    server_pid: int
    result: Path
    """The file the step writes: the download, or the upload in the server's folder."""


Record = Callable[[Step, Took, float], None]
"""Told each step's time and CPU (both ends), and the server's CPU seconds."""


def curl_missing() -> str | None:
    if shutil.which("curl") is None:
        return "http: not measured: curl not installed (apt-get install curl)"
    return None


def ft_http_missing() -> str | None:
    if "http" not in {f.name for f in dataclasses.fields(ServerConfig)}:
        return "http, ft: not measured: this ft has no HTTP (issue 15)"
    return None


def curl_get(url: str, download: Path) -> Callable[[], object]:
    return lambda: subprocess.run([*CURL, "--output", str(download), url], check=True,
                                  timeout=STEP_TIMEOUT + 60, stdin=subprocess.DEVNULL)


def curl_put(source: Path, url: str) -> Callable[[], object]:
    return lambda: subprocess.run([*CURL, "--output", os.devnull, "--upload-file", str(source),
                                   url], check=True, timeout=STEP_TIMEOUT + 60,
                                  stdin=subprocess.DEVNULL)


def ftclient_put(port: int, source: Path, name: str, home: Path) -> Callable[[], object]:
    """``ftclient put`` as a user runs it, its config, cache and state kept under ``home``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FTCLIENT_")}
    for variable in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        env[variable] = str(home / variable.lower())
    args = [sys.executable, "-m", "ftclient", "-q", "--retries", "0", "--timeout", "120",
            "--server", f"127.0.0.1:{port}", "put", str(source), name]
    return lambda: subprocess.run(args, check=True, timeout=STEP_TIMEOUT + 60, env=env,
                                  stdin=subprocess.DEVNULL)


TUS_CHUNK = 64 << 20
"""The chunk size of the tus upload the issue sets its target for."""


def tus_missing() -> str | None:
    try:
        import tusclient  # noqa: F401
    except ImportError:
        return "http, tus: not measured: tuspy not installed (pip install -e '.[bench]')"
    return None


def tus_put(folder_url: str, source: Path, name: str) -> Callable[[], object]:
    """A tuspy upload to a folder's URL in TUS_CHUNK pieces, as its own process."""
    args = [sys.executable, str(Path(__file__).with_name("tusput.py")), folder_url,
            str(source), name, str(TUS_CHUNK)]
    return lambda: subprocess.run(args, check=True, timeout=STEP_TIMEOUT + 60,
                                  stdin=subprocess.DEVNULL)


def share(source: Path, root: Path, name: str) -> None:
    """Put ``source`` in a server's folder as ``name``: a hard link, else a copy."""
    try:
        os.link(source, root / name)
    except OSError:
        shutil.copyfile(source, root / name)


def start_steps(stack: contextlib.ExitStack, work: Path, source: Path
                ) -> tuple[list[Step], list[Step], list[str]]:
    """The downloads and the uploads that can run here, their servers started on
    ``stack``; and the notes for those that cannot."""
    download = work / "http-download.bin"
    gets: list[Step] = []
    puts: list[Step] = []
    notes: list[str] = []
    missing = ft_http_missing()
    if missing:
        notes.append(missing)
    else:
        ft = stack.enter_context(ftcases.ft_server(work / "http-ft"))
        assert ft.proc is not None
        share(source, ft.root, "big.bin")
        url = f"http://127.0.0.1:{ft.port}"
        gets.append(Step("http-get-ft", "curl GET from ft", curl_get(f"{url}/big.bin", download),
                         ft.proc.pid, download))
        puts.append(Step("http-put-ft", "curl -T into ft", curl_put(source, f"{url}/up-curl.bin"),
                         ft.proc.pid, ft.root / "up-curl.bin"))
        puts.append(Step("http-put-ftclient", "ftclient put into ft",
                         ftclient_put(ft.port, source, "up-ftclient.bin",
                                      work / "http-ftclient-home"),
                         ft.proc.pid, ft.root / "up-ftclient.bin"))
        missing = tus_missing()
        if missing:
            notes.append(missing)
        else:
            puts.append(Step("http-put-tus", "tus upload into ft (tuspy, 64 MiB chunks)",
                             tus_put(f"{url}/", source, "up-tus.bin"), ft.proc.pid,
                             ft.root / "up-tus.bin"))
    missing = nginx_missing()
    if missing:
        notes.append(missing)
    else:
        nginx: Served = stack.enter_context(nginx_server(work / "http-nginx"))
        share(source, nginx.root, "big.bin")
        gets.append(Step("http-get-nginx", "curl GET from nginx",
                         curl_get(nginx.url("big.bin"), download), nginx.proc.pid, download))
    missing = copyparty_missing()
    if missing:
        notes.append(missing)
    else:
        party: Served = stack.enter_context(copyparty_server(work / "http-copyparty"))
        share(source, party.root, "big.bin")
        gets.append(Step("http-get-copyparty", "curl GET from copyparty",
                         curl_get(party.url("big.bin"), download), party.proc.pid, download))
        puts.append(Step("http-put-copyparty", "curl -T into copyparty (PUT)",
                         curl_put(source, party.url("up-curl.bin")), party.proc.pid,
                         party.root / "up-curl.bin"))
    return gets, puts, notes


def run_step(step: Step, size: int) -> tuple[Took, float]:
    """Run ``step`` once: what it took, and the server's CPU seconds. Its result is
    checked for size and removed; then everything written is synced (untimed)."""
    server_before = process_tree_cpu(step.server_pid)
    took = timed(step.run)
    server_cpu = process_tree_cpu(step.server_pid) - server_before
    got = step.result.stat().st_size
    if got != size:
        raise RuntimeError(f"{step.label}: {got} bytes arrived of {size}")
    step.result.unlink()
    os.sync()
    return took, server_cpu


def run_rounds(work: Path, source: Path, rounds: int, record: Record,
               skip: Callable[[str], None]) -> None:
    """Every step that can run here, ``rounds`` times; each kind's steps in turn."""
    size = source.stat().st_size
    with contextlib.ExitStack() as stack:
        gets, puts, notes = start_steps(stack, work, source)
        for note in notes:
            skip(note)
        if gets:  # untimed (see above)
            run_step(gets[0], size)
        for index in range(rounds):
            for steps in (gets, puts):
                turn = index % len(steps) if steps else 0
                for step in steps[turn:] + steps[:turn]:
                    took, server_cpu = run_step(step, size)
                    record(step, took, server_cpu)
