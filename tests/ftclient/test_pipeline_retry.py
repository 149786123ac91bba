"""Many-file transfers survive a dropped connection: put_many, get_many and the trees.

A CuttingProxy on 127.0.0.1 resets the connection after an exact byte count,
in the middle of a pipelined stream of small files. The client must keep the
result of every file already answered, reconnect, send the rest again, report
each file exactly once, count each file's bytes once, and, when the link stays
bad, fail only the files not answered (with "gave up after N retries") instead
of raising and losing the others.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.protocol.errors import ConnectionLost, Locked, Timeout
from ftclient.pipeline import PipedFile
from ftclient.retry import RetryNote
from ftclient.tree import TreeProgress, get_tree, put_tree
from tests.ftclient.cli.test_cli_client import ftclient
from tests.procinfo import quiet_usage, usage
from tests.proxy import cutting_proxy
from tests.rawwire import RawConnection
from tests.serverproc import ServerProcess

FILES = 200
KiB = 1 << 10


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One thread-executor server for the module: retrying is the client's business."""
    server = ServerProcess(tmp_path_factory.mktemp("pipeline-retry"), executor="thread").start()
    yield server
    try:
        server.terminate(timeout=20)
    except Exception:
        server.kill()
    assert "Traceback" not in server.log, server.log


@pytest.fixture(scope="module")
def hello_bytes(shared_server: ServerProcess) -> int:
    """How many bytes the server sends before its first reply to a request: its hello."""
    with cutting_proxy(shared_server.port) as probe:
        with RawConnection(probe.port) as raw:
            raw.hello()
    return probe.forwarded["s2c"]


def small_files(folder: Path, count: int = FILES) -> dict[str, bytes]:
    """``count`` files of 1 to 8 KiB of random bytes (seeded by name); name -> content."""
    folder.mkdir(parents=True, exist_ok=True)
    contents = {}
    for index in range(count):
        name = f"f{index:03d}.bin"
        data = random.Random(f"{folder.name}/{name}").randbytes(KiB + 37 * index % (7 * KiB))
        (folder / name).write_bytes(data)
        contents[name] = data
    return contents


class Tally:
    """A ``moved`` callback that counts the bytes reported per file."""

    def __init__(self) -> None:
        self.bytes: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def __call__(self, name: str, count: int) -> None:
        self.bytes[name] += count
        self.calls[name] += 1


class AfterTheCutSessionEnds:
    """An ``on_retry`` that keeps each note and, after a lost connection, waits (up to
    30 s) until the server has ended the session that was cut.

    The server still reads what reached it before the reset, and a burst of streamed
    puts holds its names until it is settled: a retry that comes sooner finds them
    locked (it is retried, but with a retry delay of 0.05 s a loaded machine can use up
    every retry that way). Make one before the transfer: it counts the server's threads
    then, with no session of ours.
    """

    def __init__(self, server: ServerProcess) -> None:
        assert server.proc is not None
        self.pid = server.proc.pid
        self.threads = quiet_usage(self.pid)[1]
        self.notes: list[RetryNote] = []

    def __call__(self, note: RetryNote) -> None:
        self.notes.append(note)
        if note.reason == "connection lost":
            deadline = time.monotonic() + 30
            while usage(self.pid)[1] > self.threads and time.monotonic() < deadline:
                time.sleep(0.02)
            assert usage(self.pid)[1] <= self.threads, "the cut session never ended"


def assert_each_once(results, files: list[PipedFile]) -> None:  # noqa: ANN001
    assert [(result.local, result.remote) for result in results] == [
        (item.local, item.remote) for item in files]


def test_put_many_cut_mid_stream_sends_the_rest_again(shared_server, connect, tmp_path
                                                      ) -> None:
    contents = small_files(tmp_path / "up")
    files = [PipedFile(str(tmp_path / "up" / name), f"up/{name}") for name in contents]
    tally = Tally()
    after_cut = AfterTheCutSessionEnds(shared_server)
    notes = after_cut.notes
    with cutting_proxy(shared_server.port, cut_after=300 * KiB, cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=3, retry_delay=0.05)
        results = client.put_many(files, tally, on_retry=after_cut)
        assert proxy.cuts == 1
    assert_each_once(results, files)
    assert [result.error for result in results] == [None] * FILES
    assert notes and notes[0].reason == "connection lost", notes
    assert all(note.reason in ("connection lost", "name still locked") for note in notes)
    assert re.fullmatch(r"\d+ files|up/f\d+\.bin", notes[0].path), notes[0].path
    for name, data in contents.items():
        assert (shared_server.root / "up" / name).read_bytes() == data
        assert tally.bytes[f"up/{name}"] == len(data)  # counted once, though maybe sent twice
    assert set(tally.calls.values()) == {1}


