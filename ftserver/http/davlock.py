"""WebDAV's LOCK and UNLOCK over the store's write locks (store/writelocks.py).

Exclusive and shared write locks, Depth 0 or infinity, with a timeout (a week at
most) and refresh by an empty LOCK naming the lock in If. A LOCK of a name not there
yet makes an empty file (RFC 4918, 7.3), as davfs2 and Office expect. Windows' bare
Lock-Token (no angle brackets) is taken.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from common.protocol.errors import (
    Locked,
)
from ftserver.http import davxml
from ftserver.http.dav import (
    DavError,
    DavRequest,
    PreconditionFailed,
    exists,
    is_folder,
    read_xml,
)
from ftserver.http.davif import bare_token
from ftserver.http.davprops import lock_discovery
from ftserver.http.davxml import XML_TYPE, d
from ftserver.store.base import Share
from ftserver.store.writelocks import DEFAULT_TIMEOUT, MAX_TIMEOUT

# ---------------------------------------------------------------- LOCK and UNLOCK

def serve_lock(request: DavRequest, make_empty_file: Callable[[Share, str], None]) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    ask = davxml.lock_ask(read_xml(exchange, request.timeout))
    timeout = _timeout(exchange.header("timeout"))
    if not target.name:
        raise DavError(403, "the top folder is not locked: that would stop every writer")
    path = storage.lock_path(target.name)
    if ask is None:  # a refresh: the If header names the lock
        tokens = storage.lock_tokens
        locks = [lock for token in tokens
                 if (lock := storage.write_locks.get(token)) is not None and lock.covers(path)
                 and lock.user == request.user]
        if not locks:
            raise PreconditionFailed("a LOCK without a body refreshes a lock named by the "
                                     "If header, and it names none on this resource")
        refreshed = [storage.write_locks.refresh(lock.token, timeout) for lock in locks]
        body = ET.Element(d("prop"))
        body.append(lock_discovery([lock for lock in refreshed if lock is not None],
                                   target.name, path))
        exchange.respond(200, [], davxml.serialise(body), XML_TYPE)
        return
    depth = (exchange.header("depth") or "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise DavError(400, "a LOCK's Depth is 0 or infinity")
    missing = not exists(storage, target.name)
    if missing:
        parent = target.name.rpartition("/")[0]
        if parent and not is_folder(storage, parent):
            raise DavError(409, f"the folder that would hold {target.name!r} does not exist")
    try:
        lock = storage.write_locks.take(path, infinite=depth == "infinity",
                                        exclusive=ask.exclusive, owner=ask.owner,
                                        user=request.user, timeout=timeout)
    except Locked as exc:
        raise DavError(423, exc.message) from None
    except ValueError as exc:
        raise DavError(400, str(exc)) from None
    if missing:  # RFC 4918 7.3: a lock on an unmapped URL makes an empty file, under it
        try:
            make_empty_file(storage.holding(frozenset({lock.token}), request.user),
                            target.name)
        except BaseException:
            storage.write_locks.release(lock.token)
            raise
    body = ET.Element(d("prop"))
    body.append(lock_discovery([lock], target.name, path))
    exchange.respond(201 if missing else 200, [("Lock-Token", f"<{lock.token}>")],
                     davxml.serialise(body), XML_TYPE)


def _timeout(header: str | None) -> int:
    """The first of the Timeout header's choices we can grant (RFC 4918 10.7)."""
    for choice in (header or "").split(","):
        choice = choice.strip()
        if choice.lower() == "infinite":
            return MAX_TIMEOUT
        if choice.lower().startswith("second-"):
            try:
                return max(1, min(int(choice[7:]), MAX_TIMEOUT))
            except ValueError:
                continue
    return DEFAULT_TIMEOUT


def serve_unlock(request: DavRequest) -> None:
    exchange, storage, target = request.exchange, request.storage, request.target
    header = exchange.header("lock-token")
    if not header:
        raise DavError(400, "UNLOCK needs a Lock-Token header")
    token = bare_token(header)
    lock = storage.write_locks.get(token)
    if lock is None or not lock.covers(storage.lock_path(target.name)):
        exchange.respond(409, [], davxml.error_body("lock-token-matches-request-uri"),
                         XML_TYPE)
        return
    if lock.user != request.user:
        raise DavError(403, "only the user who took a lock may remove it")
    storage.write_locks.release(token)
    exchange.respond(204, [])
