"""Keep scripts/bench.py working: a tiny run of every case must finish and write its report.

The smoke run writes only where it is told (never docs/) and cleans its data up.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "scripts" / "bench.py"


def test_bench_smoke_run_writes_the_report(tmp_path: Path) -> None:
    data, disk, out = tmp_path / "data", tmp_path / "disk", tmp_path / "out"
    data.mkdir()
    disk.mkdir()
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--dir", str(data), "--disk-dir", str(disk),
         "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    page = (out / "benchmarks.md").read_text()
    for row in ("| bare socket copy |", "| hashed copy, both ends (receiver thread) |",
                "| hashed copy, receiver only (thread) |", "| ft put |", "| ft get |",
                "| ft put, small files |",
                "| ft put, 3 clients (thread) |", "| ft get, 3 clients (process) |",
                "| RSS, 3 uploads at once |"):
        assert row in page, page
    assert "| put ≥ 0.55× floor |" in page and "tmpfs" in page
    assert "| ft put ÷ hashed copy, both ends, receiver on a thread |" in page
    cpu_rows = page.split("## CPU per GiB moved", 1)[1].split("\n## ", 1)[0]
    for row in ("| ft put |", "| ft get, 3 clients (process) |", "| ft put, small files |"):
        assert row in cpu_rows, cpu_rows
    assert "## Machine" in page and "- cores:" in page
    if importlib.util.find_spec("pyftpdlib") is not None:  # the bench extra
        gaps = page.split("## CPU beyond pyftpdlib's", 1)[1].split("\n## ", 1)[0]
        assert "| ft put, 3 clients (process) − pyftpdlib put, 3 clients | " in gaps, gaps
    if importlib.util.find_spec("matplotlib") is not None:  # the bench extra
        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # CI installs only the test extra: the page says why there is no chart
        assert "matplotlib is not installed" in page and not (out / "bench.png").exists()
    placed = page.split("## Where the share and state_dir live", 1)[1].split("\n## ", 1)[0]
    for share, state in (("mem", "mem"), ("mem", "disk"), ("disk", "disk"), ("disk", "mem")):
        assert re.search(rf"\| share on \S+ \({share}\), state_dir on \S+ \({state}\) \|",
                         placed), placed
    assert placed.count("\n| share on ") == 4, placed
    assert "| put, state_dir on another filesystem ≥ 0.8× beside the share (issue 14) | " \
        in page
    http = page.split("## HTTP: curl beside nginx and copyparty", 1)[1].split("\n## ", 1)[0]
    assert "| curl GET from ft ≥ 0.8× nginx |" in http, http
    if shutil.which("curl") is None:
        assert "http: not measured: curl not installed" in http, http
    else:
        has_nginx = shutil.which("nginx") is not None
        has_copyparty = importlib.util.find_spec("copyparty") is not None
        for row, expected in (("| curl GET from ft |", True), ("| curl -T into ft |", True),
                              ("| ftclient put into ft |", True),
                              ("| curl GET from nginx |", has_nginx),
                              ("| curl GET from copyparty |", has_copyparty),
                              ("| curl -T into copyparty (PUT) |", has_copyparty)):
            assert (row in http) == expected, (row, http)
        if not has_nginx:
            assert "http, nginx: not measured: nginx not installed" in http, http
        if not has_copyparty:
            assert "http, copyparty: not measured: copyparty not installed" in http, http
    assert list(data.iterdir()) == [] and list(disk.iterdir()) == []  # it cleans up


def test_bench_refuses_an_unknown_case(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--cases", "ft,warp", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "unknown case(s): warp" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
