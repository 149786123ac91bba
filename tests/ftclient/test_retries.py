"""Client retries (issue 4): a dropped link is retried and resumes; lasting errors are not.

Cuts come from a CuttingProxy on 127.0.0.1 that resets the first connections
after an exact byte count and relays later ones whole, so each test knows how
many retries it must see and from which offset the transfer resumed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.protocol.errors import (
    BadPath,
    Busy,
    CannotConnect,
    ConnectionLost,
    FtError,
    IntegrityError,
    Locked,
    NoSpace,
    NotFound,
    OutcomeUnknown,
    PermissionDenied,
    SourceChanged,
    StorageError,
    StreamCut,
    Timeout,
    WrongProtocol,
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
    (OutcomeUnknown("cut after the remove was sent"), True, None),
    (BadPath("path leaves the shared folder"), True, None),
    (PermissionDenied("permission denied"), True, None),
    (IntegrityError("'a' arrived with a different SHA-256"), True, None),
    (SourceChanged("the local file changed while it was sent"), True, None),
    (NoSpace("the server's disk is full"), True, None),
    (StorageError("I/O error on the server"), True, None),
    (CannotConnect("connection refused"), False, None),  # fail fast: nothing listens
    (CannotConnect("connection refused"), True, "connection lost"),  # a server restarting
    (WrongProtocol("does not speak TLS"), False, None),
    (WrongProtocol("does not speak TLS"), True, None),
    (StreamCut("cut after bytes were written"), True, None),
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


# ------------------------------------------------------------ ls, stat, mkdir, mv, rm


@pytest.fixture(scope="module")
def hello_bytes(shared_server: ServerProcess) -> int:
    """How many bytes the server sends before its first reply to a request: its hello."""
    with cutting_proxy(shared_server.port) as probe:
        with RawConnection(probe.port) as raw:
            raw.hello()
    return probe.forwarded["s2c"]


def cut_in_reply(shared_server: ServerProcess, hello_bytes: int):  # noqa: ANN201
    """A proxy that cuts the first connection 5 bytes into the reply to its first request:
    the request reached the server whole and was served; its answer never arrives."""
    return cutting_proxy(shared_server.port, cut_after=hello_bytes + 5, direction="s2c",
                         cut_first=1)


def test_ls_stat_walk_and_mkdir_p_cut_in_the_reply_are_retried(
        shared_server, hello_bytes, connect) -> None:
    (shared_server.root / "simple").mkdir()
    (shared_server.root / "simple" / "a.txt").write_bytes(b"a" * 10)
    calls = [
        lambda client, notes: [e.name for e in client.list("simple", on_retry=notes.append)],
        lambda client, notes: client.stat("simple/a.txt", digest=True,
                                          on_retry=notes.append).size,
        lambda client, notes: [e.path for e in client.walk("simple", on_retry=notes.append)],
        lambda client, notes: client.mkdir("simple/made/deep", parents=True,
                                           on_retry=notes.append),
        lambda client, notes: client.set_mtime("simple/a.txt", 1_500_000_000.0,
                                               on_retry=notes.append),
    ]
    results = []
    for call in calls:
        notes: list[RetryNote] = []
        with cut_in_reply(shared_server, hello_bytes) as proxy:
            results.append(call(connect(shared_server, port=proxy.port, retries=2), notes))
            assert proxy.cuts == 1
        assert [(note.attempt, note.reason) for note in notes] == [(1, "connection lost")]
    assert results[:3] == [["a.txt"], 10, ["a.txt"]]
    assert (shared_server.root / "simple/made/deep").is_dir()
    assert (shared_server.root / "simple/a.txt").stat().st_mtime == 1_500_000_000.0


def test_rm_mv_and_mkdir_cut_after_sending_are_not_retried_and_say_so(
        shared_server, hello_bytes, connect) -> None:
    """Run twice, these would not end as once (a retried rm of what the first removed
    answers not_found): a cut after the request went out is reported as unknown."""
    (shared_server.root / "gone.txt").write_bytes(b"x")
    (shared_server.root / "from.txt").write_bytes(b"x")
    calls = [
        (lambda client, notes: client.remove("gone.txt", on_retry=notes.append),
         "removed", "gone.txt"),
        (lambda client, notes: client.move("from.txt", "to.txt", on_retry=notes.append),
         "moved", "to.txt"),
        (lambda client, notes: client.mkdir("new-folder", on_retry=notes.append),
         "created", "new-folder"),
    ]
    for call, done, check in calls:
        notes: list[RetryNote] = []
        with cut_in_reply(shared_server, hello_bytes) as proxy:
            with pytest.raises(OutcomeUnknown) as caught:
                call(connect(shared_server, port=proxy.port, retries=3), notes)
            assert proxy.cuts == 1
        assert notes == []
        assert f"whether it was {done} is unknown" in caught.value.message
        assert f"`ftclient stat {check}`" in caught.value.message
        assert "gave up" not in caught.value.message
    # The server did each one: that is why none was sent again.
    assert not (shared_server.root / "gone.txt").exists()
    assert (shared_server.root / "to.txt").exists()
    assert (shared_server.root / "new-folder").is_dir()


def test_rm_mv_and_mkdir_are_retried_until_the_request_is_sent(shared_server, connect
                                                                 ) -> None:
    """A connection cut before the request went out whole cannot have done it: retried."""
    (shared_server.root / "early.txt").write_bytes(b"x")
    (shared_server.root / "early-from.txt").write_bytes(b"x")
    calls = [
        lambda client, notes: client.remove("early.txt", on_retry=notes.append),
        lambda client, notes: client.move("early-from.txt", "early-to.txt",
                                          on_retry=notes.append),
        lambda client, notes: client.mkdir("early-folder", on_retry=notes.append),
    ]
    for call in calls:
        notes: list[RetryNote] = []
        # the first connection is reset at once, before even the hello
        with cutting_proxy(shared_server.port, cut_after=0, cut_first=1) as proxy:
            call(connect(shared_server, port=proxy.port, retries=2), notes)
            assert proxy.cuts == 1
        assert [(note.attempt, note.reason) for note in notes] == [(1, "connection lost")]
    assert not (shared_server.root / "early.txt").exists()
    assert (shared_server.root / "early-to.txt").exists()
    assert (shared_server.root / "early-folder").is_dir()


def test_cli_ls_and_stat_show_each_retry_and_rm_an_unknown_outcome(
        shared_server, hello_bytes) -> None:
    (shared_server.root / "cli-ls").mkdir()
    (shared_server.root / "cli-ls" / "seen.txt").write_bytes(b"seen")
    with cut_in_reply(shared_server, hello_bytes) as proxy:
        listed = ftclient("--server", f"127.0.0.1:{proxy.port}", "ls", "cli-ls")
    assert listed.returncode == 0, listed.stderr
    assert "seen.txt" in listed.stdout
    assert listed.stderr.splitlines() == ["ls cli-ls: retry 1/3 in 1 s: connection lost"]
    with cut_in_reply(shared_server, hello_bytes) as proxy:
        stat = ftclient("--server", f"127.0.0.1:{proxy.port}", "-q", "stat", "cli-ls/seen.txt")
    assert stat.returncode == 0, stat.stderr
    assert stat.stderr == ""  # -q: no retry lines either
    assert "size:   4" in stat.stdout
    with cut_in_reply(shared_server, hello_bytes) as proxy:
        removed = ftclient("--server", f"127.0.0.1:{proxy.port}", "rm", "cli-ls/seen.txt")
    line = one_error_line(removed)
    assert "unknown; check with `ftclient stat cli-ls/seen.txt`" in line, line
    assert not (shared_server.root / "cli-ls" / "seen.txt").exists()


def test_a_connection_the_server_closed_when_idle_is_replaced_before_a_move(
        start_server, connect) -> None:
    """The server says goodbye (``timeout``) and hangs up on an idle connection; a move
    sent on it afterwards never reached the server, so it is no unknown outcome: the
    client opens a new connection first."""
    server = start_server(limits={"idle_timeout": 1.0})
    (server.root / "idle-from.txt").write_bytes(b"x")
    client = connect(server)
    assert [entry.name for entry in client.list("")] == ["idle-from.txt"]
    assert server.wait_for_log(r"closing, "), "the idle connection was not closed"
    client.move("idle-from.txt", "idle-to.txt")
    assert (server.root / "idle-to.txt").exists()


def test_cli_fails_at_once_when_nothing_listens_and_says_why(tmp_path: Path) -> None:
    """Issue 17: a refused connection took 7 s of "retry ... connection lost"."""
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = ftclient("--server", f"127.0.0.1:{port}", "ls", cwd=tmp_path)
    line = one_error_line(result)  # no retry lines before it
    assert "connection refused (is ftserver running there, on that port?)" in line


def test_cli_tls_to_a_plaintext_server_fails_at_once_and_says_why(
        shared_server: ServerProcess, tmp_path: Path) -> None:
    result = ftclient("--server", f"127.0.0.1:{shared_server.port}", "--tls", "ls",
                      cwd=tmp_path)
    line = one_error_line(result)
    assert "does not speak TLS" in line and "retry" not in line
