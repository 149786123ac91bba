"""Byte counts as people read them, in binary units: one wording for both ends."""

from __future__ import annotations


def human_size(size: float) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"
