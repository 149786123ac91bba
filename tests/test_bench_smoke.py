"""Keep scripts/bench.py working: a tiny run must finish and report both directions."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "scripts" / "bench.py"


def test_bench_smoke_run(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--size-mib", "2", "--rounds", "1", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"put [\d.]+ s\s+\d+ MB/s", result.stdout), result.stdout
    assert re.search(r"get [\d.]+ s\s+\d+ MB/s", result.stdout), result.stdout
    assert list(tmp_path.iterdir()) == []  # the run cleans up after itself
