"""mkdir, move, remove and walk while a folder in the share is swapped for a symlink leading out.

A thread flips ``sub`` (a real folder in the share) with a symlink to a folder
outside it, in tmp_path, as fast as it can, while a client sends file
operations naming things in ``sub``. Whatever the timing, the server must never
create, move in, move out, remove or list anything in the outside folder: every
operation either acts on the real folder or is refused. Every loop is bounded
in count and in time.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from common.protocol.errors import FtError
from ftclient import Client
from tests.serverproc import ServerProcess

ATTEMPTS = 150
RACE_SECONDS = 2.5
MARKER = "OUTSIDE-MARKER"
"""Part of every name in the outside folder that the share's ``sub`` does not hold itself."""

Operation = Callable[[Client, int], None]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below ``folder`` with its content (None for a folder)."""
    found: dict[str, bytes | None] = {}
    for parent, folders, files in os.walk(folder):
        for name in folders:
            found[os.path.relpath(os.path.join(parent, name), folder)] = None
        for name in files:
            path = os.path.join(parent, name)
            found[os.path.relpath(path, folder)] = Path(path).read_bytes()
    return found


class Flipper:
    """Swaps ``name`` between the real folder and a symlink to ``outside`` until stopped.

    The server may create a folder under ``name`` in the instant it is missing
    (``mkdir -p``): such a stray folder is moved aside and the flipping goes on.
    """

    def __init__(self, name: Path, outside: Path) -> None:
        self.name = name
        self.outside = outside
        self.aside = name.with_name(".aside-" + name.name)
        self.stop = threading.Event()
        self.flips = 0
        self.failure: BaseException | None = None
        self._strays = itertools.count()
        self.thread = threading.Thread(target=self._run)

    def __enter__(self) -> Flipper:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()

    def _run(self) -> None:
        try:
            for _ in range(20_000):
                if self.stop.is_set():
                    return
                os.rename(self.name, self.aside)
                self._place(lambda: os.symlink(self.outside, self.name))
                time.sleep(0.0005)
                os.unlink(self.name)
                self._place(lambda: os.rename(self.aside, self.name))
                self.flips += 1
                time.sleep(0.0005)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure = exc

    def _place(self, put: Callable[[], None]) -> None:
        for _ in range(100):
            try:
                put()
                return
            except OSError:
                # The server made a real folder in the gap: set it aside (in the share).
                os.rename(self.name, self.name.with_name(f".stray-{next(self._strays)}"))
        raise RuntimeError("could not put the folder back in place")


def race(server: ServerProcess, client: Client, outside: Path, operation: Operation) -> int:
    """Run ``operation`` with attempt numbers while ``sub`` flips; return how many succeeded."""
    client.list("")  # connected, and (process executor) a worker is up, before the clock runs
    before = snapshot(outside)
    attempts = succeeded = 0
    with Flipper(server.root / "sub", outside) as flipper:
        deadline = time.monotonic() + RACE_SECONDS
        for attempt in range(ATTEMPTS):
            if time.monotonic() > deadline:
                break
            attempts += 1
            try:
                operation(client, attempt)
                succeeded += 1
            except FtError:
                pass  # refused because of the swap: allowed, acting outside is not
    assert flipper.failure is None, repr(flipper.failure)
    assert flipper.flips >= 3, "the folder was hardly swapped: the race did not run"
    assert attempts >= 10, "too few requests were sent for the race to mean anything"
    assert succeeded > 0, "every request was refused: the race shows nothing"
    assert snapshot(outside) == before, "the server touched the folder outside the share"
    assert "Traceback" not in server.log, server.log[server.log.find("Traceback") - 300:][:3000]
    print(f"{attempts} attempts, {succeeded} succeeded, {flipper.flips} flips")
    return succeeded


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    return folder


def fill(inside: Path, outside: Path, names: list[str], folders: bool = False) -> None:
    """The same names in the share's ``sub`` and outside, with different contents."""
    inside.mkdir(exist_ok=True)
    for name in names:
        for base, data in ((inside, b"inside"), (outside, MARKER.encode())):
            if folders:
                (base / name).mkdir()
                (base / name / f"{MARKER}.txt").write_bytes(data)
            else:
                (base / name).write_bytes(data)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_mkdir_never_creates_outside(executor: str, start_server, connect,
                                     outside: Path) -> None:
    server = start_server(executor)
    (server.root / "sub").mkdir()

    def make(client: Client, attempt: int) -> None:
        if attempt % 2:
            client.mkdir(f"sub/new-{attempt}")
        else:
            client.mkdir(f"sub/deep-{attempt}/x", parents=True)

    race(server, connect(server), outside, make)
    assert not any(MARKER in name for name in os.listdir(server.root / "sub"))


