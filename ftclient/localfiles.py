"""The client's side of the disk: download partials and publishing them, confined to a folder.

A download in progress lives beside its destination under a hidden name
(``.NAME.ftpart``), never under the final name. Publishing is fsync, set mtime,
rename over the destination, fsync the folder: the same order the server uses.
"""

from __future__ import annotations

import os
import time

from common.durable import fsync_dir
from common.errors import NotFound
from common.paths import check_component

PARTIAL_SUFFIX = ".ftpart"


def partial_path_for(destination: str) -> str:
    folder, name = os.path.split(destination)
    return os.path.join(folder, f".{name}{PARTIAL_SUFFIX}")


def remote_basename(remote: str) -> str:
    """The last component of a remote name, checked against the path rules."""
    return check_component(remote.rstrip("/").rsplit("/", 1)[-1])


def choose_destination(remote: str, local: str | None) -> str:
    """Where ``get`` writes: LOCAL, or LOCAL/basename when LOCAL is a folder, or ./basename."""
    name = remote_basename(remote)
    if local is None:
        return os.path.abspath(name)
    if os.path.isdir(local):
        return os.path.abspath(os.path.join(local, name))
    if local.endswith(os.sep):
        raise NotFound(f"local folder {local!r} does not exist")
    return os.path.abspath(local)


def publish(partial: str, fd: int, destination: str, mtime: float) -> None:
    os.fsync(fd)
    os.utime(fd, (time.time(), mtime))
    os.replace(partial, destination)
    fsync_dir(os.path.dirname(destination) or ".")