def test_put_many_whose_replies_are_cut_reports_each_republished_file_once(
        shared_server, hello_bytes, connect, tmp_path) -> None:
    """The server published files whose answers never arrived: they are sent again,
    replaced by identical verified content, and reported once, as sent."""
    contents = small_files(tmp_path / "again", 40)
    files = [PipedFile(str(tmp_path / "again" / name), f"again/{name}") for name in contents]
    notes: list[RetryNote] = []
    # the replies (about 100 bytes each) to the first few files get through, then the cut
    with cutting_proxy(shared_server.port, cut_after=hello_bytes + 500, direction="s2c",
                       cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=2, retry_delay=0.05)
        results = client.put_many(files, on_retry=notes.append)
        assert proxy.cuts == 1
    assert_each_once(results, files)
    assert [result.error for result in results] == [None] * len(files)
    assert len(notes) >= 1
    for name, data in contents.items():
        assert (shared_server.root / "again" / name).read_bytes() == data
    published = Counter(re.findall(r"put peer=\S+ user=\S+ path='(again/[^']*)' size=",
                                   shared_server.log))
    assert max(published.values()) == 2, published  # published, unanswered, sent again


def test_a_name_locked_after_the_cut_is_sent_again_until_the_retries_run_out(
        shared_server, connect, tmp_path) -> None:
    """After our own cut, "locked" may be our cut session still holding the name: that
    file goes out again. Here the retries wait for the cut session to end, so the one
    name locked is held by another upload all along: it fails at the end with its own
    error and the count of retries, and every other file is sent."""
    contents = small_files(tmp_path / "held", 40)
    files = [PipedFile(str(tmp_path / "held" / name), f"held/{name}") for name in contents]
    files.append(PipedFile(files[0].local, "held/taken.bin"))
    with RawConnection(shared_server.port) as holder:  # an upload in progress holds it
        holder.hello()
        holder.start_put("held/taken.bin", 100)
        after_cut = AfterTheCutSessionEnds(shared_server)  # counts the holder's session
        notes = after_cut.notes
        with cutting_proxy(shared_server.port, cut_after=60 * KiB, cut_first=1) as proxy:
            client = connect(shared_server, port=proxy.port, retries=2, retry_delay=0.05)
            results = client.put_many(files, on_retry=after_cut)
            assert proxy.cuts == 1
    assert_each_once(results, files)
    assert [result.error for result in results[:-1]] == [None] * len(contents)
    assert [(note.attempt, note.reason, note.path) for note in notes][1:] == [
        (2, "name still locked", "held/taken.bin")]
    assert notes[0].reason == "connection lost"
    taken = results[-1].error
    assert isinstance(taken, Locked)
    assert "held/taken.bin" in taken.message and taken.message.endswith(
        "(gave up after 2 retries)"), taken.message


def test_get_many_cut_mid_stream_fetches_the_rest_again(shared_server, connect, tmp_path
                                                        ) -> None:
    contents = small_files(shared_server.root / "down")
    local = tmp_path / "got"
    local.mkdir()
    files = [PipedFile(str(local / name), f"down/{name}") for name in contents]
    notes: list[RetryNote] = []
    tally = Tally()
    with cutting_proxy(shared_server.port, cut_after=333 * KiB + 11, direction="s2c",
                       cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=3, retry_delay=0.05)
        results = client.get_many(files, tally, on_retry=notes.append)
        assert proxy.cuts == 1
    assert_each_once(results, files)
    assert [result.error for result in results] == [None] * FILES
    assert [(note.attempt, note.reason) for note in notes] == [(1, "connection lost")]
    assert sorted(os.listdir(local)) == sorted(contents)  # no partial left behind
    for name, data in contents.items():
        assert (local / name).read_bytes() == data
        assert tally.bytes[f"down/{name}"] == len(data)
    assert set(tally.calls.values()) == {1}


