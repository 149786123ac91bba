"""tus 1.0 resumable uploads (https://tus.io/protocols/resumable-upload): the one upload
(ops/upload.py) in tus's words, pass after pass.

A folder's URL is its creation URL: ``POST /inbox/`` with ``Upload-Length`` and
``Upload-Metadata: filename <base64>`` answers 201 with the upload's URL,
``/.ft-tus/TOKEN`` (tusrecords.py keeps what the token stands for). ``HEAD`` on it
gives ``Upload-Offset``, what the upload's partial holds; each ``PATCH`` (and a
POST that brings bytes, creation-with-upload) is one pass of the one upload:
open (confine, lock, space, the same partial, by the upload's identity), go on
from what it holds, take the PATCH's bytes (a span of the file), and after the
last byte check the SHA-256, fsync and publish exactly as ``ftclient put`` does;
the final answer carries the file's SHA-256 (``Repr-Digest``). A pass that ends
short keeps the partial and the digest of what it holds, as a cut put does, and
the hasher itself in memory (tushashers.py), so the next PATCH reads nothing back.

A PATCH with ``Upload-Checksum`` (sha1, sha256, sha512, md5) keeps its bytes only
if they match it: otherwise, or if it is cut, the partial is cut back to where the
PATCH began and the answer is 460. A PATCH that stalls half-way does not lock its
upload: the next pass of the same upload (a HEAD or a PATCH) asks it to give way,
which it does once no byte came for STALL_TAKEOVER seconds (ops/upload.py).
``DELETE`` drops the partial and the record (termination); an upload untouched for
``partial_ttl`` expires (``Upload-Expires``).
"""

from __future__ import annotations

from dataclasses import dataclass

from common.io.ratelimit import Throttle
from common.protocol.errors import BadPath, IntegrityError, ProtocolError
from common.protocol.fields import MAX_FILE_SIZE
from common.protocol.names import check_component
from ftserver.http.exchange import HttpExchange
from ftserver.http.fileget import repr_digest
from ftserver.http.fileput import LengthRequired
from ftserver.http.headers import Headers
from ftserver.http.ranges import http_date
from ftserver.http.target import UPLOADS, Target
from ftserver.http.tushashers import KEPT
from ftserver.http.tusheaders import (
    CHECKSUMS,
    EXTENSIONS,
    OFFSET_OCTET_STREAM,
    VERSION,
    Checksum,
    ChecksumMismatch,
    NotOffsetStream,
    OffsetConflict,
    TooLarge,
    announced_sha256,
    check_version,
    checksum,
    metadata,
    metadata_text,
    number,
)
from ftserver.http.tusrecords import TusRecord, TusRecords
from ftserver.ops.upload import Upload
from ftserver.store.base import Share

RESUMABLE: Headers = [("Tus-Resumable", VERSION)]


def options_headers() -> Headers:
    """What an OPTIONS answer tells a tus client about this server."""
    return [*RESUMABLE, ("Tus-Version", VERSION), ("Tus-Extension", EXTENSIONS),
            ("Tus-Max-Size", str(MAX_FILE_SIZE)),
            ("Tus-Checksum-Algorithm", ",".join(CHECKSUMS))]


@dataclass(frozen=True)
class TusContext:
    """What a tus request needs of its session."""

    storage: Share
    records: TusRecords
    owner: str
    """The user it comes from ("" for anonymous): only theirs are found."""
    timeout: float
    throttle: Throttle


def serve_creation(exchange: HttpExchange, tus: TusContext, target: Target) -> None:
    """POST to a folder's URL: a new upload into it, perhaps with its first bytes."""
    check_version(exchange.header("tus-resumable"))
    if not target.folder:
        raise BadPath("a tus upload is created at its folder's URL (ending in '/')")
    if exchange.header("upload-defer-length") is not None:
        raise ProtocolError("Upload-Defer-Length is not supported: send Upload-Length")
    size = number(exchange.header("upload-length"), "Upload-Length")
    pairs = metadata(exchange.header("upload-metadata"))
    filename = metadata_text(pairs, "filename") or metadata_text(pairs, "name")
    if not filename:
        raise ProtocolError("Upload-Metadata must give the file's name: filename <base64>")
    check_component(filename)
    name = f"{target.name}/{filename}" if target.name else filename
    count = _body_length(exchange, required=False)
    if count and not _is_offset_stream(exchange):
        raise NotOffsetStream(f"an upload's bytes come as {OFFSET_OCTET_STREAM}")
    record = tus.records.create(name, size, tus.owner, exchange.header("upload-metadata")
                                or "", announced_sha256(pairs))
    try:
        record = _pass(exchange, tus, record, 0, count, checksum(exchange.header(
            "upload-checksum")))
    except BaseException:
        # Its client never learns its URL: no upload is left behind (bytes a cut creation
        # kept go with the partials' sweep).
        tus.records.remove(record)
        raise
    headers = [("Location", f"/{UPLOADS}/{record.token}"), *_state(tus, record, count)]
    exchange.respond(201, headers)


def serve_head(exchange: HttpExchange, tus: TusContext, token: str) -> None:
    """HEAD on an upload: how much of it the server holds (a resume starts there)."""
    check_version(exchange.header("tus-resumable"))
    record = tus.records.find(token, tus.owner)
    if record.published is not None:
        offset = record.size
    else:
        with tus.storage.folder_locks() as folder_locks:
            upload = Upload(tus.storage, record.plan(), tus.storage.alone(folder_locks))
            try:
                upload.open()  # gives way to nothing live, takes over from a stalled PATCH
                offset = upload.held
            finally:
                upload.close()
    headers = [("Upload-Length", str(record.size)), ("Cache-Control", "no-store"),
               *_state(tus, record, offset)]
    if record.metadata:
        headers.append(("Upload-Metadata", record.metadata))
    exchange.respond(200, headers)


