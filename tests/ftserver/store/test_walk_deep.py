"""A walk of a deep tree: every entry, in order, entered folder by folder from its parent.

The walk keeps only some folders' descriptors open on its way down (the deepest few
and a checkpoint every so many levels) and reopens the others when it climbs back.
These trees branch at depths above, inside and below that window, so every way
back up is taken, and the answer must equal a plain recursive listing.
"""

from __future__ import annotations

import os
from pathlib import Path

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
