"""Disk-writing helpers shared by both sides: whole positioned writes, folder fsync."""

from __future__ import annotations

import os


def fsync_dir(path: str) -> None:
    """Make a rename or new entry in ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pwrite_all(fd: int, data: memoryview, position: int) -> None:
    """Write all of ``data`` at ``position`` (pwrite may write less than asked)."""
    while data:
        written = os.pwrite(fd, data, position)
        data = data[written:]
        position += written
