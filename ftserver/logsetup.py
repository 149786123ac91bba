"""Logging set-up shared by the listener and worker processes: one line per event.

Lines go to stderr, or appended to ``log_file`` through a WatchedFileHandler,
which reopens the file when logrotate has moved it away (no restart or signal
needed). Worker processes append to the same file. Each write holds whole lines
only: one line, or the lines a thread held back with ``lines_held`` (a burst of
small uploads logs a line per file, and one write for them all costs less than
one each), cut at PIPE_BUF so that no write to a pipe is split. ``log_text`` logs a
message already made: while lines are held and only these handlers would write it,
it makes the line itself, with no LogRecord (the same text the formatter gives).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import select
import sys
import threading
import time
from collections.abc import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_holding = threading.local()
"""Per thread: None, or the lines held back for each handler until ``lines_held`` ends."""


class LogFileError(Exception):
    """The log file cannot be opened; the message says which and why."""


def setup_logging(level: str, log_file: str | os.PathLike[str] | None = None) -> None:
    handler: logging.Handler
    if log_file is None:
        handler = _HeldLines(sys.stderr)
    else:
        try:
            handler = _FileLines(log_file, encoding="utf-8")
        except OSError as exc:
            raise LogFileError(f"config key 'log_file': cannot open {os.fspath(log_file)!r}: "
                               f"{exc.strerror or exc}") from None
    handler.setFormatter(_SecondCachingFormatter())
    _skip_unused_record_fields()
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


_reopen_wanted = threading.Event()


def reopen_log_file() -> None:
    """Have the log file closed and opened again by name before its next line (SIGHUP).

    Safe in a signal handler: it only sets a flag, which the handler acts on under its
    own lock when it next writes. Lines to stderr are unaffected."""
    _reopen_wanted.set()


@contextlib.contextmanager
def lines_held() -> Iterator[None]:
    """Within it, this thread's log lines are formatted as they come but written together
    when it ends. Meant for a short stretch with no waiting in it (a burst's log lines)."""
    if getattr(_holding, "lines", None) is not None:
        yield  # already held by an outer block, which writes them
        return
    _holding.lines = {}
    try:
        yield
    finally:
        held: dict[_HeldLines, list[str]] = _holding.lines
        _holding.lines = None
        for handler, lines in held.items():
            handler.write_lines(lines)


def log_text(logger: logging.Logger, level: int, *messages: str) -> None:
    """``logger.log(level, message)`` for each message, already made (no %-arguments).

    While this thread's lines are held (``lines_held``) and every handler the lines
    would reach is one of this module's, with no filter on the way, the lines are
    made here from the time, level, name and message, exactly as the formatter
    would make them, without a LogRecord: a burst of small uploads logs one per file.
    Otherwise, the logging library handles each as usual.
    """
    held: dict[_HeldLines, list[str]] | None = getattr(_holding, "lines", None)
    handlers = (_only_held_lines(logger, level)
                if held is not None and logger.isEnabledFor(level) else [])
    if held is None or not handlers:
        for message in messages:
            logger.log(level, message)
        return
    created = time.time()
    levelname = logging.getLevelName(level)
    for handler in handlers:
        make = handler.formatter.line  # type: ignore[union-attr]
        end = handler.terminator
        held.setdefault(handler, []).extend(
            make(created, levelname, logger.name, message) + end for message in messages)


def _only_held_lines(logger: logging.Logger, level: int) -> list[_HeldLines]:
    """The handlers a line at ``level`` from ``logger`` would reach, if all are ours with
    our formatter and no filter is on the way; else an empty list (the library's way)."""
    found: list[_HeldLines] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return []
        for handler in current.handlers:
            if level < handler.level:
                continue
            if (type(handler) not in (_HeldLines, _FileLines) or handler.filters
                    or type(handler.formatter) is not _SecondCachingFormatter):
                return []
            found.append(handler)
        current = current.parent if current.propagate else None
    return found


class _HeldLines(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose lines a thread may hold back (``lines_held``)."""

    def emit(self, record: logging.LogRecord) -> None:
        held: dict[_HeldLines, list[str]] | None = getattr(_holding, "lines", None)
        if held is None:
            super().emit(record)
            return
        try:
            held.setdefault(self, []).append(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def write_lines(self, lines: list[str]) -> None:
        """Write whole lines, as few writes as PIPE_BUF allows."""
        with self.lock:  # type: ignore[union-attr]
            try:
                self._before_write()
                for chunk in _whole_lines_within(lines, select.PIPE_BUF):
                    self.stream.write(chunk)
                    self.flush()
            except Exception:
                # handleError wants a record; the message says what was lost.
                self.handleError(logging.makeLogRecord(
                    {"msg": "%d held log lines were not written", "args": (len(lines),)}))

    def _before_write(self) -> None:
        """What the handler does before each write (a file handler reopens a moved file)."""


class _FileLines(_HeldLines, logging.handlers.WatchedFileHandler):
    def emit(self, record: logging.LogRecord) -> None:
        if _reopen_wanted.is_set():
            with self.lock:  # type: ignore[union-attr]
                self._reopen_if_asked()
        super().emit(record)

    def _before_write(self) -> None:
        self._reopen_if_asked()
        self.reopenIfNeeded()

    def _reopen_if_asked(self) -> None:
        if not _reopen_wanted.is_set():
            return
        _reopen_wanted.clear()
        if self.stream is not None:
            self.stream.flush()
            self.stream.close()
        self.stream = self._open()
        self._statstream()


def _whole_lines_within(lines: list[str], limit: int) -> Iterator[str]:
    """Join lines into chunks of at most ``limit`` bytes (a longer line goes alone)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode("utf-8", "backslashreplace"))
        if chunk and size + length > limit:
            yield "".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield "".join(chunk)


class _SecondCachingFormatter(logging.Formatter):
    """FORMAT; the date and time part is worked out once per second, not per line
    (``time.strftime`` was a measurable share of a small upload's log line)."""

    def __init__(self) -> None:
        super().__init__(FORMAT)
        self._cached = (-1, "")
        """(second, its text): one tuple, so a thread never pairs one's second with
        another's text."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        return self.default_msec_format % (self._second_text(int(record.created)),
                                           record.msecs)

    def line(self, created: float, levelname: str, name: str, message: str) -> str:
        """What ``format`` gives for a record of these made at ``created`` (no exception
        or stack): the time as formatTime gives it, with the record's milliseconds."""
        second = int(created)
        msecs = int((created - second) * 1000)
        return f"{self._second_text(second)},{msecs:03d} {levelname} {name}: {message}"

    def _second_text(self, second: int) -> str:
        cached = self._cached
        if cached[0] != second:
            cached = (second, time.strftime(self.default_time_format, self.converter(second)))
            self._cached = cached
        return cached[1]


def _skip_unused_record_fields() -> None:
    """Stop every log record collecting what FORMAT never prints.

    A record normally looks up its thread, process and multiprocessing names;
    with one line per small file that was a measurable share of the server's work.
    These are the public switches the logging HOWTO's "Optimization" section names
    for it. The private ``logging._srcfile`` it also names (no caller's frame looked
    up) is left alone: it saved about 1% of small files per second (issue 14).
    """
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
