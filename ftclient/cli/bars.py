"""The progress bar's look: binary units throughout, frames only on a terminal.

tqdm prints sizes as "6.00M" and, with a 1024 divisor, rates as "MB/s", so a
``--limit-rate 25M`` (25 MiB/s) read "26.2 MB/s" against sizes counted in MiB. This
bar shows sizes and rates as ``human_size`` does (``6.0 MiB``, ``4.0 MiB/s``), the
units of the summary line. On a narrow terminal the file's name gives way (cut from
the left), never the figures or the bar. Frames (each a carriage return) are drawn
only when stderr is a terminal, never into a log or a pipe.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

from common.sizes import human_size

BAR_FORMAT = ("{desc}: {percentage:3.0f}%|{bar}| {sizes} "
              "[{elapsed}<{remaining}, {speed}{postfix}]")


def binary_bar(**options: Any) -> Any:
    """A tqdm bar counting bytes in KiB, MiB, GiB, with its rate in the same units.

    tqdm is imported on the first bar, not with the CLI: ``ls``, ``stat`` and the rest
    draw none, and tqdm's import is a tenth of the CLI's start-up."""
    return _bar_class()(**options)


@functools.cache
def _bar_class() -> type:
    from tqdm import tqdm

    class BinaryTqdm(tqdm):  # type: ignore[type-arg, misc]
        def __init__(self, **options: Any) -> None:
            super().__init__(unit="B", bar_format=BAR_FORMAT, file=sys.stderr,
                             dynamic_ncols=True, leave=True, **options)

        @property
        def format_dict(self) -> dict[str, Any]:
            meter = super().format_dict
            done, total, rate = meter["n"], meter["total"], meter["rate"]
            meter["sizes"] = (f"{human_size(done)}/{human_size(total)}" if total
                              else human_size(done))
            if rate is None and meter["elapsed"]:
                rate = done / meter["elapsed"] if done else None
            meter["speed"] = "?/s" if rate is None else f"{human_size(rate)}/s"
            meter["prefix"] = _fitted(meter.get("prefix") or "", meter.get("ncols"),
                                      len(meter["sizes"]) + len(meter["speed"]))
            return meter

    return BinaryTqdm


MIN_BAR_CELLS = 8
FIXED_WIDTH = 25
"""Columns the bar's format takes besides the name, the figures and the bar itself."""


def _fitted(name: str, columns: int | None, figures: int) -> str:
    """``name`` cut from the left ("…" + its end) so that at ``columns`` the figures and
    at least MIN_BAR_CELLS of bar still fit: at 60 columns the bar kept 1 cell and the
    rate was cut mid-number."""
    if not columns:
        return name
    room = columns - figures - FIXED_WIDTH - MIN_BAR_CELLS
    if len(name) <= room:
        return name
    return "…" + name[-max(room - 1, 3):]


def draws_frames() -> bool:
    """Whether stderr is a terminal: bar frames go only there, never into a log file or a
    pipe, where the summary line alone is worth keeping."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
