"""The server's log handler: lines held back for a burst come out whole, in order, and
formatted exactly as the standard formatter would (the time part is cached per second)."""

from __future__ import annotations

import logging
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftserver.logsetup import FORMAT, _whole_lines_within, lines_held, setup_logging


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    path = tmp_path / "ftserver.log"
    setup_logging("info", path)
    try:
        yield path
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], level = saved
        root.setLevel(level)


def test_held_lines_are_written_whole_in_order_and_as_the_standard_formatter_would(
        log_file: Path) -> None:
    log = logging.getLogger("ftserver.transfer")
    created = [1_700_000_000.25, 1_700_000_000.75, 1_700_000_001.5, 1_700_000_000.125]
    records = [logging.makeLogRecord({"name": log.name, "levelno": logging.INFO,
                                      "levelname": "INFO", "msg": "op=put n=%d x=%s",
                                      "args": (index, "y" * 300), "created": when,
                                      "msecs": (when % 1) * 1000})
               for index, when in enumerate(created)]
    log.handle(records[0])
    with lines_held():
        for record in records[1:]:
            log.handle(record)
        with lines_held():  # nested: the outer block writes
            log.info("inner")
        assert log_file.read_text().count("\n") == 1  # nothing of the held ones yet
    log.info("after")

    lines = log_file.read_text().splitlines()
    standard = logging.Formatter(FORMAT)
    assert lines[:4] == [standard.format(record) for record in records]
    assert lines[4].endswith("INFO ftserver.transfer: inner")
    assert lines[5].endswith("INFO ftserver.transfer: after")
    assert len(lines) == 6


def test_lines_held_by_one_thread_do_not_hold_another_threads_lines(log_file: Path) -> None:
    log = logging.getLogger("ftserver.transfer")
    with lines_held():
        log.info("held")
        other = threading.Thread(target=log.info, args=("other thread",))
        other.start()
        other.join(timeout=10)
        assert log_file.read_text().splitlines()[-1].endswith("other thread")
    assert log_file.read_text().splitlines()[-1].endswith("held")


def test_held_lines_are_joined_into_writes_no_pipe_would_split() -> None:
    lines = [f"{index:04d} {'x' * (index % 300)}\n" for index in range(400)] + ["z" * 9000 + "\n"]
    chunks = list(_whole_lines_within(lines, select.PIPE_BUF))
    assert "".join(chunks) == "".join(lines)
    assert all(chunk.endswith("\n") for chunk in chunks)
    assert all(len(chunk.encode()) <= select.PIPE_BUF for chunk in chunks[:-1])
    assert chunks[-1] == lines[-1]  # a line longer than the limit goes alone
    assert len(chunks) < len(lines) // 10
