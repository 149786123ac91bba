"""PUT of one file (``curl -T``): the one upload (ops/upload.py) in HTTP's words.

The body streams into a partial on the share's own filesystem, hashed as it comes,
and is published the way ``ftclient put`` publishes: SHA-256 checked, fsynced,
renamed over the name, so a cut PUT leaves the old version or nothing. Missing
folders on the way are made. A ``Content-Digest`` or ``Repr-Digest`` header with a
``sha-256`` value (RFC 9530) is checked before anything is published; a mismatch
publishes nothing and answers 400. The space is promised before ``100 Continue``
invites the body, so a file that cannot fit costs no byte. A body in chunks
(``curl -T -`` from a pipe) has no length to promise room for: it is taken as it
comes, and a disk that fills fails it with 507, publishing nothing. The answer carries the
file's SHA-256, as a header and as a ``sha256sum`` line. An ``X-OC-Mtime`` header
(WebDAV clients: rclone, ownCloud's) gives the file its own mtime.
"""

from __future__ import annotations

import base64
import binascii
import re
import time

from common.io.ratelimit import Throttle
from common.protocol.errors import BadPath, FtError, ProtocolError
from ftserver.http.exchange import HttpExchange
from ftserver.http.fileget import repr_digest
from ftserver.http.target import Target, url_path
from ftserver.ops.upload import Upload, UploadPlan
from ftserver.store.base import Share

_SHA256_FIELD = re.compile(r"(?:^|,)\s*sha-256\s*=\s*:([A-Za-z0-9+/=]*):", re.IGNORECASE)


class LengthRequired(ProtocolError):
    """A PUT whose body has neither a length nor chunks."""

    http_status = 411


def announced_sha256(exchange: HttpExchange) -> str | None:
    """The SHA-256 a Content-Digest or Repr-Digest header gives, as hex; None if neither
    names one. A malformed value is refused (nothing would check it otherwise)."""
    for header in ("content-digest", "repr-digest"):
        value = exchange.header(header)
        if value is None:
            continue
        match = _SHA256_FIELD.search(value)
        if match is None:
            continue
        try:
            raw = base64.b64decode(match.group(1), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ProtocolError(f"the {header} header's sha-256 is not 32 bytes of base64")
        return raw.hex()
    return None


def serve_put(exchange: HttpExchange, storage: Share, target: Target, owner: str,
              timeout: float, throttle: Throttle) -> None:
    if target.folder or not target.name:
        raise BadPath("a PUT names the file: add its name after the folder's '/'")
    size = exchange.content_length
    if size is None and not exchange.chunked:
        raise LengthRequired("send the file with a Content-Length, or in chunks")
    announced = announced_sha256(exchange)
    existed = _exists(storage, target.name)
    mtime = client_mtime(exchange)
    # A body in chunks has no length to promise room for: planned as 0 (ops/upload.py).
    plan = UploadPlan(target.name, size or 0, mtime or time.time(), announced, owner,
                      resumable=False)
    with storage.folder_locks() as folder_locks:
        upload = Upload(storage, plan, storage.alone(folder_locks))
        try:
            upload.open()
            upload.start(0)
            if size is None:
                digest, _ = upload.receive_chunks(exchange.body_chunks(timeout))
            else:
                channel = exchange.body_channel()
                digest = upload.receive(channel, timeout, throttle)
                exchange.body_read(channel)
            done = upload.finish(digest, announced or digest)
        finally:
            upload.close()
    body = f"{done.sha256}  {target.name}\n".encode()
    headers = [("Repr-Digest", repr_digest(done.sha256))]
    if mtime is not None:
        headers.append(("X-OC-MTime", "accepted"))
    if not existed:
        headers.append(("Location", url_path(target.name)))
    exchange.respond(200 if existed else 201, headers, body)


def client_mtime(exchange: HttpExchange) -> float | None:
    """The file's own mtime, if the client sent it: ``X-OC-Mtime`` (seconds since the
    epoch, as ownCloud's and Nextcloud's clients and rclone send it). Not a number, or
    not a time a file can have: ignored, and the file gets the time it arrived."""
    value = exchange.header("x-oc-mtime")
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not (0 <= seconds < 2 ** 33) or seconds != seconds:
        return None
    return seconds


def _exists(storage: Share, name: str) -> bool:
    try:
        storage.stat(name)
    except FtError:
        return False
    return True
