"""rsync's daemon and scp to a local sshd: measured only when they are on this machine.

Nothing is installed: each case checks ``shutil.which`` and is skipped with a
note when a program is missing. Both listen on 127.0.0.1 only, on a port the
kernel picked, with throw-away keys and configs under the run's data folder,
and are stopped by pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchkit.figures import Took, timed
from benchkit.procs import stop_by_pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def daemon(args: list[str], port: int) -> Iterator[None]:
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield
    finally:
        stop_by_pid(proc)


def rsync_missing() -> str | None:
    return None if shutil.which("rsync") else "rsync: not installed on this machine"


def scp_missing() -> str | None:
    for program in ("scp", "sshd", "ssh-keygen"):
        if not shutil.which(program):
            return f"scp: `{program}` is not installed on this machine"
    return sshd_refuses()


def sshd_refuses() -> str | None:
    """sshd's own complaint about running here (``sshd -t``), e.g. a missing privsep folder."""
    with tempfile.TemporaryDirectory() as scratch:
        key = Path(scratch) / "host_key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                       check=True, timeout=60)
        check = subprocess.run([shutil.which("sshd") or "sshd", "-t", "-f", os.devnull,
                                "-o", f"HostKey={key}"],
                               capture_output=True, text=True, timeout=60)
    if check.returncode == 0:
        return None
    return f"scp: sshd cannot run here ({check.stderr.strip() or check.returncode})"


@contextmanager
def rsync_daemon(base: Path) -> Iterator[tuple[str, Path]]:
    """An rsync daemon sharing ``base/share`` read-write; yields its URL and that folder."""
    share = base / "share"
    share.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = base / "rsyncd.conf"
    config.write_text(f"use chroot = no\naddress = 127.0.0.1\nport = {port}\n"
                      f"pid file = {base / 'rsyncd.pid'}\n"
                      f"[share]\n  path = {share}\n  read only = no\n  uid = {os.getuid()}\n"
                      f"  gid = {os.getgid()}\n")
    with daemon(["rsync", "--daemon", "--no-detach", f"--config={config}"], port):
        yield f"rsync://127.0.0.1:{port}/share", share


def rsync_round(url: str, share: Path, source: Path, download: Path) -> tuple[Took, Took]:
    """``--whole-file``: the fastest rsync can copy a new file (no delta search)."""
    copy = ["rsync", "--whole-file", "--inplace", "-q"]
    put = timed(lambda: subprocess.run(copy + [str(source), f"{url}/big.bin"],
                                       check=True, timeout=600))
    get = timed(lambda: subprocess.run(copy + [f"{url}/big.bin", str(download)],
                                       check=True, timeout=600))
    download.unlink()
    (share / "big.bin").unlink()
    return put, get


@contextmanager
def local_sshd(base: Path) -> Iterator[list[str]]:
    """An sshd on 127.0.0.1 with a throw-away host key and user key; yields scp's options."""
    base.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "user_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(base / name)],
                       check=True, timeout=60)
    (base / "authorized_keys").write_text((base / "user_key.pub").read_text())
    port = free_port()
    config = base / "sshd_config"
    config.write_text(f"Port {port}\nListenAddress 127.0.0.1\nHostKey {base / 'host_key'}\n"
                      f"AuthorizedKeysFile {base / 'authorized_keys'}\nStrictModes no\n"
                      f"PasswordAuthentication no\nPidFile {base / 'sshd.pid'}\n"
                      # scp speaks SFTP since OpenSSH 9; the in-process server needs no binary
                      "Subsystem sftp internal-sftp\n")
    sshd = shutil.which("sshd") or "sshd"
    with daemon([sshd, "-D", "-e", "-f", str(config)], port):
        yield ["-q", "-P", str(port), "-i", str(base / "user_key"),
               "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]


def scp_round(options: list[str], source: Path, remote: Path, download: Path
              ) -> tuple[Took, Took]:
    put = timed(lambda: subprocess.run(["scp", *options, str(source), f"127.0.0.1:{remote}"],
                                       check=True, timeout=600))
    get = timed(lambda: subprocess.run(["scp", *options, f"127.0.0.1:{remote}", str(download)],
                                       check=True, timeout=600))
    download.unlink()
    remote.unlink()
    return put, get
