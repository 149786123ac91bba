"""A folder as one streamed ZIP (``?format=zip``), checked by Python's zipfile and by unzip."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.ftserver.http.httptools import curl, curl_head
from tests.serverproc import ServerProcess


def test_a_folder_downloads_as_one_zip_that_unzips_to_the_same_files(
        server: ServerProcess, tmp_path: Path) -> None:
    docs = server.root / "docs"
    (docs / "sub" / "empty").mkdir(parents=True)
    files = {"a.txt": b"hello\n", "sub/b.bin": os.urandom(1_500_000), "sub/é ü.txt": b"x"}
    for name, data in files.items():
        (docs / name).write_bytes(data)
    out = tmp_path / "docs.zip"
    curl("-o", str(out), f"http://127.0.0.1:{server.port}/docs/?format=zip")
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert {"a.txt", "sub/b.bin", "sub/é ü.txt", "sub/", "sub/empty/"} <= names
        for name, data in files.items():
            assert archive.read(name) == data
            # ZIP64 in every file's local header (extra field 0x0001): sizes past 4 GiB fit
            # although they are not known when the header is streamed.
            raw = out.read_bytes()
            offset = archive.getinfo(name).header_offset
            name_length, extra_length = struct.unpack_from("<HH", raw, offset + 26)
            assert extra_length and raw[offset + 30 + name_length:][:2] == b"\x01\x00"
    assert not any(".ft-" in name for name in names)
    if shutil.which("unzip"):
        tested = subprocess.run(["unzip", "-t", str(out)], capture_output=True, timeout=30)
        assert tested.returncode == 0, tested.stdout.decode()
    head = curl_head(f"http://127.0.0.1:{server.port}/docs/?format=zip")
    assert head["content-type"] == "application/zip"
    assert head["content-disposition"].startswith('attachment; filename="docs.zip"')


@pytest.mark.parametrize("folder", ["", "deep/er"])
def test_the_top_and_nested_folders_zip_too(server: ServerProcess, tmp_path: Path,
                                           folder: str) -> None:
    place = server.root / folder if folder else server.root
    place.mkdir(parents=True, exist_ok=True)
    (place / "f.txt").write_bytes(b"f")
    out = tmp_path / "out.zip"
    path = f"/{folder}/" if folder else "/"
    curl("-o", str(out), f"http://127.0.0.1:{server.port}{path}?format=zip")
    with zipfile.ZipFile(out) as archive:
        assert archive.read("f.txt") == b"f"
        assert [name for name in archive.namelist() if not name.endswith("/")][-1] == "f.txt"
