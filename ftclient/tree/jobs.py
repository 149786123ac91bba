"""What whole-folder and many-file transfers share: the plan of jobs, the meter that
feeds one progress bar, the report, and what happens once the link is lost.

Small files go pipelined over one connection (ftclient/pipeline.py); when the
client gives up on the link, the files not yet tried fail with that cause, and
the transfer stops there: the report still holds every file done before.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from common.protocol.errors import FtError
from common.protocol.fields import MTIME_TOLERANCE
from ftclient.pipeline import PipedResult
from ftclient.results import Progress
from ftclient.retry import reason_to_retry


@dataclass(frozen=True)
class TreeProgress:
    """Where a multi-file transfer stands: files and bytes, and the file moving now."""

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    current: str


TreeCallback = Callable[[TreeProgress], None]


@dataclass
class TreeReport:
    """What a multi-file transfer did. Names are remote names (put) or local paths (get)."""

    sent: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """(name, reason): symlinks, special files, names the protocol cannot carry."""
    failed: list[tuple[str, FtError]] = field(default_factory=list)
    bytes_sent: int = 0
    """The sizes of the files transferred."""
    bytes_moved: int = 0
    """What crossed the link for them: less, where a file resumed from what was held."""
    folders_made: int = 0
    kept: list[str] = field(default_factory=list)
    """Names left alone because they exist on the other side (--no-clobber)."""


@dataclass(frozen=True)
class TreeJob:
    local: str
    remote: str
    size: int
    st: os.stat_result | None = None


class TreeMeter:
    """Turns files answered and the bytes of resumable transfers into TreeProgress calls.

    A pipelined file counts, bytes and all, only once it is answered, so one sent
    again after a cut is never counted twice; a resumable transfer's bytes count
    as they move, and a retry that resumes lower takes back the difference.
    """

    def __init__(self, jobs: list[TreeJob], callback: TreeCallback | None) -> None:
        self.callback = callback
        self.files_total = len(jobs)
        self.bytes_total = sum(job.size for job in jobs)
        self.files_done = 0
        self.bytes_done = 0
        self.current = ""

    def answered(self, name: str, size: int) -> None:
        """A pipelined file is answered (a BytesCallback for put_many and get_many)."""
        self.current = name
        self.bytes_done += size
        self.file_done()

    def one_file(self, name: str) -> Callable[[Progress], None]:
        """A Progress callback for one resumable transfer, feeding this meter."""
        seen = [0]

        def update(progress: Progress) -> None:
            self.current = name
            self.bytes_done += progress.done - seen[0]  # a resumed prefix counts as done
            seen[0] = progress.done
            self._report()

        return update

    def file_done(self) -> None:
        self.files_done += 1
        self._report()

    def _report(self) -> None:
        if self.callback:
            self.callback(TreeProgress(self.files_done, self.files_total, self.bytes_done,
                                       self.bytes_total, self.current))


def link_failed(error: FtError) -> bool:
    """True if ``error`` is the link failing (a cut, a timeout, a server going away), which
    the client retried as far as it was allowed: the files after it would fail alike."""
    return reason_to_retry(error, after_cut=False) is not None


def not_tried(cause: FtError) -> FtError:
    """The error of the files left when the link failed for good (one, shared by them all)."""
    return type(cause)(f"not tried, the connection had failed: {cause.message}")


def remote_join(folder: str, relative: str) -> str:
    return f"{folder}/{relative}" if folder else relative


def mtimes_differ(one: float, other: float) -> bool:
    return abs(one - other) >= MTIME_TOLERANCE


def lost_link(results: list[PipedResult]) -> FtError | None:
    """The error of the first file the link's failure left unanswered, if any."""
    return next((result.error for result in results
                 if result.error is not None and link_failed(result.error)), None)


def transfer_one_by_one(jobs: list[TreeJob], lost: FtError | None, report: TreeReport,
                        meter: TreeMeter, shown: Callable[[TreeJob], str],
                        transfer: Callable[[TreeJob], PipedResult],
                        record: Callable[[TreeJob, PipedResult], None]) -> FtError | None:
    """Move ``jobs`` one at a time with the resumable put or get. Once the link has failed
    for good (``lost``, or here), the rest are failed, not tried; returns that failure."""
    left: FtError | None = None
    for job in jobs:
        if lost is not None:
            left = left or not_tried(lost)
            report.failed.append((shown(job), left))
            continue
        try:
            result = transfer(job)
        except FtError as exc:
            report.failed.append((shown(job), exc))
            lost = exc if link_failed(exc) else None
            continue
        finally:
            meter.file_done()
        record(job, result)
    return lost
