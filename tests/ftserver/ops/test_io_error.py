"""EIO in the middle of an upload (issue 4), from a real filesystem that fails.

The seam: a folder of the share is a small ext4 image that the test loop-mounts
itself (needs root); an upload into it keeps its partial on that disk (in the
disk's own ``.ft-partials``), and mid-upload the test shuts that filesystem down
with the EXT4_IOC_SHUTDOWN ioctl (what xfs_io's "shutdown" does), after which
every write and fsync on it returns EIO. Nothing of ft is patched.
The client must get a clear io_error, never success; nothing is published; the
server keeps serving; and once the disk is back (remounted), the upload resumes
from what reached it before the failure.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.protocol.errors import StorageError
from ftclient import Client
from tests.serverproc import ServerProcess

MiB = 1 << 20
EXT4_IOC_SHUTDOWN = 0x8004587D  # _IOR('X', 125, __u32)
EXT4_GOING_FLAGS_DEFAULT = 0  # flush what was written, then fail every later write
NO_MARGIN = {"limits": {"min_free_bytes": 0}}  # the image is small


class Ext4Disk:
    """An ext4 image on /dev/shm, loop-mounted at ``folder``; can be failed and remounted."""

    def __init__(self, image: Path, folder: Path) -> None:
        self.image = image
        self.folder = folder
        subprocess.run(["truncate", "-s", "48M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        folder.mkdir(parents=True, exist_ok=True)
        self.mount()

    def mount(self) -> None:
        subprocess.run(["mount", "-o", "loop", str(self.image), str(self.folder)], check=True)
        os.chmod(self.folder, 0o700)

    def unmount(self) -> None:
        subprocess.run(["umount", str(self.folder)], check=True)

    def fail(self) -> None:
        fd = os.open(self.folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.ioctl(fd, EXT4_IOC_SHUTDOWN, struct.pack("I", EXT4_GOING_FLAGS_DEFAULT))
        finally:
            os.close(fd)


@pytest.fixture
def failing_disk(tmp_path: Path) -> Iterator[Ext4Disk]:
    if os.geteuid() != 0 or shutil.which("mkfs.ext4") is None:
        pytest.skip("needs root and mkfs.ext4 to loop-mount an ext4 image")
    image = Path("/dev/shm") / f"ft-eio-{os.getpid()}-{tmp_path.name}.img"
    disk = Ext4Disk(image, tmp_path / "srv" / "share" / "disk")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk.folder)], check=False)
        image.unlink(missing_ok=True)


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_eio_mid_upload_is_a_clear_error_and_resumes_once_the_disk_is_back(
        executor: str, failing_disk: Ext4Disk, tmp_path: Path) -> None:
    data = random.Random(executor).randbytes(8 * MiB)
    source = tmp_path / "data.bin"
    source.write_bytes(data)
    server = ServerProcess(tmp_path / "srv", executor=executor, **NO_MARGIN).start()
    try:
        (server.root / "kept.txt").write_bytes(b"still here")
        partials = failing_disk.folder / ".ft-partials"

        def fail_disk_once(progress: object) -> None:
            if progress.done >= 4 * MiB and not failed:  # type: ignore[attr-defined]
                deadline = time.monotonic() + 10  # let 2 MiB reach the partial first
                while sum(p.stat().st_size for p in partials.glob("*.part")) < 2 * MiB \
                        and time.monotonic() < deadline:
                    time.sleep(0.01)
                failing_disk.fail()
                failed.append(True)

        failed: list[bool] = []
        with Client(server.host, server.port, retries=0) as client:
            with pytest.raises(StorageError) as caught:
                client.put(source, "disk/data.bin", progress=fail_disk_once)
            assert "I/O error" in caught.value.message, caught.value.message
            assert str(tmp_path) not in caught.value.message  # no server paths
            assert not (failing_disk.folder / "data.bin").exists()
            # still serving: listing and downloads from the share work
            assert "kept.txt" in [entry.name for entry in client.list()]
            client.get("kept.txt", tmp_path / "kept.txt")
        assert (tmp_path / "kept.txt").read_bytes() == b"still here"
        assert "Traceback" not in server.log
    finally:
        server.terminate()

    failing_disk.unmount()  # the disk comes back (an fsck-clean remount)
    failing_disk.mount()
    server = ServerProcess(tmp_path / "srv", executor=executor, **NO_MARGIN).start()
    try:
        with Client(server.host, server.port, retries=0) as client:
            result = client.put(source, "disk/data.bin")
        assert result.resumed_from >= 2 * MiB
        assert (failing_disk.folder / "data.bin").read_bytes() == data
    finally:
        server.terminate()
