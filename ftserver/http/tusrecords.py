"""What the server remembers of each tus upload, by its unguessable token, in state_dir.

A tus upload's URL is ``/.ft-tus/TOKEN``: TOKEN is 256 random bits, the only thing
that names the upload, so nobody reaches an upload whose URL they were not given.
The server keeps, in ``state_dir/tus-uploads/``, one small JSON record per upload
under the SHA-256 of its token (a copy of the folder gives away no URL): the name
it will be published as, its size, its owner, the mtime derived at its creation
(with the owner and size, the identity of its partial, store/base.py's
``UploadIdentity``), the metadata it was created with, and once published, the
file's SHA-256. The bytes themselves live in the one upload's partial; a restart
finds both again. A record's own mtime is the upload's last activity: it expires
``ttl`` seconds later, as an untouched partial does (space.py's sweep).

Another owner's token is answered as no token at all: one user cannot even learn
that another's upload exists.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

from common.protocol.errors import FtError, NotFound
from ftserver.ops.upload import UploadPlan

FOLDER = "tus-uploads"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}\Z")
MAX_METADATA = 4096
"""Characters of Upload-Metadata kept (and echoed on HEAD)."""


class Gone(FtError):
    """The upload expired: its bytes are, or will soon be, swept away."""

    code = "not_found"
    http_status = 410


@dataclass(frozen=True)
class TusRecord:
    """One tus upload, as its record keeps it."""

    token: str
    name: str
    size: int
    owner: str
    mtime: float
    """Derived once, at creation: with owner and size, the partial's identity."""
    metadata: str = ""
    """The Upload-Metadata it was created with, as sent."""
    sha256: str | None = None
    """The SHA-256 its creator announced in the metadata (``sha256``), if any."""
    published: str | None = None
    """The published file's SHA-256, once the last byte came and the file is in place."""
    touched: float = 0.0
    """When it last moved (the record's own mtime)."""

    def plan(self) -> UploadPlan:
        """The one upload's plan for a pass of this upload: resumable, by its identity."""
        return UploadPlan(self.name, self.size, self.mtime, None, self.owner, resumable=True)


class TusRecords:
    """The records of one server's tus uploads, in ``state_dir``; ``ttl``: partial_ttl."""

    def __init__(self, state_dir: Path, ttl: float) -> None:
        self.folder = state_dir / FOLDER
        self.ttl = ttl

    def create(self, name: str, size: int, owner: str, metadata: str,
               sha256: str | None) -> TusRecord:
        """A new upload with a fresh token (expired records are swept on the way)."""
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._sweep()
        now = time.time()
        record = TusRecord(secrets.token_urlsafe(32), name, size, owner, now,
                           metadata[:MAX_METADATA], sha256, None, now)
        self._write(record)
        return record

    def find(self, token: str, owner: str) -> TusRecord:
        """The upload this token names, if it is ``owner``'s; else NotFound (or Gone)."""
        unknown = NotFound("no such upload (it may have been finished, ended or expired)")
        if not _TOKEN.match(token):
            raise unknown
        path = self._path(token)
        try:
            with open(path, "rb") as stream:
                data = json.loads(stream.read(64 * 1024))
            touched = os.stat(path).st_mtime
        except (OSError, ValueError):
            raise unknown from None
        record = _parsed(token, data, touched)
        if record is None or record.owner != owner:
            raise unknown
        if self.expires(record) < time.time():
            self.remove(record)
            raise Gone("this upload expired; start it again")
        return record

    def expires(self, record: TusRecord) -> float:
        return record.touched + self.ttl

    def touch(self, record: TusRecord) -> TusRecord:
        """It moved: it expires ``ttl`` from now."""
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(self._path(record.token), (now, now))
        return replace(record, touched=now)

    def published(self, record: TusRecord, sha256: str) -> TusRecord:
        """Its file is in place, with this SHA-256: a late HEAD still learns it is done."""
        done = replace(record, published=sha256, touched=time.time())
        self._write(done)
        return done

    def remove(self, record: TusRecord) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(record.token))

    def _path(self, token: str) -> Path:
        return self.folder / f"{hashlib.sha256(token.encode('ascii')).hexdigest()}.json"

    def _write(self, record: TusRecord) -> None:
        data = {"name": record.name, "size": record.size, "owner": record.owner,
                "mtime": record.mtime, "metadata": record.metadata, "sha256": record.sha256,
                "published": record.published}
        path = self._path(record.token)
        temporary = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            with os.fdopen(fd, "wb") as stream:
                stream.write(json.dumps(data).encode("utf-8", "surrogateescape"))
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def _sweep(self) -> None:
        """Records untouched for ``ttl`` go (their partials went, or go, the same way)."""
        stale = time.time() - self.ttl
        with os.scandir(self.folder) as entries:
            old = [entry.path for entry in entries
                   if entry.is_file(follow_symlinks=False)
                   and entry.stat(follow_symlinks=False).st_mtime < stale]
        for path in old:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _parsed(token: str, data: object, touched: float) -> TusRecord | None:
    if not isinstance(data, dict):
        return None
    name, size, owner, mtime = data.get("name"), data.get("size"), data.get("owner"), \
        data.get("mtime")
    metadata, sha256, published = data.get("metadata", ""), data.get("sha256"), \
        data.get("published")
    if (not isinstance(name, str) or type(size) is not int or not isinstance(owner, str)
            or type(mtime) is not float or not isinstance(metadata, str)
            or not isinstance(sha256, str | None) or not isinstance(published, str | None)):
        return None
    return TusRecord(token, name, size, owner, mtime, metadata, sha256, published, touched)
