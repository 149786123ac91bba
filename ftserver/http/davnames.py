"""WebDAV's MKCOL, DELETE, COPY and MOVE: the store's own operations, and for COPY of a
file the one download into the one upload (ops/copyfile.py).

Destination and Overwrite are honoured; neither COPY nor MOVE leaves the share or
touches the top folder. DELETE of a folder is recursive, as RFC 4918 asks.
"""

from __future__ import annotations

from common.protocol.errors import (
    AlreadyExists,
    NotFound,
)
from ftserver.http.dav import (
    DavError,
    DavRequest,
    PreconditionFailed,
    destination_target,
    drain_body,
    exists,
    is_folder,
)
from ftserver.ops.copyfile import copy_file
from ftserver.store.base import Share

# ---------------------------------------------------------------- MKCOL

def serve_mkcol(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    drain_body(exchange, request.timeout)
    if not target.name:
        raise DavError(405, "the top folder exists")
    try:
        storage.make_dir(target.name, parents=False)
    except AlreadyExists:
        raise DavError(405, f"{target.name!r} already exists") from None
    except NotFound as exc:
        raise DavError(409, exc.message) from None
    exchange.respond(201, [])

MAX_COPY_ENTRIES = 100_000
"""The most names one COPY of a folder makes (a bigger tree is refused, 507)."""
MAX_COPY_DEPTH = 64
"""The deepest a copied tree goes (a link inside leading back up ends there, 507)."""


# ---------------------------------------------------------------- DELETE

def serve_delete(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    if not target.name:
        raise DavError(403, "the top folder cannot be removed")
    storage.remove(target.name, recursive=True)
    exchange.respond(204, [])


# ---------------------------------------------------------------- COPY and MOVE

def serve_copy_or_move(request: DavRequest, move: bool) -> None:
    """Everything that could refuse the request is checked before the destination, if
    it exists and Overwrite allows, is removed: its locks, the source's, and whether
    either holds the other (by real paths, so through a link in the share too)."""
    exchange, storage, target = request.exchange, request.storage, request.target
    value = exchange.header("destination")
    if not value:
        raise DavError(400, f"{exchange.method} needs a Destination header")
    destination = destination_target(value, exchange).name
    if not target.name or not destination:
        raise DavError(403, "the top folder is neither copied nor moved, nor replaced")
    overwrite = (exchange.header("overwrite") or "T").strip().upper() != "F"
    depth = (exchange.header("depth") or "infinity").strip().lower()
    if depth not in (("infinity",) if move else ("0", "infinity")):
        raise DavError(400, f"{exchange.method} takes Depth: infinity"
                       + ("" if move else " or 0"))
    source = storage.stat(target.name)
    source_path = storage.lock_path(target.name)
    destination_path = storage.lock_path(destination)
    if source_path == destination_path:
        raise DavError(403, "the source and the destination are the same")
    if _under(destination_path, source_path):
        raise DavError(409 if move else 403, "a folder cannot go into itself")
    if _under(source_path, destination_path):
        raise DavError(409, "the destination holds the source: replacing it would remove "
                       "what is to be copied or moved")
    existed = exists(storage, destination)
    if existed and not overwrite:
        raise PreconditionFailed(f"{destination!r} exists and Overwrite is F")
    parent = destination.rpartition("/")[0]
    if parent and not is_folder(storage, parent):
        raise DavError(409, f"the folder that would hold {destination!r} does not exist")
    if move:
        storage.check_unlocked(source_path, target.name, members=True, beneath=True)
    storage.check_unlocked(destination_path, destination, members=True, beneath=True)
    if existed:
        storage.remove(destination, recursive=True)
    if move:
        storage.move(target.name, destination)
    elif source.type == "dir":
        _copy_tree(storage, target.name, destination, request.user, shallow=depth == "0")
    else:
        copy_file(storage, target.name, destination, request.user)
        storage.dead_props.copied(source_path, destination_path)
    exchange.respond(204 if existed else 201, [])


def _under(path: str, folder: str) -> bool:
    return path.startswith(folder.rstrip("/") + "/")


def _copy_tree(storage: Share, source: str, destination: str, owner: str,
               shallow: bool) -> None:
    """Folder by folder, each file by ops/copyfile.py; bounded in names and depth, and a
    folder reached twice (a link inside leading back) is copied once."""
    made = 0
    seen: set[str] = set()
    pending = [(source, destination, 0)]
    while pending:
        src, dst, level = pending.pop()
        src_path = storage.lock_path(src)
        if src_path in seen:
            continue
        seen.add(src_path)
        if level > MAX_COPY_DEPTH:
            raise DavError(507, f"a copy goes at most {MAX_COPY_DEPTH} folders deep")
        storage.make_dir(dst, parents=False)
        storage.dead_props.copied(src_path, storage.lock_path(dst))
        if shallow:
            return
        for child in storage.list_folder(src):
            made += 1
            if made > MAX_COPY_ENTRIES:
                raise DavError(507, f"a copy makes at most {MAX_COPY_ENTRIES} names")
            child_src, child_dst = f"{src}/{child.name}", f"{dst}/{child.name}"
            if child.type == "dir":
                pending.append((child_src, child_dst, level + 1))
            else:
                copy_file(storage, child_src, child_dst, owner)
                storage.dead_props.copied(storage.lock_path(child_src),
                                          storage.lock_path(child_dst))
