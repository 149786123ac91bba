"""ft as people deploy it: the share and state_dir on chosen filesystems, server defaults.

Each shape is one ftserver process on its default settings (thread executor, 4
workers, no raised limits) whose share and state_dir sit on the filesystems it
names: "mem" is the run's data folder (tmpfs, /dev/shm), "disk" the disk folder
(ext4, /var/tmp by default), so that (disk, disk) is a server on its defaults on
a real disk and (mem, disk) one whose state_dir is on another filesystem than its
share. The client's source files stay on tmpfs for every shape: only the server's
placement changes. Partials live in the share's ``.ft-partials`` (issue 14), so
state_dir should hold no byte of an upload, and every shape that shares its
filesystem should put as fast as the same share with state_dir beside it.

Every round times each shape in turn (a big put, its get, a ``put -r`` of the small
files), the order rotated by one shape a round, so that each round's ratios share
one load and no shape always runs first after the disk's writeback.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchkit import ftcases
from benchkit.figures import Took
from benchkit.report import PLACED, filesystem_of
from tests.serverproc import ServerProcess

SHAPES = PLACED
"""(share on, state_dir on): today's tmpfs figures, state_dir on the system disk, both on
the disk (the server's defaults on a real disk), and the reverse of the second."""


@dataclass(frozen=True)
class Shape:
    key: str
    """``place-SHARE-STATE``: the figures are KEY-put, KEY-get and KEY-small."""
    where: str
    """The row's name: the filesystems' types, as /proc/mounts gives them."""
    share_base: Path
    state_dir: Path


def shapes(mem: Path, disk: Path) -> list[Shape]:
    folders = {"mem": mem, "disk": disk}
    kinds = {side: filesystem_of(str(folder)).split()[0] for side, folder in folders.items()}
    found = []
    for share, state in SHAPES:
        key = f"place-{share}-{state}"
        where = (f"share on {kinds[share]} ({share}), state_dir on {kinds[state]} ({state})")
        found.append(Shape(key, where, folders[share] / key, folders[state] / f"{key}-state"))
    return found


@contextmanager
def placed_server(shape: Shape) -> Iterator[ServerProcess]:
    """A server on its defaults sharing ``share_base/share``, its state_dir elsewhere."""
    server = ServerProcess(shape.share_base, state_dir=str(shape.state_dir))
    try:
        server.start()
        yield server
    finally:
        try:
            if server.proc is not None:
                server.terminate()
        finally:
            shutil.rmtree(shape.share_base, ignore_errors=True)
            shutil.rmtree(shape.state_dir, ignore_errors=True)


Record = Callable[[str, str, str, Took], None]
"""record(key, label, kind, took): kind is "put" or "get" (bytes) or "small" (files)."""


def run_rounds(shapes_: list[Shape], rounds: int, big: Path, small: list[Path],
               scratch: Path, record: Record) -> None:
    """Every shape in turn, ``rounds`` times, each starting one shape later than the last."""
    with ExitStack() as stack:
        servers = [stack.enter_context(placed_server(shape)) for shape in shapes_]
        for index in range(rounds):
            turn = index % len(shapes_)
            order = list(zip(shapes_, servers, strict=True))
            for shape, server in order[turn:] + order[:turn]:
                with ftcases.client_for(server) as client:
                    put, get = ftcases.big_file_round(client, big, scratch / "down.bin")
                record(f"{shape.key}-put", f"ft put, {shape.where}", "put", put)
                record(f"{shape.key}-get", f"ft get, {shape.where}", "get", get)
                with ftcases.client_for(server) as client:  # a fresh one, as put -r starts
                    took = ftcases.small_files_put(client, small, f"r{index}")
                record(f"{shape.key}-small", f"ft put -r, small files, {shape.where}",
                       "small", took)
