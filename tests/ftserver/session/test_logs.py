"""Logs (issue 4): one grep-friendly line per transfer, to stderr or to ``log_file``.

Each transfer, finished or failed, is one line of key=value fields: op, peer
(who), path (what), bytes, seconds, result. With ``log_file`` the lines go to
that file, from worker processes too, and a file moved away by logrotate is
reopened on the next line.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.protocol.errors import NotFound
from ftclient.pipeline import PipedFile
from tests.ftserver.test_cli_server import assert_config_error, run_server_expecting_exit
from tests.rawwire import RawConnection
from tests.serverproc import LISTENING, ServerProcess

OK_LINE = (r"INFO ftserver\.transfer: op={op} peer=127\.0\.0\.1:\d+ user=- path='{path}' "
           r"size={size} offset=0 bytes={size} seconds=\d+\.\d{{3}} result=ok$")
FAILED_LINE = (r"INFO ftserver\.transfer: op=get peer=127\.0\.0\.1:\d+ user=- path='{path}' "
               r"bytes=0 seconds=\d+\.\d{{3}} result=not_found message=")
BROKEN_LINE = (r"INFO ftserver\.transfer: op=put peer=127\.0\.0\.1:\d+ user=- path='{path}' "
               r"bytes=(\d+) seconds=\d+\.\d{{3}} result=connection message=")


def wait_for_line(path: Path, pattern: str, timeout: float = 20.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        match = re.search(pattern, text, re.MULTILINE)
        if match:
            return match
        if time.monotonic() > deadline:
            raise AssertionError(f"no line matching {pattern!r} in {path}:\n{text}")
        time.sleep(0.05)


@pytest.fixture(params=["thread", "process"])
def logging_server(request: pytest.FixtureRequest, tmp_path: Path
                   ) -> Iterator[tuple[ServerProcess, Path]]:
    log_file = tmp_path / "logs" / "ftserver.log"
    log_file.parent.mkdir()
    server = ServerProcess(tmp_path / "srv", executor=request.param, workers=2,
                           log_file=str(log_file))
    server.launch()
    try:
        server.port = int(wait_for_line(log_file, LISTENING.pattern).group(2))
        yield server, log_file
    finally:
        server.terminate(timeout=20)


def test_each_transfer_is_one_line_in_the_log_file(
        logging_server: tuple[ServerProcess, Path], connect: Callable, make_file: Callable,
        tmp_path: Path) -> None:
    server, log_file = logging_server
    source = make_file("logged.bin", 123_457)
    client = connect(server)
    client.put(source, "logged.bin")
    client.get("logged.bin", tmp_path / "back.bin")
    with pytest.raises(NotFound):
        client.get("missing.bin", tmp_path / "missing.bin")
    wait_for_line(log_file, OK_LINE.format(op="put", path="logged.bin", size=123_457))
    wait_for_line(log_file, OK_LINE.format(op="get", path="logged.bin", size=123_457))
    wait_for_line(log_file, FAILED_LINE.format(path="missing.bin"))
    assert server.log == ""  # nothing on stderr: it all went to the file
    assert "Traceback" not in log_file.read_text()


def test_each_file_of_a_pipelined_burst_is_one_whole_line_in_the_log_file(
        logging_server: tuple[ServerProcess, Path], connect: Callable, make_file: Callable
) -> None:
    """A burst's lines are made without a LogRecord each: they must still be the same
    lines, whole, in order, with the standard time stamp."""
    server, log_file = logging_server
    client = connect(server)
    client.mkdir("burst")
    files = [PipedFile(str(make_file(f"b{index:02d}.bin", 100 + index)), f"burst/b{index:02d}.bin")
             for index in range(40)]
    refused = PipedFile(str(make_file("refused.bin", 7)), "burst/.ft-reserved")
    results = client.put_many([*files[:20], refused, *files[20:]])
    assert [result.error is None for result in results] == [True] * 20 + [False] + [True] * 20
    stamp = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "
    for index in range(40):
        wait_for_line(log_file, stamp + OK_LINE.format(
            op="put", path=f"burst/b{index:02d}\\.bin", size=100 + index))
    wait_for_line(log_file, stamp + r"INFO ftserver\.transfer: op=put peer=127\.0\.0\.1:\d+ "
                  r"user=- path='burst/\.ft-reserved' bytes=0 seconds=\d+\.\d{3} result=bad_path "
                  r"message=")
    burst_lines = [line for line in log_file.read_text().splitlines() if "path='burst/" in line]
    assert [re.search(r"path='burst/([^']+)'", line).group(1) for line in burst_lines] == [
        f"b{index:02d}.bin" for index in range(20)] + [".ft-reserved"] + [
        f"b{index:02d}.bin" for index in range(20, 40)]


def test_a_log_file_moved_by_logrotate_is_reopened(
        logging_server: tuple[ServerProcess, Path], connect: Callable, make_file: Callable
) -> None:
    server, log_file = logging_server
    client = connect(server)
    client.put(make_file("before.bin", 10), "before.bin")
    wait_for_line(log_file, OK_LINE.format(op="put", path="before.bin", size=10))
    rotated = log_file.with_name("ftserver.log.1")
    log_file.rename(rotated)  # what logrotate does (without copytruncate)
    client.put(make_file("after.bin", 20), "after.bin")
    wait_for_line(log_file, OK_LINE.format(op="put", path="after.bin", size=20))
    assert "after.bin" not in rotated.read_text()


def test_transfer_lines_go_to_stderr_without_a_log_file(shared_server: ServerProcess,
                                                        connect: Callable,
                                                        make_file: Callable) -> None:
    connect(shared_server).put(make_file("to-stderr.bin", 5), "to-stderr.bin")
    pattern = OK_LINE.format(op="put", path="to-stderr.bin", size=5)
    assert shared_server.wait_for_log(pattern.rstrip("$"), timeout=10), shared_server.log


def test_a_log_file_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    result = run_server_expecting_exit(
        ["--root", str(tmp_path / "share"), "--state-dir", str(tmp_path / "state"),
         "--port", "0", "--host", "127.0.0.1", "--log-file", str(tmp_path / "no" / "x.log")])
    assert_config_error(result, "log_file", "x.log")


def test_a_broken_upload_logs_the_bytes_that_arrived(
        logging_server: tuple[ServerProcess, Path]) -> None:
    """A transfer cut short still says how much crossed: 1 MiB of a 4 MiB upload."""
    server, log_file = logging_server
    with RawConnection(server.port) as raw:
        raw.hello()
        raw.start_put("cut.bin", 4 << 20)
        raw.send_bytes(b"x" * (1 << 20))
    line = wait_for_line(log_file, BROKEN_LINE.format(path="cut.bin"))
    assert int(line.group(1)) == 1 << 20


def test_sighup_reopens_the_log_file_and_the_server_keeps_serving(
        logging_server: tuple[ServerProcess, Path], connect: Callable, make_file: Callable
) -> None:
    """As daemons do (issue 18): before, SIGHUP killed the server at once, unlogged."""
    server, log_file = logging_server
    assert server.proc is not None
    rotated = log_file.with_name("ftserver.log.1")
    log_file.rename(rotated)  # as logrotate does, without copytruncate
    server.proc.send_signal(signal.SIGHUP)
    wait_for_line(log_file, r"received SIGHUP: log file reopened; still serving")
    client = connect(server)  # still serving, in either executor
    client.put(make_file("after-hup.bin", 1000), "after-hup.bin")
    wait_for_line(log_file, OK_LINE.format(op="put", path="after-hup.bin", size=1000))
    assert server.proc.poll() is None
    assert "after-hup.bin" not in rotated.read_text()
    assert server.terminate(timeout=20) == 0
