"""nginx (Debian's ``nginx-light``) serving one folder for the HTTP case's curl GET.

Nothing is installed: when ``nginx`` is not on the PATH the case says so. nginx
runs in the foreground (``daemon off``) with its own prefix, config, pid file and
temporary folders under the run's data folder, listens on 127.0.0.1 only on a
port the kernel picked, serves with sendfile on, writes no access log and sends
its errors to stderr (discarded), with one worker process: one curl uses one
connection, so one worker is all that it can use. Stopped by pid.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchkit.external import free_port, wait_port
from benchkit.procs import Served, stop_by_pid

TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_missing() -> str | None:
    """None if nginx is on this machine; otherwise the case's "not measured" note."""
    if shutil.which("nginx") is None:
        return "http, nginx: not measured: nginx not installed (apt-get install nginx-light)"
    return None


def config_text(base: Path, root: Path, port: int) -> str:
    """The whole nginx.conf: nothing read from /etc/nginx, nothing written outside ``base``."""
    temps = "".join(f"    {kind}_temp_path {base / 'temp' / kind};\n" for kind in TEMP_PATHS)
    # As root, nginx's workers would run as nobody, who cannot enter the run's
    # private temporary folder: keep them as the user running the bench.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    return (f"{user}daemon off;\nworker_processes 1;\npid {base / 'nginx.pid'};\n"
            "error_log stderr error;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            "    access_log off;\n"
            "    sendfile on;\n"
            "    tcp_nopush on;\n"
            "    default_type application/octet-stream;\n"
            f"{temps}"
            f"    server {{\n        listen 127.0.0.1:{port};\n        root {root};\n    }}\n"
            "}\n")


@contextmanager
def nginx_server(base: Path) -> Iterator[Served]:
    """nginx serving ``base/root`` on 127.0.0.1; stopped (SIGTERM by pid) on exit."""
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    for kind in TEMP_PATHS:
        (base / "temp" / kind).mkdir(parents=True, exist_ok=True)
    (base / "logs").mkdir(exist_ok=True)  # the prefix's default log folder, never written
    port = free_port()
    config = base / "nginx.conf"
    config.write_text(config_text(base, root, port))
    nginx = shutil.which("nginx") or "nginx"
    proc = subprocess.Popen([nginx, "-p", str(base), "-c", str(config), "-e", "stderr"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield Served(port, root, proc)
    finally:
        stop_by_pid(proc)
        shutil.rmtree(base, ignore_errors=True)
