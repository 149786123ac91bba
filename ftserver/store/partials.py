"""Partial uploads: where they live, whose they are, and how they are found again.

A partial lives on the filesystem of the folder it will be published into, so that
publishing is a rename, never a copy: in the reserved hidden folder ``.ft-partials``
at the top of the share, or at the top of the mount inside the share that holds the
target's folder. No client can name it by any front end (``.ft-`` names are
reserved by the protocol's rules), so none can list, fetch or overwrite it; the
folder is 0700, so other local users cannot read it either. Each such folder is
written down in ``state_dir/partials-folders``, so that maintenance (expiry, the
cap, space) finds every one.

A resumable partial belongs to one upload, its identity: one owner (a user name,
"" for anonymous), one target, one announced size and mtime. Its name is
``KEY-ID.part``: KEY is the target's lock key (names.py), ID a digest of the
identity, so another writer of the same name never finds it (it gets ``locked``
while the upload runs, or starts its own partial). A sidecar ``KEY-ID.meta``
records the identity, the announced SHA-256 if the client sent one (a later
upload that announces another is not the same file: it starts over), and the
digest of the bytes held when the upload was cut, so that answering the next
attempt needs no re-read unless it resumes.

A streamed put's partial, ``KEY-sSIZE-RANDOM.stream``, is never resumed; one left
by a crash is removed by the next expiry sweep. Partials that version 0.1 left in
``state_dir/partials`` were keyed by name alone, so their owner cannot be proven:
they are never resumed, only swept by expiry and the cap like any other.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from dataclasses import dataclass

from common.io.durable import fsync_dir
from common.protocol.names import RESERVED_PREFIX
from ftserver.store.base import UploadIdentity

PARTIALS_FOLDER = f"{RESERVED_PREFIX}partials"
REGISTRY = "partials-folders"
LEGACY_FOLDER = "partials"
"""state_dir/partials: where version 0.1 kept partials (swept, never resumed)."""
_NAME = re.compile(r"(?P<key>[0-9a-f]{64})-(?:(?P<id>[0-9a-f]{32})\.part"
                   r"|s(?P<size>[0-9]+)-[0-9a-f]{16}\.stream)\Z")
_LEGACY_NAME = re.compile(r"(?P<key>[0-9a-f]{64})(?:-stream)?\.part\Z")


@dataclass(frozen=True)
class PartialsFolder:
    """One ``.ft-partials`` folder: its path, an open descriptor of it, its filesystem."""

    path: str
    fd: int
    dev: int


@dataclass(frozen=True)
class FoundPartial:
    """A partial met by a scan of a partials folder."""

    folder: str
    name: str
    key: str
    """The lock key of its target: an upload holding that lock may be writing it."""
    held: int
    mtime: float
    announced: int | None
    """The size its upload announced (None: unknown, a legacy partial)."""

    @property
    def path(self) -> str:
        return os.path.join(self.folder, self.name)


@dataclass(frozen=True)
class HeldPrefix:
    """The digest of a partial's first ``size`` bytes, as its upload left them."""

    size: int
    mtime_ns: int
    sha256: str


class PartialFolders:
    """The partials folders of one share (whose real root is ``root_real``)."""

    def __init__(self, root_real: str, state_dir: str) -> None:
        self.root_real = root_real
        self.registry = os.path.join(state_dir, REGISTRY)
        self.legacy = os.path.join(state_dir, LEGACY_FOLDER)
        self._open: dict[int, PartialsFolder] = {}

    def folder_for(self, folder_real: str, dev: int) -> PartialsFolder:
        """The partials folder for uploads into ``folder_real`` (on filesystem ``dev``): at
        the top of the share, or of the mount inside it that holds that folder."""
        known = self._open.get(dev)
        if known is not None:
            return known
        top = _mount_top(self.root_real, folder_real, dev)
        path = os.path.join(top, PARTIALS_FOLDER)
        try:
            os.mkdir(path, 0o700)
            fsync_dir(top)
        except FileExistsError:
            pass
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        found = PartialsFolder(path, fd, os.fstat(fd).st_dev)
        self._open[dev] = found
        self._register(path)
        return found

    def _register(self, path: str) -> None:
        if path in self.known_paths():
            return
        fd = os.open(self.registry, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, (path + "\n").encode("utf-8", "surrogateescape"))
        finally:
            os.close(fd)

    def known_paths(self) -> list[str]:
        """Every partials folder that uploads into this share have used."""
        try:
            with open(self.registry, encoding="utf-8", errors="surrogateescape") as lines:
                paths = [line.rstrip("\n") for line in lines if line.strip()]
        except FileNotFoundError:
            paths = []
        return sorted(set(paths))

    def scan_all(self) -> list[FoundPartial]:
        """Every partial of the share, legacy ones included."""
        found: list[FoundPartial] = []
        for path in self.known_paths():
            found.extend(scan(path))
        found.extend(scan_legacy(self.legacy))
        return found

    def close(self) -> None:
        for folder in self._open.values():
            with contextlib.suppress(OSError):
                os.close(folder.fd)
        self._open = {}


def _mount_top(root_real: str, folder_real: str, dev: int) -> str:
    """The highest folder from ``folder_real`` up to the root that is still on ``dev``."""
    top = folder_real
    while top != root_real:
        parent = os.path.dirname(top)
        try:
            if os.stat(parent).st_dev != dev:
                break
        except OSError:
            break
        top = parent
    return top


