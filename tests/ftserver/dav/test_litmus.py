"""litmus, the WebDAV conformance suite (Debian's ``litmus``), against a real server.

Every suite litmus has (basic, copymove, props, locks, http) must pass whole, under
each executor: a lock taken by one worker process is seen by the others. litmus
runs in the test's own folder (its logs go there), with its documents from
/usr/share/litmus.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.serverproc import ServerProcess

SUITES = ("basic", "copymove", "props", "locks", "http")
LITMUS = "/usr/bin/litmus"
SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed, (\d+) failed")


def run_litmus(url: str, cwd: Path) -> str:
    if shutil.which(LITMUS) is None:
        pytest.fail("litmus is not installed (apt-get install litmus): .ci/run installs it")
    done = subprocess.run(
        [LITMUS, "--keep-going", url], cwd=cwd, capture_output=True, timeout=240,
        env={**os.environ, "TESTS": " ".join(SUITES), "HTDOCS": "/usr/share/litmus/htdocs"})
    return done.stdout.decode("utf-8", "replace")


def test_every_litmus_suite_passes_whole(server: ServerProcess, tmp_path: Path) -> None:
    output = run_litmus(f"http://127.0.0.1:{server.port}/", tmp_path)
    summaries = {match[0]: (int(match[1]), int(match[2]), int(match[3]))
                 for match in SUMMARY.findall(output)}
    assert set(summaries) == set(SUITES), output
    for suite, (run, passed, failed) in summaries.items():
        assert run > 0 and failed == 0 and passed == run, f"{suite}:\n{output}"
    assert "WARNING" not in output, output
    assert "internal error" not in server.log
