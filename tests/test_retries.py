"""Client retries (issue 4): a dropped link is retried and resumes; lasting errors are not.

Cuts come from a CuttingProxy on 127.0.0.1 that resets the first connections
after an exact byte count and relays later ones whole, so each test knows how
many retries it must see and from which offset the transfer resumed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import (
    BadPath,
    Busy,
    ConnectionLost,
    FtError,
    IntegrityError,
    Locked,
    NoSpace,
    NotFound,
    PermissionDenied,
    SourceChanged,
    StorageError,
    Timeout,
)
from ftclient.retry import (
    DEFAULT_RETRIES,
    DEFAULT_RETRY_DELAY,
    RetryNote,
    backoff,
    reason_to_retry,
)
from tests.cliutil import one_error_line
from tests.proxy import cutting_proxy
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

MiB = 1 << 20
CLIENT = [sys.executable, "-m", "ftclient"]


def ftclient(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLIENT + list(args), cwd=cwd, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One thread-executor server for the module: retrying is the client's business."""
    server = ServerProcess(tmp_path_factory.mktemp("retries"), executor="thread").start()
    yield server
    try:
        server.terminate(timeout=20)
    except Exception:
        server.kill()


def test_the_default_retries_give_up_well_within_half_a_minute() -> None:
    waited = sum(backoff(DEFAULT_RETRY_DELAY, attempt)
                 for attempt in range(1, DEFAULT_RETRIES + 1))
    assert DEFAULT_RETRIES == 3
    assert waited <= 10


@pytest.mark.parametrize(("error", "after_cut", "reason"), [
    (ConnectionLost("the connection dropped"), False, "connection lost"),
    (Timeout("the transfer stalled"), False, "timed out"),
    (Busy("the server is shutting down; retry soon"), False, "server shutting down"),
    (Busy("busy: the server is serving its limit; retry shortly"), False, None),
    (Locked("another upload to 'a' is in progress"), True, "name still locked"),
    (Locked("another upload to 'a' is in progress"), False, None),
    (NotFound("'a': not found"), True, None),
    (BadPath("path leaves the shared folder"), True, None),
    (PermissionDenied("permission denied"), True, None),
    (IntegrityError("'a' arrived with a different SHA-256"), True, None),
    (SourceChanged("the local file changed while it was sent"), True, None),
    (NoSpace("the server's disk is full"), True, None),
    (StorageError("I/O error on the server"), True, None),
])
def test_which_errors_are_retried(error: FtError, after_cut: bool, reason: str | None) -> None:
    assert reason_to_retry(error, after_cut) == reason


def test_put_cut_twice_retries_and_resumes(shared_server, connect, make_file) -> None:
    source = make_file("flaky-put.bin", 3 * MiB)
    notes: list[RetryNote] = []
    with cutting_proxy(shared_server.port, cut_after=MiB + 777, cut_first=2) as proxy:
        client = connect(shared_server, port=proxy.port, retries=5)
        result = client.put(source, "flaky-put.bin", on_retry=notes.append)
        assert proxy.cuts == 2
    # two cuts; on a loaded machine a retry may also meet "locked" (the cut session
    # not yet closed), which is retried as well
    assert result.retries == len(notes) >= 2
    assert [note.attempt for note in notes] == list(range(1, len(notes) + 1))
    assert all(note.reason in ("connection lost", "name still locked") for note in notes), [
        (note.reason, note.error.message) for note in notes]
    assert result.resumed_from > 0  # the last attempt resumed from what the server held
    assert (shared_server.root / "flaky-put.bin").read_bytes() == source.read_bytes()


def test_get_cut_retries_and_resumes(shared_server, connect, make_file, tmp_path) -> None:
    data = make_file("flaky-get.bin", 3 * MiB).read_bytes()
    (shared_server.root / "flaky-get.bin").write_bytes(data)
    destination = tmp_path / "flaky-get.bin"
    with cutting_proxy(shared_server.port, cut_after=MiB + 4321, direction="s2c",
                       cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=2)
        result = client.get("flaky-get.bin", destination)
    assert (result.retries, proxy.cuts) == (1, 1)
    assert 0 < result.resumed_from < len(data)
    assert destination.read_bytes() == data


