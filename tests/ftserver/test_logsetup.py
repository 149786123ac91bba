"""The server's log handler: lines held back for a burst come out whole, in order, and
formatted exactly as the standard formatter would (the time part is cached per second)."""

from __future__ import annotations

import logging
import re
import select
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftserver.logsetup import (
    FORMAT,
    _SecondCachingFormatter,
    _whole_lines_within,
    lines_held,
    log_text,
    setup_logging,
)


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


def test_a_line_made_without_a_record_is_the_standard_formatters_line() -> None:
    ours = _SecondCachingFormatter()
    standard = logging.Formatter(FORMAT)
    for created in (1_700_000_000.0, 1_700_000_000.0005, 1_700_000_000.9999, 1_700_000_001.5,
                    1_700_000_000.25, 1_712_345_678.123456):
        record = logging.makeLogRecord({"name": "ftserver.transfer", "levelno": logging.INFO,
                                        "levelname": "INFO", "msg": "op=put path='a%b'"})
        record.created = created
        record.msecs = int((created - int(created)) * 1000) + 0.0  # as LogRecord sets it
        made = ours.line(created, "INFO", "ftserver.transfer", "op=put path='a%b'")
        assert made == standard.format(record)


def test_log_text_held_comes_out_in_order_with_lines_logged_the_usual_way(
        log_file: Path) -> None:
    log = logging.getLogger("ftserver.transfer")
    with lines_held():
        log_text(log, logging.INFO, "op=put path='a%s' result=ok")
        log.info("usual %d", 2)
        log_text(log, logging.INFO, "third", "fourth")
        log_text(log, logging.DEBUG, "not shown at info")
        assert log_file.read_text() == ""
    log_text(log, logging.INFO, "not held", "nor this")
    lines = log_file.read_text().splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [
        "INFO ftserver.transfer: op=put path='a%s' result=ok",
        "INFO ftserver.transfer: usual 2",
        "INFO ftserver.transfer: third",
        "INFO ftserver.transfer: fourth",
        "INFO ftserver.transfer: not held",
        "INFO ftserver.transfer: nor this"]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", " ".join(line.split(" ")[:2]))
               for line in lines)


def test_log_text_goes_the_librarys_way_when_another_handler_or_a_filter_would_see_it(
        log_file: Path) -> None:
    log = logging.getLogger("ftserver.transfer")
    seen: list[logging.LogRecord] = []
    extra = logging.Handler()
    extra.emit = seen.append  # type: ignore[method-assign]
    log.addHandler(extra)
    try:
        with lines_held():
            log_text(log, logging.INFO, "to both")
    finally:
        log.removeHandler(extra)
    assert [record.getMessage() for record in seen] == ["to both"]
    assert log_file.read_text().endswith("INFO ftserver.transfer: to both\n")
    dropped = logging.Filter("somewhere.else")
    log.addFilter(dropped)
    try:
        with lines_held():
            log_text(log, logging.INFO, "filtered out")
    finally:
        log.removeFilter(dropped)
    assert "filtered out" not in log_file.read_text()
