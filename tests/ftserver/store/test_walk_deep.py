"""A walk of a deep tree: every entry, in order, entered folder by folder from its parent.

The walk keeps only some folders' descriptors open on its way down (the deepest few
and a checkpoint every so many levels) and reopens the others when it climbs back.
These trees branch at depths above, inside and below that window, so every way
back up is taken, and the answer must equal a plain recursive listing. Walks also
read the disk in turns, a few at once, so many of them cannot take the whole server.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from common.protocol.replies import WalkEntry
from ftserver.store.survey import TURN_ENTRIES, WALKS_AT_ONCE, read_in_turns

DEPTH = 70
BRANCHES = (0, 3, 9, 17, 33, 40, 55, 69)


def build(root: Path) -> None:
    fd = os.open(root, os.O_RDONLY)
    for level in range(DEPTH):
        os.mkdir("d", dir_fd=fd)
        with open(os.open(f"f{level}.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd),
                  "wb") as file:
            file.write(str(level).encode())
        if level in BRANCHES:
            os.mkdir("e", dir_fd=fd)
            inner = os.open("e", os.O_RDONLY, dir_fd=fd)
            os.mkdir("x", dir_fd=inner)
            with open(os.open("g.txt", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=inner),
                      "wb") as file:
                file.write(b"g")
            os.close(inner)
        below = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = below
    os.close(fd)


def expected(root: Path, prefix: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(path, type) of everything below ``root``: a folder's entries, sorted, before
    those of its subfolders, which follow in name order."""
    folder = os.open(root, os.O_RDONLY)
    try:
        names = sorted(os.listdir(folder))
        kinds = {name: "dir" if os.path.isdir(os.path.join(f"/proc/self/fd/{folder}", name))
                 else "file" for name in names}
    finally:
        os.close(folder)
    found = [("/".join(prefix + (name,)), kinds[name]) for name in names]
    for name in names:
        if kinds[name] == "dir":
            found += expected(root / name, prefix + (name,))
    return found


def test_a_walk_of_a_deep_branching_tree_is_whole_and_in_order(start_server, connect) -> None:
    server = start_server()
    (server.root / "tree").mkdir()
    build(server.root / "tree")
    client = connect(server)

    walked = [(entry.path, entry.type) for entry in client.walk("tree")]

    reference = expected(server.root / "tree")
    assert len(reference) == DEPTH * 2 + len(BRANCHES) * 3
    assert walked == reference


def test_walks_read_the_disk_two_at_a_time_and_lose_nothing() -> None:
    """32 walks at once took the whole server; each now reads in turns, two at a time."""
    reading = 0
    most = 0
    lock = threading.Lock()

    def entries(walk: int) -> Iterator[WalkEntry]:
        nonlocal reading, most
        for index in range(3 * TURN_ENTRIES + 7):
            with lock:
                reading += 1
                most = max(most, reading)
            time.sleep(0.00005)  # the disk and the stat of one entry
            with lock:
                reading -= 1
            yield WalkEntry(f"w{walk}/f{index}", "file", 0, 0.0, None)

    got: dict[int, list[str]] = {}

    def consume(walk: int) -> None:
        got[walk] = [entry.path for entry in read_in_turns(entries(walk))]

    threads = [threading.Thread(target=consume, args=(walk,)) for walk in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert most <= WALKS_AT_ONCE
    assert got == {walk: [f"w{walk}/f{index}" for index in range(3 * TURN_ENTRIES + 7)]
                   for walk in range(8)}
