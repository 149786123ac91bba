"""Durability helpers shared by both sides: fsync of a folder after a rename into it."""

from __future__ import annotations

import os


def fsync_dir(path: str) -> None:
    """Make a rename or new entry in ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