def test_replies_that_arrived_before_a_reset_are_kept_though_the_next_request_fails(
        shared_server, connect, tmp_path) -> None:
    """A client slower than the link: the proxy forwards 100 KiB of replies and resets the
    connection while the client is still on the first file. The next get request it sends
    fails, but the replies already in its socket buffer are read and kept, not fetched
    again (once a loaded machine lost all but a few files of each attempt that way)."""
    contents = small_files(shared_server.root / "slow")  # more than WINDOW: asked as answered
    local = tmp_path / "slow"
    local.mkdir()
    files = [PipedFile(str(local / name), f"slow/{name}") for name in contents]
    notes: list[RetryNote] = []
    before_retry: list[int] = []
    budget = 100 * KiB
    with cutting_proxy(shared_server.port, cut_after=budget, direction="s2c",
                       cut_first=1) as proxy:

        def moved(name: str, size: int) -> None:
            if not notes:
                before_retry.append(size)
            if len(before_retry) == 1:  # the reset comes before we ask for more
                assert proxy.cut.wait(30)

        client = connect(shared_server, port=proxy.port, retries=1, retry_delay=0.05)
        results = client.get_many(files, moved, on_retry=notes.append)
        assert proxy.cuts == 1
    assert [result.error for result in results] == [None] * len(files)
    assert [(note.attempt, note.reason) for note in notes] == [(1, "connection lost")]
    # all the files whose replies came whole before the reset (each reply is its file's
    # bytes and about 300 bytes of headers), not just the one being read
    assert budget // 2 < sum(before_retry) < budget, before_retry
    for name, data in contents.items():
        assert (local / name).read_bytes() == data


def test_retries_0_fails_the_unanswered_files_and_keeps_the_answered(
        shared_server, connect, tmp_path) -> None:
    contents = small_files(shared_server.root / "once")
    local = tmp_path / "once"
    local.mkdir()
    files = [PipedFile(str(local / name), f"once/{name}") for name in contents]
    with cutting_proxy(shared_server.port, cut_after=100 * KiB, direction="s2c",
                       cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=0)
        results = client.get_many(files)  # no exception
    assert_each_once(results, files)
    done = [result for result in results if result.error is None]
    failed = [result for result in results if result.error is not None]
    assert done and failed
    assert results[:len(done)] == done  # answered in order, up to the cut
    for result in done:
        assert Path(result.local).read_bytes() == contents[Path(result.local).name]
    for result in failed:
        assert isinstance(result.error, ConnectionLost)
        assert "gave up" not in result.error.message
        assert not os.path.exists(result.local)


def test_a_link_cut_on_every_attempt_fails_the_rest_and_keeps_what_was_answered(
        shared_server, connect, tmp_path) -> None:
    contents = small_files(shared_server.root / "flaky")
    (shared_server.root / "flaky" / "big.bin").write_bytes(os.urandom(2 << 20))
    destination = tmp_path / "flaky"
    notes: list[RetryNote] = []
    # every connection is cut after 100 KiB of downloads: each attempt gets a few files
    with cutting_proxy(shared_server.port, cut_after=100 * KiB, direction="s2c") as proxy:
        client = connect(shared_server, port=proxy.port, retries=2, retry_delay=0.05)
        report = get_tree(client, "flaky", str(destination), on_retry=notes.append)
        assert proxy.cuts >= 3
    assert [note.attempt for note in notes] == [1, 2]
    failed = dict(report.failed)
    assert len(report.sent) + len(failed) == FILES + 1
    assert len(set(report.sent)) == len(report.sent) and not set(report.sent) & set(failed)
    assert 20 <= len(report.sent) < FILES  # three attempts' worth, none lost
    for local in report.sent:
        assert Path(local).read_bytes() == contents[Path(local).name]
    big = failed.pop(str(destination / "big.bin"))
    assert big.message.startswith("not tried, the connection had failed: ")
    assert all(isinstance(error, (ConnectionLost, Timeout)) for error in failed.values())
    assert all("(gave up after 2 retries)" in error.message for error in failed.values())
    assert len({id(error) for error in failed.values()}) == 1  # one cause, shared


def test_put_tree_cut_once_reports_each_file_once_and_its_meter_never_overshoots(
        shared_server, connect, tmp_path) -> None:
    contents = small_files(tmp_path / "meter" / "sub")
    large = os.urandom(3 << 19)
    (tmp_path / "meter" / "large.bin").write_bytes(large)
    seen: list[TreeProgress] = []
    after_cut = AfterTheCutSessionEnds(shared_server)
    notes = after_cut.notes
    with cutting_proxy(shared_server.port, cut_after=300 * KiB, cut_first=1) as proxy:
        client = connect(shared_server, port=proxy.port, retries=2, retry_delay=0.05)
        report = put_tree(client, str(tmp_path / "meter"), "meter", progress=seen.append,
                          on_retry=after_cut)
        assert proxy.cuts == 1
    assert report.failed == []
    assert sorted(report.sent) == sorted([f"meter/sub/{name}" for name in contents]
                                         + ["meter/large.bin"])
    assert report.bytes_moved == sum(map(len, contents.values())) + len(large)
    assert notes and notes[0].reason == "connection lost"
    total = seen[-1].bytes_total
    assert all(progress.bytes_done <= total and progress.files_done <= progress.files_total
               for progress in seen)
    assert (seen[-1].files_done, seen[-1].bytes_done) == (FILES + 1, total)
    assert (shared_server.root / "meter" / "large.bin").read_bytes() == large


