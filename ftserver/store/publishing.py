"""Making a verified upload visible: durability and the atomic rename.

The order is fsync the data, set the mode and mtime, rename over the final name,
fsync the folder, so a name shows either the previous version or the whole new
one, even after a power cut. The partial sits on the target folder's own
filesystem (partials.py), so the rename never crosses filesystems and nothing
is ever copied into the share under another name first. Both ends of the rename
are descriptors checked by the caller (the partials folder, and the target's
folder as names.py walked to it), so a folder swapped for a symlink meanwhile
cannot redirect it. (New parent folders are made, durably and without following
symlinks, by confine.make_dirs_beneath.)

Version 0.1 published across filesystems through a staged copy beside the
target (``.ft-tmp-*``), noted in ``state_dir/staging``; ``remove_leftover_staging``
still deletes one that a crash of that version left behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time

from common.io.durable import fsync_dir
from common.protocol.names import RESERVED_PREFIX
from ftserver.store.confine import fd_path

log = logging.getLogger("ftserver.publishing")

STAGED_PREFIX = f"{RESERVED_PREFIX}tmp-"


def publish(partials_fd: int, partial: str, fd: int, folder_fd: int, final: str, mtime: float,
            *, file_mode: int, sync_folder: bool = True) -> os.stat_result:
    """Move the verified partial ``partial`` (in the folder open as ``partials_fd``, itself
    open as ``fd``) to ``final`` in the folder open as ``folder_fd``, durably and
    atomically; return the published file's stat.

    With ``sync_folder`` False the caller takes on the folder's fsync, and must not
    report success before it (a burst of uploads does one for several files).
    Raises OSError (EXDEV if the two folders are not on one filesystem, which the
    choice of partials folder rules out).
    """
    os.fsync(fd)
    os.fchmod(fd, file_mode)
    os.utime(fd, (time.time(), mtime))
    os.replace(partial, final, src_dir_fd=partials_fd, dst_dir_fd=folder_fd)
    published = os.fstat(fd)  # after the rename: its ctime moved with it
    if sync_folder:
        fsync_dir(fd_path(folder_fd))
    return published


def remove_leftover_staging(staging_dir: str) -> int:
    """Delete staged copies that a crash of version 0.1 left in the share."""
    removed = 0
    try:
        with os.scandir(staging_dir) as scan:
            notes = [entry.path for entry in scan if entry.name.startswith(STAGED_PREFIX)]
    except FileNotFoundError:
        return 0
    for note in notes:
        try:
            with open(note, encoding="utf-8", errors="surrogateescape") as record:
                staged = record.read()
            if os.path.basename(staged).startswith(STAGED_PREFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staged)
                    removed += 1
            os.unlink(note)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                log.warning("could not clean a staged copy: %s", exc)
    return removed
