"""Same-name readers and writers (issue 4): a reader whose file is replaced mid-download
gets the old version whole, not an error; an upload that replaces it is published whole.

Replacing a file by rename (what publishing does) changes the ctime of the old
file as its link count drops; the bytes being sent do not change, so this must
not count as "changed while it was sent". Both executors.
"""

from __future__ import annotations

import hashlib
import os
import random

MiB = 1 << 20
SIZE = 32 * MiB  # more than loopback socket buffers hold: the server is still sending


def test_a_download_whose_file_is_renamed_over_gets_the_old_version_whole(
        shared_server, connect, tmp_path) -> None:
    old = random.Random("old").randbytes(SIZE)
    new = random.Random("new").randbytes(1000)
    (shared_server.root / "replaced.bin").write_bytes(old)
    replacement = shared_server.root / "replacement.tmp"
    replacement.write_bytes(new)
    replaced: list[bool] = []

    def replace_once(progress) -> None:  # noqa: ANN001 - a Progress
        if progress.done >= MiB and not replaced:
            os.replace(replacement, shared_server.root / "replaced.bin")  # as publishing does
            replaced.append(True)

    result = connect(shared_server).get("replaced.bin", tmp_path / "got.bin",
                                        progress=replace_once)
    assert replaced, "the download ended before the file could be replaced"
    assert (tmp_path / "got.bin").read_bytes() == old
    assert result.sha256 == hashlib.sha256(old).hexdigest()
    assert (shared_server.root / "replaced.bin").read_bytes() == new
