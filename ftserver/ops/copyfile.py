"""A copy of a file within the share (WebDAV's COPY): the one download into the one upload.

The source is read through ops/download.py and its bytes go into ops/upload.py as
a body would, so the copy gets what every upload gets: the name's lock and the
write locks, room promised first, a partial, the SHA-256 checked (against the
source's cached digest when there is one), fsync and an atomic publish. The copy
keeps the source's mtime. A source written to while it is copied fails the copy
and publishes nothing.
"""

from __future__ import annotations

from ftserver.ops.download import Download
from ftserver.ops.upload import Uploaded, UploadPlan, upload_chunks
from ftserver.store.base import Share


def copy_file(storage: Share, source: str, destination: str, owner: str) -> Uploaded:
    with Download(storage, source) as download:
        plan = UploadPlan(destination, download.size, download.mtime, download.digest, owner,
                          resumable=False)
        return upload_chunks(storage, plan, download.chunks())
