"""Where put and get send their files, as ``cp`` and ``scp`` users expect.

- Several sources need a folder last: for ``put``, an existing remote folder or a
  name ending in ``/`` (then created); for ``get``, an existing local folder.
  Otherwise the command stops before moving anything: ``put *.txt`` matching four
  files must not make a remote folder of the last one's name.
- ``put a.txt reports``, where ``reports`` is an existing remote folder, puts into it,
  as ``mv a.txt reports`` moves into it (``target_in_folder``).
- ``get 'inbox/*.pdf' ~/in/``: a remote name with ``*``, ``?`` or ``[`` is matched
  against the files of its folder, as sftp and scp do (quoted, so the local shell
  leaves it alone).
"""

from __future__ import annotations

import fnmatch
import os

from common.protocol.errors import NotADirectory, NotFound
from ftclient.client import Client
from ftclient.retry import RetryCallback

GLOB_CHARACTERS = "*?["


def remote_folder_for_many(client: Client, folder: str, on_retry: RetryCallback) -> str:
    """``folder`` if it may receive several files: it ends in "/" or is a remote folder."""
    if folder.endswith("/"):
        return folder
    try:
        kind = client.stat(folder, on_retry=on_retry).type
    except NotFound:
        raise NotFound(f"remote folder {folder!r} does not exist: several files need a "
                       f"folder last (end it with / to create it: {folder}/)") from None
    if kind != "dir":
        raise NotADirectory(f"{folder!r} is a file, not a folder: several files need a "
                            "folder last")
    return folder


def target_in_folder(client: Client, dst: str, name: str, on_retry: RetryCallback) -> str:
    """Like cp(1) and mv(1): a DST ending in / or naming an existing remote folder
    receives NAME inside it; any other DST is the new name itself."""
    if dst.endswith("/"):
        return dst + name
    try:
        is_folder = client.stat(dst, on_retry=on_retry).type == "dir"
    except NotFound:
        return dst
    return f"{dst}/{name}" if is_folder else dst


def has_glob(name: str) -> bool:
    return any(char in name for char in GLOB_CHARACTERS)


def expand_remote(client: Client, patterns: list[str], on_retry: RetryCallback) -> list[str]:
    """Each remote name, or for one with glob characters the files of its folder that match
    it (sorted); a pattern that matches nothing is NotFound."""
    names: list[str] = []
    for pattern in patterns:
        if not has_glob(pattern):
            names.append(pattern)
            continue
        folder, _, leaf = pattern.rstrip("/").rpartition("/")
        if has_glob(folder):
            raise NotFound(f"{pattern!r}: only the last part of a name may hold * ? [")
        matches = sorted(entry.name for entry in client.list(folder, on_retry=on_retry)
                         if entry.type == "file" and fnmatch.fnmatchcase(entry.name, leaf))
        if not matches:
            raise NotFound(f"no remote file matches {pattern!r}")
        names += [f"{folder}/{name}" if folder else name for name in matches]
    return names


def local_folder_for_many(folder: str) -> str:
    if not os.path.isdir(folder):
        raise NotADirectory(f"{folder!r} is not a local folder (get with several names "
                            "needs a folder last)")
    return folder


def remote_kept(client: Client, source: object, remote: str | None,
                on_retry: RetryCallback | None) -> str | None:
    """For put --no-clobber: the remote name the put would write, if the server has
    something there already (so the put is skipped); else None."""
    name = remote if remote and not remote.endswith("/") else (
        (remote or "") + os.path.basename(str(source)))
    try:
        client.stat(name, on_retry=on_retry)
    except NotFound:
        return None
    return name


def local_kept(remote: str, local: str | None) -> str | None:
    """For get --no-clobber: the local file the get would write, if it exists; else None."""
    from ftclient.localfiles import choose_destination
    from ftclient.names import normalize_remote

    there = choose_destination(normalize_remote(remote), local)
    return there if os.path.lexists(there) else None
