"""Small helpers every ``ftclient`` command module shares: escaping, sizes, argument types,
the retry notice.

A leaf: of ours it imports only common/ and retry.py's RetryNote (retry.py only common/),
so main.py, commands.py and discover.py can all import it at load time without
a cycle. It owns no terminal state; the one thing it prints is a retry notice, on
stderr, for the commands that draw no bar to carry it.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable

from common.protocol.display import visible
from ftclient.retry import RetryCallback, RetryNote


class UsageError(Exception):
    """The command line asks for something impossible: exit 2 with the usage line."""


def safe(text: str) -> str:
    """Escape control characters so a hostile name cannot drive the terminal, and the
    characters that reorder or hide text so it cannot pass for another
    (common/protocol/display.py)."""
    return visible(text)


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


def retry_line(verb: str, note: RetryNote) -> str:
    """``ls reports: retry 1/3 in 1 s: connection lost``."""
    return f"{verb} {safe(note.path)}: {note}"


def retry_notice(verb: str, quiet: bool) -> RetryCallback:
    """An ``on_retry`` callback printing each retry's line on stderr (nothing if ``quiet``)."""

    def notice(note: RetryNote) -> None:
        if not quiet:
            print(retry_line(verb, note), file=sys.stderr)

    return notice
