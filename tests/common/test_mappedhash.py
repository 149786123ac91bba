"""MappedHasher: hashing a file's range through a map, its guards and its fallback.

The digest must equal hashlib's over the same bytes wherever the ranges start
(on a page or not); a file that shrank must raise SourceChanged before anything
is mapped past its end (which would be SIGBUS, not an exception); a file that
cannot be mapped (sysfs) is read instead; and a put sender whose file shrinks
between two steps fails cleanly.
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from common.channel import Channel
from common.errors import SourceChanged
from common.filesend import send_file_hashed
from common.mappedhash import MAP_WINDOW, MappedHasher

MiB = 1 << 20


def _hash_ranges(path: Path, cuts: list[int]) -> str:
    fd = os.open(path, os.O_RDONLY)
    try:
        hasher = hashlib.sha256()
        mapped = MappedHasher(fd, hasher)
        for start, stop in zip(cuts, cuts[1:], strict=False):
            mapped.update(start, stop)
        assert mapped.mappable
        return hasher.hexdigest()
    finally:
        os.close(fd)


def test_ranges_on_and_off_pages_hash_like_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * MAP_WINDOW + 4097)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    cuts = [0, 1, 4095, 4096, 70_001, MAP_WINDOW + 3, 3 * MAP_WINDOW + 1, len(data)]
    assert _hash_ranges(path, cuts) == hashlib.sha256(data).hexdigest()
    offset = 5  # a resume prefix that ends off a page
    hasher = hashlib.sha256(data[:offset])
    fd = os.open(path, os.O_RDONLY)
    try:
        MappedHasher(fd, hasher).update(offset, len(data))
    finally:
        os.close(fd)
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_range_past_the_end_is_refused_before_it_is_mapped(tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(os.urandom(MiB))
    fd = os.open(path, os.O_RDONLY)
    try:
        hasher = MappedHasher(fd, hashlib.sha256())
        hasher.update(0, MiB // 2)
        os.truncate(path, MiB // 2 + 1)
        with pytest.raises(SourceChanged):
            hasher.update(MiB // 2, MiB)
    finally:
        os.close(fd)


def _unmappable_file() -> tuple[int, bytes]:
    """A regular sysfs file (mmap says ENODEV) opened, with what it reads as."""
    for candidate in ("/sys/kernel/mm/transparent_hugepage/enabled", "/sys/power/state",
                      "/sys/kernel/profiling", "/sys/kernel/uevent_seqnum"):
        try:
            fd = os.open(candidate, os.O_RDONLY)
        except OSError:
            continue
        content = os.pread(fd, 4096, 0)
        if content and os.fstat(fd).st_size >= len(content):
            return fd, content
        os.close(fd)
    pytest.skip("no readable sysfs file here")


def test_a_file_that_cannot_be_mapped_is_read_instead() -> None:
    fd, content = _unmappable_file()
    try:
        hasher = hashlib.sha256()
        mapped = MappedHasher(fd, hasher)
        mapped.update(0, len(content))
    finally:
        os.close(fd)
    assert not mapped.mappable
    assert hasher.hexdigest() == hashlib.sha256(content).hexdigest()


def test_a_file_that_shrinks_between_steps_fails_the_mapped_send(tmp_path: Path) -> None:
    """The client's put: the file is cut to 1 MiB once 2 MiB have gone out. The next
    step's check sees it: SourceChanged, and the process lives on."""
    path = tmp_path / "shrinking.bin"
    path.write_bytes(os.urandom(8 * MiB))

    def cut_once_sent(position: int) -> None:
        if position >= 2 * MiB:
            os.truncate(path, MiB)

    with socket.create_server(("127.0.0.1", 0)) as listener:
        sender = socket.create_connection(listener.getsockname(), timeout=30)
        receiver, _ = listener.accept()
    with sender, receiver:
        receiver.settimeout(30)
        drain = threading.Thread(target=lambda: _drain(receiver))
        drain.start()
        fd = os.open(path, os.O_RDONLY)
        try:
            with pytest.raises(SourceChanged):
                send_file_hashed(Channel(sender), fd, 0, 8 * MiB, hashlib.sha256(), 30.0,
                                 cut_once_sent, mapped=True)
        finally:
            os.close(fd)
            sender.shutdown(socket.SHUT_WR)
            drain.join(30)


def _drain(sock: socket.socket) -> None:
    while sock.recv(MiB):
        pass