# ---------------------------------------------------------------- resumable partials


def resumable_name(key: str, identity: UploadIdentity) -> str:
    return f"{key}-{identity.digest()}.part"


def open_resumable(folder: PartialsFolder, key: str, identity: UploadIdentity,
                   sha256: str | None) -> tuple[int, str, HeldPrefix | None]:
    """Open (or create) the partial of this upload; return its fd, its name, and the digest
    of what it holds if its last upload left one that still matches it.

    A partial whose recorded SHA-256 differs from the one announced now holds another
    file's bytes: it is emptied, and this upload starts over.
    """
    name = resumable_name(key, identity)
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                 dir_fd=folder.fd)
    try:
        meta = _read_meta(folder, name)
        recorded = meta.get("sha256") if meta else None
        if sha256 is not None and recorded is not None and recorded != sha256:
            os.ftruncate(fd, 0)
            meta = None
        if meta is None or (sha256 is not None and recorded is None):
            _write_meta(folder, name, identity, sha256, None)
            meta = _read_meta(folder, name)
        return fd, name, _held_prefix(meta, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise


def record_held(folder: PartialsFolder, name: str, fd: int, sha256_so_far: str) -> None:
    """Note the digest of what the partial open as ``fd`` holds now (its upload was cut)."""
    meta = _read_meta(folder, name) or {}
    st = os.fstat(fd)
    meta["held"] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_so_far}
    _write_json(folder, name, meta)


def remove_partial(folder: PartialsFolder, name: str) -> None:
    """Delete a partial and its sidecar (either may be gone already)."""
    for each in (name, _meta_name(name)):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(each, dir_fd=folder.fd)


def remove_sidecar(folder: PartialsFolder, name: str) -> None:
    """Delete the sidecar of a partial that was published (renamed away)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_meta_name(name), dir_fd=folder.fd)


def _meta_name(name: str) -> str:
    return name.removesuffix(".part") + ".meta"


def _read_meta(folder: PartialsFolder, name: str) -> dict | None:
    try:
        fd = os.open(_meta_name(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=folder.fd)
    except FileNotFoundError:
        return None
    try:
        with os.fdopen(fd, "rb") as stream:
            meta = json.loads(stream.read(64 * 1024))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _write_meta(folder: PartialsFolder, name: str, identity: UploadIdentity,
                sha256: str | None, held: dict | None) -> None:
    _write_json(folder, name, {"owner": identity.owner, "size": identity.size,
                               "mtime_ns": identity.mtime_ns, "sha256": sha256, "held": held})


def _write_json(folder: PartialsFolder, name: str, meta: dict) -> None:
    """Replace the sidecar whole (write a new one, rename it over)."""
    temporary = f"{_meta_name(name)}.{secrets.token_hex(4)}"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                 | os.O_CLOEXEC, 0o600, dir_fd=folder.fd)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(json.dumps(meta).encode("utf-8", "surrogateescape"))
        os.replace(temporary, _meta_name(name), src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder.fd)
        raise


def _held_prefix(meta: dict | None, st: os.stat_result) -> HeldPrefix | None:
    held = meta.get("held") if meta else None
    if not isinstance(held, dict):
        return None
    size, mtime_ns, digest = held.get("size"), held.get("mtime_ns"), held.get("sha256")
    if (type(size) is not int or type(mtime_ns) is not int or not isinstance(digest, str)
            or (size, mtime_ns) != (st.st_size, st.st_mtime_ns)):
        return None  # written to since (or never recorded): hash it to know
    return HeldPrefix(size, mtime_ns, digest)


# ---------------------------------------------------------------- streamed partials


def open_streamed(folder: PartialsFolder, key: str, size: int) -> tuple[int, str]:
    """A new partial for a streamed put of ``size`` bytes: its fd and name."""
    name = f"{key}-s{size}-{secrets.token_hex(8)}.stream"
    fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600, dir_fd=folder.fd)
    return fd, name


# ---------------------------------------------------------------- scans


def scan(path: str) -> list[FoundPartial]:
    """The partials in the partials folder ``path`` (sidecars and strays left out)."""
    found = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                match = _NAME.match(entry.name)
                if match is None:
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                announced = (int(match["size"]) if match["size"] is not None
                             else _announced(path, entry.name))
                found.append(FoundPartial(path, entry.name, match["key"], st.st_size,
                                          st.st_mtime, announced))
    except FileNotFoundError:
        pass
    return found


def _announced(path: str, name: str) -> int | None:
    try:
        with open(os.path.join(path, _meta_name(name)), "rb") as stream:
            meta = json.loads(stream.read(64 * 1024))
    except (OSError, ValueError):
        return None
    size = meta.get("size") if isinstance(meta, dict) else None
    return size if type(size) is int else None


def scan_legacy(path: str) -> list[FoundPartial]:
    """Partials that version 0.1 left in ``state_dir/partials``."""
    found = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                match = _LEGACY_NAME.match(entry.name)
                if match is None:
                    continue
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    found.append(FoundPartial(path, entry.name, match["key"], st.st_size,
                                              st.st_mtime, None))
    except FileNotFoundError:
        pass
    return found


def delete_found(partial: FoundPartial) -> bool:
    """Delete a partial met by a scan (and its sidecar); False if it was gone already."""
    try:
        os.unlink(partial.path)
    except FileNotFoundError:
        return False
    if partial.name.endswith(".part"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(partial.folder, _meta_name(partial.name)))
    return True
