"""Small helpers every ``ftclient`` command module shares: escaping, sizes, argument types.

A leaf: it imports nothing of ours, so cli.py, commands.py and discover_cli.py
can all import it at load time without a cycle. It owns no terminal state and
prints nothing; the modules that print decide where its strings go.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UsageError(Exception):
    """The command line asks for something impossible: exit 2 with the usage line."""


def safe(text: str) -> str:
    """Escape control characters so a hostile name cannot drive the terminal."""
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def human_size(size: float) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 KiB``, ``3.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def seconds_up_to(limit: float) -> Callable[[str], float]:
    """An argparse type: seconds above 0 and at most ``limit`` (not negative, nan or inf)."""

    def seconds(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
        if not (math.isfinite(value) and 0 < value <= limit):
            raise argparse.ArgumentTypeError(
                f"must be a number of seconds above 0 and at most {limit:g}, not {text!r}")
        return value

    return seconds