def test_move_never_moves_in_or_out_of_the_share(start_server, connect, outside: Path
                                                 ) -> None:
    server = start_server()
    names = [f"{MARKER}-{n}" for n in range(ATTEMPTS)]
    fill(server.root / "sub", outside, names)
    for name in names:
        (server.root / f"top-{name}").write_bytes(b"inside")

    def move(client: Client, attempt: int) -> None:
        name = names[attempt]
        if attempt % 2:
            client.move(f"sub/{name}", f"moved-{name}")  # from outside into the share?
        else:
            client.move(f"top-{name}", f"sub/in-{name}")  # out of the share?

    race(server, connect(server), outside, move)
    for moved in (server.root).glob("moved-*"):
        assert moved.read_bytes() == b"inside"


def test_remove_never_removes_outside(start_server, connect, outside: Path) -> None:
    server = start_server()
    files = [f"{MARKER}-{n}.txt" for n in range(ATTEMPTS)]
    folders = [f"{MARKER}-{n}" for n in range(ATTEMPTS)]
    fill(server.root / "sub", outside, files)
    fill(server.root / "sub", outside, folders, folders=True)

    def remove(client: Client, attempt: int) -> None:
        if attempt % 2:
            client.remove(f"sub/{files[attempt]}")
        else:
            client.remove(f"sub/{folders[attempt]}", recursive=True)

    race(server, connect(server), outside, remove)


def test_walk_never_lists_outside(start_server, connect, outside: Path) -> None:
    server = start_server()
    (server.root / "sub" / "inner").mkdir(parents=True)
    (server.root / "sub" / "inner" / "inside.txt").write_bytes(b"inside")
    (outside / "inner").mkdir()
    (outside / f"{MARKER}.txt").write_bytes(b"x" * 7777)
    (outside / "inner" / f"{MARKER}.txt").write_bytes(b"x" * 7777)
    (outside / f"{MARKER}-folder").mkdir()
    walked: list[str] = []

    def walk(client: Client, attempt: int) -> None:
        top = ("", "sub", "sub/inner")[attempt % 3]
        entries = client.walk(top)
        walked.extend(entry.path for entry in entries)
        assert all(entry.size != 7777 for entry in entries)

    race(server, connect(server), outside, walk)
    assert walked, "no walk succeeded at all"
    leaked = [path for path in walked if MARKER in path]
    assert leaked == [], f"walk listed the outside folder: {leaked[:5]}"


def test_listing_never_shows_an_outside_file_through_a_link(
        start_server, connect, outside: Path) -> None:
    """``link`` points at ``sub/file.bin``; while ``sub`` flips, ls must never show the
    size of the outside ``file.bin`` that the flipped path leads to."""
    server = start_server()
    (server.root / "sub").mkdir()
    (server.root / "sub" / "file.bin").write_bytes(b"i" * 100)
    (server.root / "link").symlink_to("sub/file.bin")
    (outside / "file.bin").write_bytes(b"x" * 7777)
    (outside / f"{MARKER}.txt").write_bytes(b"marker")
    sizes: list[int] = []

    def list_top(client: Client, attempt: int) -> None:
        for entry in client.list(""):
            if entry.name == "link":
                sizes.append(entry.size)

    race(server, connect(server), outside, list_top)
    assert sizes, "the link was never listed"
    assert 7777 not in sizes, "a listing showed the outside file's size through the link"
