"""Logging set-up shared by the listener and worker processes: one line per event.

Lines go to stderr, or appended to ``log_file`` through a WatchedFileHandler,
which reopens the file when logrotate has moved it away (no restart or signal
needed). Worker processes append to the same file; each line is one write.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogFileError(Exception):
    """The log file cannot be opened; the message says which and why."""


def setup_logging(level: str, log_file: str | os.PathLike[str] | None = None) -> None:
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        try:
            handler = logging.handlers.WatchedFileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise LogFileError(f"config key 'log_file': cannot open {os.fspath(log_file)!r}: "
                               f"{exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter(FORMAT))
    _skip_unused_record_fields()
    root = logging.getLogger()
    for old in root.handlers:
        old.close()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _skip_unused_record_fields() -> None:
    """Stop every log record collecting what FORMAT never prints.

    A record normally looks up its caller's frame, thread, process and
    multiprocessing names; with one line per small file that was a measurable
    share of the server's work. These are the switches the logging HOWTO's
    "Optimization" section names for it (``_srcfile`` included).
    """
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
