"""What a failed ftclient command must look like: one ``ftclient: ...`` line, no traceback."""

from __future__ import annotations

import subprocess


def one_error_line(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The single ``ftclient: ...`` line a failed command must print, with no traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ftclient: "), lines[0]
    return lines[0]
