"""Stopping the benchmark's helper servers by process id: SIGTERM, then SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess


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
