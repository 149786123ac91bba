"""A folder of the share as one streamed ZIP (``?format=zip``): no temporary file.

Python's zipfile writes to a stream it cannot seek (data descriptors after each
file), with ZIP64 for every entry so that big files and many of them fit; the
bytes go out as a chunked body as they are made, through a buffer of a few hundred
KiB. Each file is read through the one download (ops/download.py), so it is
reached the same confined way as a GET. A file written to while it is read cuts
the answer short: the client sees a broken download, never a ZIP that lies.
"""

from __future__ import annotations

import time
import zipfile

from ftserver.http.exchange import HttpExchange
from ftserver.http.headers import UPLOADED
from ftserver.ops.download import Download
from ftserver.store.base import Share

FLUSH_AT = 512 * 1024
_ZIP_FIRST = (1980, 1, 1, 0, 0, 0)
_ZIP_LAST = (2107, 12, 31, 23, 59, 58)


class _ChunkedSink:
    """What zipfile writes to: buffered, then sent as chunks of the answer."""

    def __init__(self, exchange: HttpExchange) -> None:
        self.exchange = exchange
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= FLUSH_AT:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self.exchange.send_body(bytes(self.buffer))
            self.buffer.clear()


def serve_zip(exchange: HttpExchange, storage: Share, folder: str) -> None:
    entries = list(storage.walk(folder))  # a listing error is answered before the head
    label = folder.rsplit("/", 1)[-1] if folder else "share"
    exchange.start(200, [*UPLOADED, ("Content-Type", "application/zip"),
                         ("Content-Disposition", _attachment(f"{label}.zip")),
                         ("Cache-Control", "no-store")], None)
    if exchange.method == "HEAD":
        exchange.finish()
        return
    sink = _ChunkedSink(exchange)
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED,  # type: ignore[arg-type]
                         allowZip64=True) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.path + ("/" if entry.type == "dir" else ""),
                                   _zip_time(entry.mtime))
            if entry.type == "dir":
                info.external_attr = 0o40755 << 16 | 0x10
                archive.writestr(info, b"")
                continue
            info.external_attr = 0o100644 << 16
            name = f"{folder}/{entry.path}" if folder else entry.path
            with Download(storage, name) as download, \
                    archive.open(info, "w", force_zip64=True) as member:
                for data in download.chunks():
                    member.write(data)
    sink.flush()
    exchange.finish()


def _zip_time(seconds: float) -> tuple[int, int, int, int, int, int]:
    try:
        stamp = time.localtime(seconds)[:6]
    except (OverflowError, OSError, ValueError):
        return _ZIP_FIRST
    return max(_ZIP_FIRST, min(_ZIP_LAST, stamp))  # type: ignore[return-value]


def _attachment(filename: str) -> str:
    from urllib.parse import quote
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
