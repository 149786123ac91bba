"""Run a real ftserver process for a test: write its config, start it, find its port, stop it.

Servers are started with port 0 and found through the "listening on" log line,
and always stopped by process id (SIGTERM, then SIGKILL if it lingers).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

LISTENING = re.compile(r"listening on (\S+):(\d+)")


class ServerProcess:
    def __init__(self, base: Path, executor: str = "thread", workers: int = 4,
                 **settings: Any) -> None:
        self.root = base / "share"
        self.state_dir = base / "state"
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path = base / "ftserver.yaml"
        config = {
            "root": str(self.root),
            "state_dir": str(self.state_dir),
            "host": "127.0.0.1",
            "port": 0,
            "executor": executor,
            "workers": workers,
            **settings,
        }
        self.config_path.write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[str] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._lines: list[str] = []
        self._lock = threading.Lock()

    @property
    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def start(self, timeout: float = 20.0) -> ServerProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ftserver", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )
        found = threading.Event()

        def pump() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            for line in self.proc.stderr:
                with self._lock:
                    self._lines.append(line)
                match = LISTENING.search(line)
                if match and not found.is_set():
                    self.port = int(match.group(2))
                    found.set()

        threading.Thread(target=pump, daemon=True).start()
        if not found.wait(timeout):
            self.kill()
            raise RuntimeError(f"ftserver did not start:\n{self.log}")
        return self

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait; return the exit code (kills and fails if it does not exit)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log):
                return True
            time.sleep(0.05)
        return False