def test_put_tree_on_a_link_that_stays_bad_reports_instead_of_raising(
        shared_server, connect, tmp_path) -> None:
    contents = small_files(tmp_path / "tree" / "sub")
    (tmp_path / "tree" / "large.bin").write_bytes(os.urandom(2 << 20))
    with cutting_proxy(shared_server.port, cut_after=200 * KiB) as proxy:
        client = connect(shared_server, port=proxy.port, retries=1, retry_delay=0.05)
        report = put_tree(client, str(tmp_path / "tree"), "tree")  # no exception
    failed = dict(report.failed)
    assert len(report.sent) + len(failed) == FILES + 1
    assert not set(report.sent) & set(failed)
    for name in report.sent:
        assert (shared_server.root / name).read_bytes() == contents[Path(name).name]
    assert failed.pop("tree/large.bin").message.startswith("not tried")
    # on a loaded machine a retry may meet the name still held by the cut session
    assert all(isinstance(error, (ConnectionLost, Timeout, Locked))
               and "(gave up after 1 retry)" in error.message for error in failed.values())


def test_put_tree_stops_at_a_lost_link_while_fixing_mtimes_of_unchanged_files(
        shared_server, connect, tmp_path) -> None:
    """Before anything moved, a lost link ends the tree at once, as a failed walk does,
    instead of waiting out the retries again for each unchanged file's mtime."""
    local = tmp_path / "touched"
    local.mkdir()
    direct = connect(shared_server)
    for index in range(3):
        (local / f"t{index}.txt").write_bytes(b"same" * (index + 1))
        direct.put(local / f"t{index}.txt", f"touched/t{index}.txt")
        os.utime(local / f"t{index}.txt", (1e9, 1e9))  # touched since: same bytes
    with cutting_proxy(shared_server.port) as probe:  # what the client sends up to the walk
        connect(shared_server, port=probe.port).walk("touched")
    walked = probe.forwarded["c2s"]
    notes: list[RetryNote] = []
    # every connection carries the client's hello, a walk and 16 bytes more: the walk
    # is answered, then no set_mtime request (longer than a walk's) ever arrives whole
    with cutting_proxy(shared_server.port, cut_after=walked + 16) as proxy:
        client = connect(shared_server, port=proxy.port, retries=1, retry_delay=0.05)
        with pytest.raises(ConnectionLost) as caught:
            put_tree(client, str(local), "touched", on_retry=notes.append)
    assert [(note.attempt, note.path) for note in notes] == [(1, "touched/t0.txt")]
    # once, not once for each file
    assert caught.value.message.endswith("(gave up after 1 retry)")
    assert (shared_server.root / "touched" / "t0.txt").stat().st_mtime != 1e9


def test_cli_put_r_cut_once_retries_and_exits_0(shared_server, tmp_path) -> None:
    contents = small_files(tmp_path / "cli-tree")
    with cutting_proxy(shared_server.port, cut_after=250 * KiB, cut_first=1) as proxy:
        result = ftclient("put", "-r", str(tmp_path / "cli-tree"), "cli-tree",
                          server=f"127.0.0.1:{proxy.port}")
        assert proxy.cuts == 1
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(r"^put (\d+ files|cli-tree/\S+): retry 1/3 in 1 s: connection lost$",
                     result.stderr, re.MULTILINE), result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"put: {FILES} transferred ("), last
    assert last.endswith("0 failed") or " 0 failed in " in last, last
    for name, data in contents.items():
        assert (shared_server.root / "cli-tree" / name).read_bytes() == data


def test_cli_get_r_on_a_dead_link_exits_1_with_one_line_for_the_shared_cause(
        shared_server, tmp_path) -> None:
    small_files(shared_server.root / "cli-dead", 60)
    with cutting_proxy(shared_server.port, cut_after=40 * KiB, direction="s2c") as proxy:
        result = ftclient("--retries", "1", "-q", "get", "-r", "cli-dead",
                          str(tmp_path / "cli-dead"), server=f"127.0.0.1:{proxy.port}")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert not any("retry 1/1" in line for line in lines)  # -q: no retry lines
    shared = [line for line in lines if " more files: " in line]
    assert len(shared) == 1 and shared[0].endswith("(gave up after 1 retry)"), lines