def test_retries_0_fails_at_the_first_cut(shared_server, connect, make_file) -> None:
    source = make_file("no-retry.bin", 2 * MiB)
    with cutting_proxy(shared_server.port, cut_after=MiB, cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=0)
        with pytest.raises(ConnectionLost) as caught:
            client.put(source, "no-retry.bin")
        assert "gave up" not in caught.value.message
    assert not (shared_server.root / "no-retry.bin").exists()


def test_a_cut_on_every_attempt_gives_up_and_says_so(shared_server, connect, make_file) -> None:
    source = make_file("hopeless.bin", 2 * MiB)
    notes: list[RetryNote] = []
    with cutting_proxy(shared_server.port, cut_after=100_000) as proxy:
        client = connect(shared_server, port=proxy.port, retries=2)
        # Mostly a cut; on a loaded machine a retry may find the cut session still
        # holding the name ("locked"), which after a cut is retried too.
        with pytest.raises((ConnectionLost, Locked)) as caught:
            client.put(source, "hopeless.bin", on_retry=notes.append)
        assert proxy.cuts >= 2
    assert [note.attempt for note in notes] == [1, 2]
    assert "gave up after 2 retries" in caught.value.message


def test_lasting_errors_are_not_retried(shared_server, connect, make_file, tmp_path) -> None:
    notes: list[RetryNote] = []
    client = connect(shared_server, retries=3)
    with pytest.raises(NotFound) as missing:
        client.get("no-such-file.bin", tmp_path / "x", on_retry=notes.append)
    assert "gave up" not in missing.value.message

    # Another upload holds the name and no cut happened: "locked" is final, at once.
    source = make_file("held.bin", 1000)
    with RawConnection(shared_server.port) as raw:
        raw.hello()
        raw.start_put("held.bin", 5000)
        with pytest.raises(Locked):
            client.put(source, "held.bin", on_retry=notes.append)
    assert notes == []


def test_cli_shows_each_retry_and_the_outcome(shared_server, make_file, tmp_path) -> None:
    source = make_file("cli-flaky.bin", 3 * MiB)
    with cutting_proxy(shared_server.port, cut_after=MiB + 99, cut_first=1) as proxy:
        result = ftclient("--server", f"127.0.0.1:{proxy.port}", "put", str(source))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "retry 1/3 in 1 s: " in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("put cli-flaky.bin: ") and last.endswith("after 1 retry"), last
    assert (shared_server.root / "cli-flaky.bin").read_bytes() == source.read_bytes()


def test_cli_retries_0_fails_with_one_line_and_the_next_run_resumes(
        shared_server, make_file) -> None:
    source = make_file("cli-once.bin", 3 * MiB)
    with cutting_proxy(shared_server.port, cut_after=2 * MiB, cut_first=1) as proxy:
        failed = ftclient("--server", f"127.0.0.1:{proxy.port}", "--retries", "0", "-q",
                          "put", str(source))
    line = one_error_line(failed)
    assert "connection" in line, line
    again = ftclient("--server", f"127.0.0.1:{shared_server.port}", "put", str(source))
    assert again.returncode == 0, again.stderr
    assert "resumed at" in again.stderr
    assert (shared_server.root / "cli-once.bin").read_bytes() == source.read_bytes()


def test_cli_gives_up_on_a_dead_server_after_the_retries(tmp_path: Path) -> None:
    with cutting_proxy(1, cut_after=0) as proxy:  # nothing listens on port 1
        port = proxy.port
        result = ftclient("--server", f"127.0.0.1:{port}", "--retries", "2", "get", "x.bin",
                          cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert [line.split(": ", 1)[1] for line in lines[:2]] == [
        "retry 1/2 in 1 s: connection lost", "retry 2/2 in 2 s: connection lost"]
    assert lines[-1].startswith("ftclient: ") and lines[-1].endswith("(gave up after 2 retries)")
    assert list(tmp_path.iterdir()) == []  # no partial, no file
