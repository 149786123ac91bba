"""GET and HEAD of one file of the share: the one download (ops/download.py) in HTTP's words.

The answer says what a resuming client needs: ``Content-Length``, a strong ``ETag``
naming this very version of the file, ``Last-Modified``, ``Accept-Ranges: bytes``,
a type from the name, and ``Repr-Digest`` (RFC 9530) when the SHA-256 is known.
Ranges and conditionals are ranges.py's. On plain TCP the bytes go out with
sendfile(2). The last byte is held back until the file is known not to have been
written to while it went out; if it was, the connection is cut one byte short, so
the client sees a broken download, never a spliced one.
"""

from __future__ import annotations

import base64

from common.io.ratelimit import Throttle
from common.protocol.errors import SourceChanged
from ftserver.http.exchange import HttpExchange
from ftserver.http.headers import UPLOADED, content_type
from ftserver.http.ranges import Unsatisfiable, choose_span, http_date, not_modified
from ftserver.ops.download import Download
from ftserver.store.base import Share


def repr_digest(sha256_hex: str) -> str:
    return f"sha-256=:{base64.b64encode(bytes.fromhex(sha256_hex)).decode()}:"


def serve_file(exchange: HttpExchange, storage: Share, name: str, timeout: float,
               throttle: Throttle) -> None:
    channel = exchange.channel()
    with Download(storage, name, channel.peer_hung_up) as download:
        size = download.size
        etag = f'"{download.file.version}"'
        about = [("ETag", etag), ("Last-Modified", http_date(download.mtime)),
                 ("Accept-Ranges", "bytes"), ("Cache-Control", "no-cache")]
        if download.digest is not None:
            about.append(("Repr-Digest", repr_digest(download.digest)))
        if not_modified(exchange.header("if-none-match"), exchange.header("if-modified-since"),
                        etag, download.mtime):
            exchange.start(304, about, None)
            exchange.finish()
            return
        try:
            span = choose_span(exchange.header("range"), exchange.header("if-range"), size,
                               etag, download.mtime)
        except Unsatisfiable:
            exchange.respond(416, [*about, ("Content-Range", f"bytes */{size}")],
                             f"the file has {size} bytes\n".encode())
            return
        headers = [*UPLOADED, *about, ("Content-Type", content_type(name))]
        if span.partial:
            end = span.start + span.length - 1
            headers.append(("Content-Range", f"bytes {span.start}-{end}/{size}"))
        exchange.start(206 if span.partial else 200, headers, span.length)
        if exchange.method == "HEAD" or span.length == 0:
            exchange.finish()
            return
        exchange.counted(span.length)

        def went_out(position: int) -> None:
            exchange.sent = position - span.start

        held_back = span.start + span.length - 1
        download.send_span(channel, span.start, span.length - 1, timeout, throttle, went_out)
        if not download.unchanged():
            raise SourceChanged(f"{name!r} was written to while it was sent")
        download.send_span(channel, held_back, 1, timeout, throttle, went_out)
        exchange.finish()
