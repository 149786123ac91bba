"""The storage seam: every front end and operation reaches the share through this interface.

Sessions (ftserver/session) and the operations (ops/upload.py, ops/download.py)
see only ``Share`` and the handles it gives out; they never open a path, hold a
descriptor of the share or read its digest cache themselves. The local folder
(storage.py's ``LocalStorage``) is the only implementation today. An object
store would be a second: its places are object keys, its partials multipart
uploads, its publish a CompleteMultipartUpload, its name locks conditional writes,
and its sharing of a burst's work trivial; the sessions would not change.

What each handle promises:

- ``PartialFile``: the bytes of one upload on their way; what it held from an
  earlier attempt of the same upload, written at positions, kept (durably, with
  the digest of what it holds) for a resume when cut, or discarded.
- ``ReadFile``: one published file opened for a download, its size, mtime and the
  SHA-256 when known; bytes sent from an offset; whether it changed meanwhile.
- ``Sharing``: how an upload's place, lock, space, publish and cache share work
  with other uploads (alone, or in a ``Batch`` of small files made durable together).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from common.io.channel import Channel
from common.io.ratelimit import Throttle
from common.protocol.errors import FtError
from common.protocol.replies import EntryInfo, WalkEntry

if TYPE_CHECKING:
    from ftserver.store.deadprops import DeadProps
    from ftserver.store.writelocks import WriteLocks

SentCallback = Callable[[int], None]


@dataclass(frozen=True)
class UploadIdentity:
    """What makes an upload the same upload: who sends which announced file. A partial is
    resumed only by the same identity (and a stalled one gives way only to it)."""

    owner: str
    size: int
    mtime_ns: int

    def digest(self) -> str:
        text = f"{self.owner}\0{self.size}\0{self.mtime_ns}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


@dataclass(frozen=True)
class Published:
    """What a publish (or a confirmation of a file already there) left under the name."""

    size: int
    mtime: float
    stat: Any
    """The store's own record of it (a local ``os.stat_result``), for its digest cache."""


class PartialFile(Protocol):
    held: int
    """Bytes held from an earlier attempt of the same upload (0 for a new one)."""
    known_prefix: str | None
    """The SHA-256 of those bytes, when the attempt that left them recorded it."""

    def prefix_hasher(self) -> hashlib._Hash: ...
    def start(self, offset: int) -> None: ...
    def write(self, data: memoryview, position: int) -> None: ...
    def received(self, offset: int) -> int: ...
    def keep(self, hasher: hashlib._Hash | None) -> None: ...
    def discard(self) -> None: ...
    def close(self) -> None: ...


class ReadFile(Protocol):
    name: str
    size: int
    mtime: float
    digest: str | None

    def prefix_hasher(self, length: int,
                      given_up: Callable[[], bool] | None = None) -> hashlib._Hash:
        """SHA-256 of the first ``length`` bytes; ConnectionLost once ``given_up`` says
        no one waits for it any more."""
    def send(self, channel: Channel, offset: int, hasher: hashlib._Hash | None,
             timeout: float, throttle: Throttle, on_sent: SentCallback | None,
             count: int | None = None) -> None:
        """``count`` bytes from ``offset`` (None: to the end), fed to ``hasher`` if given."""
    def read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (b"" at the end); OSError if the disk fails."""
    @property
    def version(self) -> str:
        """Names this very version of the file: it changes whenever its bytes may have
        (an HTTP ETag, an If-Range)."""
    def unchanged(self) -> bool: ...
    def remember(self, digest: str) -> None: ...
    def close(self) -> None: ...


class Place(Protocol):
    """Where one upload goes: the name the client gave, as the store found it."""

    name: str


class Sharing(Protocol):
    def place(self, name: str) -> Place: ...
    def lock(self, place: Place, identity: UploadIdentity, resumable: bool) -> None: ...
    def asked_to_give_way(self, place: Place, identity: UploadIdentity) -> bool: ...
    def reserve(self, place: Place, need: int, partial: PartialFile) -> None: ...
    def publish(self, place: Place, partial: PartialFile, mtime: float) -> Published: ...
    def remember(self, place: Place, published: Published, digest: str) -> None: ...
    def release(self, place: Place | None) -> None: ...


class Batch(Sharing, Protocol):
    """A sharing whose uploads become durable together: ``settle`` makes them so."""

    @property
    def idle(self) -> bool: ...
    def settle(self) -> dict[str, FtError]: ...
    def close(self) -> None: ...


class Share(Protocol):
    """The share of one server, or of one user's home in it."""

    def confined_to(self, home: str) -> Share: ...

    # ------------------------------------------------------------ reading
    def stat(self, name: str) -> EntryInfo: ...
    def list_folder(self, name: str) -> list[EntryInfo]: ...
    def walk(self, name: str) -> Iterator[WalkEntry]: ...
    def open_read(self, name: str) -> ReadFile: ...
    def file_versions(self, name: str) -> dict[str, str]: ...

    # ------------------------------------------------------------ uploads
    def folder_locks(self) -> AbstractContextManager[Any]: ...
    def alone(self, folder_locks: Any) -> Sharing: ...
    def batch(self) -> Batch: ...
    def open_partial(self, place: Place, identity: UploadIdentity, sha256: str | None,
                     resumable: bool) -> PartialFile: ...
    def already_there(self, place: Place, size: int, sha256: str) -> Published | None: ...
    def confirm(self, place: Place, there: Published, mtime: float) -> Published: ...
    def after_cut(self) -> None: ...

    # ------------------------------------------------------------ file operations
    def make_dir(self, name: str, parents: bool) -> None: ...
    def move(self, src: str, dst: str) -> None: ...
    def remove(self, name: str, recursive: bool) -> None: ...
    def set_mtime(self, name: str, mtime: float) -> None: ...

    # ------------------------------------------------------------ WebDAV's state
    write_locks: WriteLocks
    dead_props: DeadProps
    lock_tokens: frozenset[str]

    def holding(self, tokens: frozenset[str], user: str) -> Share: ...
    def lock_path(self, name: str) -> str: ...
    def check_unlocked(self, path: str, name: str, *, members: bool = False,
                       beneath: bool = False) -> None: ...
    def disk_usage(self) -> tuple[int, int]: ...

    # ------------------------------------------------------------ upkeep
    def remove_leftovers(self) -> int: ...
    def expire(self, partial_ttl: float) -> int: ...
