"""The progress bar as a terminal user and a log reader see it (issue 17).

Into a log or a pipe, every ``\\r`` frame of the bar landed in the file: now only
the summary line is written there. On a terminal (a real pty here) sizes and rates
use one unit system, binary (MiB and MiB/s), so ``--limit-rate 25M`` no longer
reads 26.2 MB/s. After an automatic resume the "retry ..." note is replaced by
"resumed at N", and a rerun's summary says how much moved as well as the size.
"""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable
from pathlib import Path

from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

MiB = 1 << 20
CLIENT = [sys.executable, "-m", "ftclient"]


def run_on_a_terminal(argv: list[str], cwd: Path, columns: int = 100) -> tuple[int, str]:
    """Run ``argv`` with its stderr on a pty (a terminal ``columns`` wide); return the exit
    code and everything drawn there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    os.set_blocking(master, True)
    env = {**os.environ, "COLUMNS": str(columns)}
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=slave, env=env)
    os.close(slave)
    drawn = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the pty closes when the client exits
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=read)
    reader.start()
    code = proc.wait(60)
    reader.join(10)
    os.close(master)
    return code, drawn.decode(errors="replace")


def test_into_a_log_only_the_summary_is_written(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(4 * MiB))
    result = subprocess.run([*CLIENT, "--server", f"127.0.0.1:{server.port}", "put",
                             str(source)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr and "%|" not in result.stderr  # no bar frames
    assert result.stderr.startswith("put big.bin: 4.0 MiB in ") and "verified" in result.stderr


def test_on_a_terminal_sizes_and_rates_are_binary(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 * MiB))
    code, drawn = run_on_a_terminal(
        [*CLIENT, "--server", f"127.0.0.1:{server.port}", "--limit-rate", "4M", "put",
         str(source)], tmp_path)
    assert code == 0, drawn
    assert "\r" in drawn and "6.0 MiB/6.0 MiB" in drawn  # frames, sized in MiB
    assert "MiB/s" in drawn and "MB/s" not in drawn.replace("MiB/s", "")


def test_after_an_automatic_resume_the_bar_says_resumed_at(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(24 * MiB))
    with CuttingProxy(server.port, cut_after=8 * MiB, cut_first=1) as proxy:
        code, drawn = run_on_a_terminal(
            [*CLIENT, "--server", f"127.0.0.1:{proxy.port}", "--retries", "2", "put",
             str(source)], tmp_path)
    assert code == 0, drawn
    assert "retry 1/2" in drawn
    last_frame = drawn.rstrip().rsplit("\r", 1)[-1]
    final_bar = [line for line in drawn.splitlines() if "24.0 MiB/24.0 MiB" in line][-1]
    assert "retry" not in final_bar.rsplit("\r", 1)[-1], (final_bar, last_frame)
    assert "resumed at" in final_bar.rsplit("\r", 1)[-1], final_bar
    assert "moved, resumed at" in drawn  # the summary says what moved


def test_a_rerun_says_how_much_moved(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(24 * MiB))
    with CuttingProxy(server.port, cut_after=8 * MiB, cut_first=1) as proxy:
        first = subprocess.run([*CLIENT, "--retries", "0", "--server",
                                f"127.0.0.1:{proxy.port}", "put", str(source)],
                               capture_output=True, text=True, timeout=60)
        assert first.returncode != 0
        again = subprocess.run([*CLIENT, "--retries", "0", "--server",
                                f"127.0.0.1:{proxy.port}", "put", str(source)],
                               capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    summary = again.stderr.strip().splitlines()[-1]
    assert summary.startswith("put big.bin: 24.0 MiB (") and "moved, resumed at" in summary


def test_on_a_terminal_put_r_draws_one_overall_bar(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    tree = tmp_path / "tree"
    tree.mkdir()
    for index in range(3):
        (tree / f"f{index}.txt").write_bytes(b"x" * 1000)
    code, drawn = run_on_a_terminal(
        [*CLIENT, "--server", f"127.0.0.1:{server.port}", "put", "-r", str(tree)], tmp_path)
    assert code == 0, drawn
    assert "put 3/3 files" in drawn and "2.9 KiB/2.9 KiB" in drawn  # files and bytes
    assert "put: 3 transferred" in drawn


def test_at_60_columns_the_name_gives_way_not_the_bar_or_the_figures(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    source = tmp_path / "a-rather-long-name-for-the-quarterly-report-2026.bin"
    source.write_bytes(os.urandom(6 * MiB))
    code, drawn = run_on_a_terminal(
        [*CLIENT, "--server", f"127.0.0.1:{server.port}", "--limit-rate", "4M", "put",
         str(source)], tmp_path, columns=60)
    assert code == 0, drawn
    frames = [frame for line in drawn.splitlines() for frame in line.split("\r")
              if "%|" in frame]
    assert frames, drawn
    for frame in frames:
        assert len(frame) <= 60, frame
    last = frames[-1]
    assert "6.0 MiB/6.0 MiB" in last and last.rstrip().endswith("MiB/s]"), last
    bar = last.split("|")[1]
    assert len(bar) >= 6, last  # the bar keeps its cells (it had 1)
    assert "…" in last  # the name was cut from the left to make room
