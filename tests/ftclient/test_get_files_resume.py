"""``get A B DIR/`` (``tree.get_files``) and resuming, as README says it works.

The names given are not listed first, so their sizes are unknown and every file,
large or small, goes down the pipelined path: a cut during the run is retried from
the file's first byte. What a cut file received stays in its ``.NAME.ftpart``; the
next run finds it and sends that file through the resumable ``get``, which resumes.

A real server on 127.0.0.1 behind a proxy that resets the link after an exact
number of bytes from the server; the server's transfer log says what offset each
``get`` was served from.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from pathlib import Path

from ftclient import Client
from ftclient.localfiles import partial_path_for
from ftclient.tree import get_files
from tests.proxy import cutting_proxy
from tests.serverproc import ServerProcess

MiB = 1 << 20
BIG = 3 * MiB  # over PIPELINE_MAX_SIZE (1 MiB): a put -r or get -r would send it alone
CUT = 2 * MiB


def _gets(server: ServerProcess, name: str, count: int) -> list[str]:
    """The server's first ``count`` transfer log lines for gets of ``name`` (one per get,
    served or failed), once it has logged that many (its log is read on a thread)."""
    line = rf"op=get peer=\S+ user=\S+ path={re.escape(repr(name))} [^\n]*"
    assert server.wait_for_log(f"(?:{line}\n(?s:.*)){{{count}}}"), server.log
    return re.findall(line, server.log)[:count]


def _offset(line: str) -> int | None:
    """The offset a logged get was served from; None for one that failed."""
    found = re.search(r" offset=(\d+) ", line)
    return None if found is None else int(found[1])


def test_a_cut_big_file_is_refetched_whole_in_the_run_and_resumed_by_the_next(
        start_server: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = start_server()
    data = random.Random(1).randbytes(BIG)
    (server.root / "big.bin").write_bytes(data)
    (server.root / "small.txt").write_bytes(b"small")
    dest = tmp_path / "in"
    dest.mkdir()

    # In the run: cut once, retried once, the big file asked for again from byte 0.
    with cutting_proxy(server.port, cut_after=CUT, direction="s2c", cut_first=1) as proxy, \
            Client("127.0.0.1", proxy.port, timeout=15, retries=1, retry_delay=0.05) as client:
        report = get_files(client, ["big.bin", "small.txt"], str(dest))
    assert proxy.cuts == 1
    assert report.failed == []
    assert hashlib.sha256((dest / "big.bin").read_bytes()).digest() == \
        hashlib.sha256(data).digest()
    # Both gets of the run (the cut one may be logged as served: its bytes left the
    # server) went from byte 0.
    assert sorted(_offset(line) or 0 for line in _gets(server, "big.bin", 2)) == [0, 0]

    # A run that gives up keeps the cut file's bytes; the next run resumes from them.
    (dest / "big.bin").unlink()
    with cutting_proxy(server.port, cut_after=CUT, direction="s2c") as proxy, \
            Client("127.0.0.1", proxy.port, timeout=15, retries=0) as client:
        report = get_files(client, ["big.bin"], str(dest))
    assert [local for local, _ in report.failed] == [str(dest / "big.bin")]
    held = Path(partial_path_for(str(dest / "big.bin"))).stat().st_size
    assert 0 < held < BIG
    with Client("127.0.0.1", server.port, timeout=15, retries=0) as client:
        report = get_files(client, ["big.bin"], str(dest))
    assert report.failed == []
    assert (dest / "big.bin").read_bytes() == data
    offsets = [_offset(line) for line in _gets(server, "big.bin", 4)]
    assert [offset for offset in offsets if offset] == [held]  # the last run's get
    assert sorted(path.name for path in dest.iterdir()) == ["big.bin", "small.txt"]
