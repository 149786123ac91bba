"""``get -r`` against a local process that swaps a subfolder for a symlink while it runs.

Issue 18, item 5: the client checked each folder once, then wrote by path, so a
process able to write in the destination could turn ``dest/sub`` into a symlink to
somewhere else between the check and the write: 1,500-2,000 files landed outside,
3 of 3 runs. Here a real second process does exactly that, as fast as it can, for
as long as the download runs (bounded in time and count). Nothing may land outside,
and every file reported sent must be inside with the server's bytes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ftclient.tree import get_tree

FILES = 400

RACER = r"""
import os, sys, time
dest, outside, stop = sys.argv[1:4]
sub, real = os.path.join(dest, "sub"), os.path.join(dest, "sub.real")
deadline = time.monotonic() + 60
while not os.path.isdir(sub) and time.monotonic() < deadline:
    time.sleep(0.001)
swaps = 0
while not os.path.exists(stop) and time.monotonic() < deadline and swaps < 2_000_000:
    try:
        os.rename(sub, real)
        os.symlink(outside, sub)
        time.sleep(0)
        os.unlink(sub)
        os.rename(real, sub)
    except OSError:
        pass
    swaps += 1
print(swaps)
"""


def test_a_subfolder_swapped_for_a_symlink_during_get_r_sends_nothing_outside(
        start_server, connect, tmp_path: Path) -> None:
    server = start_server()
    (server.root / "tree/sub").mkdir(parents=True)
    for index in range(FILES):
        (server.root / f"tree/sub/f{index:04}.txt").write_bytes(b"x" * 200 + str(index).encode())
    outside = tmp_path / "outside"
    outside.mkdir()
    destination = tmp_path / "dest"
    destination.mkdir()
    stop = tmp_path / "stop"
    racer = subprocess.Popen([sys.executable, "-c", RACER, str(destination), str(outside),
                              str(stop)], stdout=subprocess.PIPE, text=True)
    try:
        report = get_tree(connect(server), "tree", str(destination))
    finally:
        stop.touch()
        swaps, _ = racer.communicate(timeout=30)
    assert int(swaps) > 0  # the race ran while the download did

    assert sorted(os.listdir(outside)) == []
    held = {}
    for folder in (destination / "sub", destination / "sub.real"):
        if folder.is_dir() and not folder.is_symlink():
            held.update({path.name: path.read_bytes() for path in folder.iterdir()
                         if not path.name.startswith(".")})
    for local in report.sent:
        name = os.path.basename(local)
        index = int(name[1:5])
        assert held[name] == b"x" * 200 + str(index).encode()
    assert len(report.sent) + len(report.failed) + len(report.skipped) >= FILES
