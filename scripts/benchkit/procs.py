"""Stopping the benchmark's helper servers by process id: SIGTERM, then SIGKILL; and what
the HTTP case knows of a helper server that is up."""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path


def stop_by_pid(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Ask ``proc`` to stop; kill it if it has not exited within ``grace`` seconds."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(grace)


@dataclass(frozen=True)
class Served:
    """A helper HTTP server that is up: where it listens, what it serves, its process."""

    port: int
    root: Path
    """The folder it serves, and where uploads land."""
    proc: subprocess.Popen

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"