def serve_patch(exchange: HttpExchange, tus: TusContext, token: str) -> None:
    """PATCH: the upload's next bytes, at the offset it holds; the last ones publish it."""
    check_version(exchange.header("tus-resumable"))
    record = tus.records.find(token, tus.owner)
    if not _is_offset_stream(exchange):
        raise NotOffsetStream(f"a PATCH's bytes come as {OFFSET_OCTET_STREAM}")
    offset = number(exchange.header("upload-offset"), "Upload-Offset")
    count = _body_length(exchange, required=True)
    check = checksum(exchange.header("upload-checksum"))
    if record.published is not None:
        if offset != record.size or count:
            raise OffsetConflict("this upload is complete and published already")
        record = tus.records.touch(record)
    else:
        record = _pass(exchange, tus, record, offset, count, check)
    exchange.respond(204, _state(tus, record, offset + count))


def serve_delete(exchange: HttpExchange, tus: TusContext, token: str) -> None:
    """DELETE: give the upload up; what it held goes now (termination)."""
    check_version(exchange.header("tus-resumable"))
    record = tus.records.find(token, tus.owner)
    if record.published is None:
        with tus.storage.folder_locks() as folder_locks:
            upload = Upload(tus.storage, record.plan(), tus.storage.alone(folder_locks))
            try:
                upload.open()
                upload.drop()
            finally:
                upload.close()
    tus.records.remove(record)
    KEPT.drop(record.token)
    exchange.respond(204, RESUMABLE)


# ---------------------------------------------------------------- one pass


def _pass(exchange: HttpExchange, tus: TusContext, record: TusRecord, offset: int, count: int,
          check: Checksum | None) -> TusRecord:
    """One pass of the one upload: ``count`` bytes of the body at ``offset``, then, if they
    were the last, the SHA-256 check and the publish. Returns the record as it stands."""
    if offset + count > record.size:
        raise TooLarge(f"{offset + count} bytes is more than the {record.size} announced")
    storage = tus.storage
    published: str | None = None
    started = False
    with storage.folder_locks() as folder_locks:
        upload = Upload(storage, record.plan(), storage.alone(folder_locks))
        try:
            upload.open()
            if upload.held != offset:
                raise OffsetConflict(f"the server holds {upload.held} bytes of this upload, "
                                     f"not {offset}: ask with HEAD and go on from there")
            upload.start(offset, KEPT.get(record.token))
            started = True
            digest = _receive(exchange, tus, upload, count, check)
            if offset + count == record.size:
                try:
                    published = upload.finish(digest, record.sha256 or digest).sha256
                except IntegrityError:
                    tus.records.remove(record)  # its partial is gone: so is the upload
                    raise
        finally:
            if started:  # (a pass refused before it began leaves another's hasher be)
                KEPT.put(record.token, None if upload.done else upload.hasher())
            upload.close()
    if published is not None:
        KEPT.drop(record.token)
        return tus.records.published(record, published)
    return tus.records.touch(record)


def _receive(exchange: HttpExchange, tus: TusContext, upload: Upload, count: int,
             check: Checksum | None) -> str:
    """Take the PATCH's bytes into the partial; the SHA-256 of the file up to their end."""
    if not count:
        hasher = upload.hasher()
        assert hasher is not None
        return hasher.hexdigest()
    tap = check.hasher() if check is not None else None

    def fed(data: memoryview, position: int) -> None:
        assert tap is not None
        tap.update(data)

    channel = exchange.body_channel()
    try:
        digest = upload.receive(channel, tus.timeout, tus.throttle, count=count,
                                tap=fed if tap is not None else None)
    except BaseException:
        if check is not None:
            upload.rewind()  # bytes no checksum vouches for: none of them are kept
        raise
    exchange.body_read(channel)
    if check is not None and tap is not None and tap.digest() != check.digest:
        upload.rewind()
        raise ChecksumMismatch(f"the bytes sent are not those of Upload-Checksum "
                               f"{check.algorithm}: none of them were kept")
    return digest


# ---------------------------------------------------------------- helpers


def _state(tus: TusContext, record: TusRecord, offset: int) -> Headers:
    """Where the upload stands: its offset, and its expiry or its file's SHA-256."""
    headers = [*RESUMABLE, ("Upload-Offset", str(offset))]
    if record.published is not None:
        headers.append(("Repr-Digest", repr_digest(record.published)))
    else:
        headers.append(("Upload-Expires", http_date(tus.records.expires(record))))
    return headers


def _body_length(exchange: HttpExchange, required: bool) -> int:
    length = exchange.content_length
    if length is None:
        if required or exchange.has_body:
            raise LengthRequired("send the bytes with a Content-Length (chunked bodies are "
                                 "not taken yet)")
        return 0
    return length


def _is_offset_stream(exchange: HttpExchange) -> bool | None:
    """Whether the body is declared as tus bytes (None: no Content-Type at all)."""
    value = exchange.header("content-type")
    if value is None:
        return None
    return value.split(";")[0].strip().lower() == OFFSET_OCTET_STREAM
