"""copyparty (PyPI ``copyparty``, in the bench extra) serving one folder for the HTTP case.

Run as ``python -m copyparty`` by this interpreter, so the copy the bench extra
installed is the one measured; when it is not importable the case says so. It
listens on 127.0.0.1 only (``-i``), on a port the kernel picked, plain HTTP only
(``--http-only --no-crt``: no certificate made), and announces nothing: none of
``-z``, ``--zm`` (mDNS) or ``--zs`` (SSDP) is given, so no zeroconf backend
starts, ``--z-chk 0`` stops even its watch for network changes, and
``--vc-url ''`` keeps its vulnerability check (off by default) off. FTP, SFTP,
TFTP and SMB are off by default and stay off. Anonymous users may read and write
the one volume; ``--wram`` lets uploads into tmpfs. Its settings, salts and
session database go to a config folder under the run's data folder
(XDG_CONFIG_HOME), its volume state to ``--hist`` there; ``-q`` keeps it from
logging every request. Stopped by pid.

Left at copyparty's defaults, as a user would run it: sendfile(2) for downloads,
and a SHA-512 of every PUT's body (``--put-ck``) as it arrives.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchkit.external import free_port, wait_port
from benchkit.procs import Served, stop_by_pid


def copyparty_missing() -> str | None:
    """None if copyparty is importable here; otherwise the case's "not measured" note."""
    if importlib.util.find_spec("copyparty") is None:
        return ("http, copyparty: not measured: copyparty not installed "
                "(pip install -e '.[bench]')")
    return None


def command(root: Path, hist: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "copyparty", "-i", "127.0.0.1", "-p", str(port),
            "--http-only", "--no-crt", "--z-chk", "0", "--vc-url", "", "-q", "--wram",
            "--hist", str(hist), "-v", f"{root}::rw"]


@contextmanager
def copyparty_server(base: Path) -> Iterator[Served]:
    """copyparty serving ``base/root`` read-write to anyone on 127.0.0.1; stopped by pid."""
    root, hist, config = base / "root", base / "hist", base / "config"
    for folder in (root, hist, config):
        folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "XDG_CONFIG_HOME": str(config)}
    proc = subprocess.Popen(command(root, hist, port), cwd=base, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=60.0)
        yield Served(port, root, proc)
    finally:
        stop_by_pid(proc)
        shutil.rmtree(base, ignore_errors=True)
