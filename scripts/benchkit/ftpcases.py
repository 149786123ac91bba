"""pyftpdlib with ftplib: the Python FTP server people reach for, side by side with ft.

The server runs in its own process (ftpserve.py), as ft's does; ftplib moves
data in 256 KiB blocks (its default of 8 KiB would handicap it). FTP verifies
nothing, so this is the speed of moving bytes with no integrity check at all.
"""

from __future__ import annotations

import contextlib
import ftplib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchkit.figures import Took, concurrent_timed, timed
from benchkit.procs import stop_by_pid

BLOCK = 256 * 1024
SERVE = Path(__file__).resolve().parent / "ftpserve.py"


def available() -> str | None:
    """None if pyftpdlib is installed; otherwise the skip note."""
    try:
        import pyftpdlib  # noqa: F401
    except ImportError:
        return "pyftpdlib: not installed (pip install -e '.[bench]')"
    return None


@contextmanager
def ftp_server(root: Path) -> Iterator[int]:
    """A pyftpdlib process serving ``root``; yields its port; stopped by pid on exit."""
    root.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, str(SERVE), str(root)], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError("the pyftpdlib server did not start")
        yield int(line)
    finally:
        stop_by_pid(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(root, ignore_errors=True)


def connect(port: int) -> ftplib.FTP:
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=120)
    ftp.login()
    return ftp


def put(ftp: ftplib.FTP, source: Path, name: str) -> None:
    with open(source, "rb") as stream:
        ftp.storbinary(f"STOR {name}", stream, blocksize=BLOCK)


def get(ftp: ftplib.FTP, name: str, target: Path) -> None:
    with open(target, "wb") as stream:
        ftp.retrbinary(f"RETR {name}", stream.write, blocksize=BLOCK)


def big_file_round(ftp: ftplib.FTP, source: Path, download: Path) -> tuple[Took, Took]:
    stored = timed(lambda: put(ftp, source, "big.bin"))
    retrieved = timed(lambda: get(ftp, "big.bin", download))
    download.unlink()
    return stored, retrieved


def small_files_put(ftp: ftplib.FTP, paths: list[Path], folder: str) -> Took:
    ftp.mkd(folder)

    def upload_all() -> None:
        for path in paths:
            put(ftp, path, f"{folder}/{path.name}")
    return timed(upload_all)


def concurrent_put_get(port: int, source: Path, folder: Path, count: int
                       ) -> tuple[Took, Took]:
    """``count`` ftplib clients each STOR ``source`` under its own name at once, then RETR."""
    folder.mkdir(parents=True, exist_ok=True)
    clients = [connect(port) for _ in range(count)]
    try:
        with contextlib.suppress(ftplib.error_perm):  # made by an earlier round
            clients[0].mkd("many")
        stored = concurrent_timed(count, lambda i: put(clients[i], source,
                                                         f"many/c{i:03d}.bin"))
        retrieved = concurrent_timed(count, lambda i: get(clients[i], f"many/c{i:03d}.bin",
                                                            folder / f"c{i:03d}.bin"))
    finally:
        for ftp in clients:
            ftp.close()
    shutil.rmtree(folder, ignore_errors=True)
    return stored, retrieved
