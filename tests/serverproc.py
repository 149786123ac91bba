"""Run a real ftserver process for a test: start it, follow its log, find its port, stop it.

``LoggedServer`` runs ``python -m ftserver ARGS`` and collects its stderr on a
thread; ``ServerProcess`` writes a config file first. Servers are started with
port 0 and found through the "listening on" log line, and always stopped by
process id (SIGTERM, then SIGKILL if it lingers), with the log pipe closed.
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
SERVER_COMMAND = [sys.executable, "-m", "ftserver"]


class LoggedServer:
    """An ftserver process started with the given arguments."""

    def __init__(self, args: list[str], cwd: Path | None = None) -> None:
        self.args = args
        self.cwd = cwd
        self.proc: subprocess.Popen[str] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._pump: threading.Thread | None = None

    @property
    def log(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def launch(self) -> LoggedServer:
        """Start the process without waiting for it to listen."""
        self.proc = subprocess.Popen(
            SERVER_COMMAND + self.args, cwd=self.cwd, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        self._pump = threading.Thread(target=self._read_log, daemon=True, name="ftserver-log")
        self._pump.start()
        return self

    def _read_log(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._lock:
                self._lines.append(line)
            match = LISTENING.search(line)
            if match and not self._listening.is_set():
                self.port = int(match.group(2))
                self._listening.set()

    def wait_listening(self, timeout: float = 20.0) -> bool:
        return self._listening.wait(timeout)

    def start(self, timeout: float = 20.0) -> LoggedServer:
        """Start and wait for "listening on"; raise (after killing it) if that never comes."""
        self.launch()
        if not self.wait_listening(timeout):
            self.kill()
            raise RuntimeError(f"ftserver did not start:\n{self.log}")
        return self

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait; return the exit code (kills and re-raises if it does not exit)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._release()
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self._release()

    def _release(self) -> None:
        """Read the log to its end and close the pipe (the process has exited)."""
        if self.proc is None or self.proc.stderr is None:
            return
        if self._pump is not None:
            self._pump.join(timeout=5)
        self.proc.stderr.close()

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log):
                return True
            time.sleep(0.05)
        return False


class ServerProcess(LoggedServer):
    """A server on 127.0.0.1, port 0, sharing ``base/share``, configured by a YAML file."""

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
        super().__init__(["--config", str(self.config_path)])

    @property
    def partials(self) -> Path:
        """Where uploads into the share's top filesystem keep their partials."""
        return self.root / ".ft-partials"

    def start(self, timeout: float = 20.0) -> ServerProcess:
        super().start(timeout)
        return self
