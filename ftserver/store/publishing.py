"""Making a verified upload visible: durability and the atomic rename.

The order is fsync the data, set the mtime, rename over the final name, fsync
the folder, so a name shows either the previous version or the whole new one,
even after a power cut. (New parent folders are made, durably and without
following symlinks, by confine.make_dirs_beneath.)

When the target folder sits on another filesystem than the partials (a disk
mounted inside the share, or a state_dir elsewhere), a rename cannot cross: the
partial is copied to a hidden ``.ft-tmp-*`` file beside the target and that is
renamed. Each such staged copy is first written down in ``state_dir/staging``,
so one left behind by a crash or a cut-short shutdown is removed at the next start.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import time
import uuid

from common.io.durable import fsync_dir
from common.protocol.names import RESERVED_PREFIX
from ftserver.store.confine import fd_path

log = logging.getLogger("ftserver.publishing")

STAGED_PREFIX = f"{RESERVED_PREFIX}tmp-"
COPY_CHUNK = 1 << 20


def publish(partial: str, fd: int, final: str, mtime: float, staging_dir: str,
            folder_fd: int | None = None, *, sync_folder: bool = True,
            across: bool | None = None) -> os.stat_result:
    """Move the verified partial (open as ``fd``) to ``final``, durably and atomically;
    return the published file's stat.

    ``folder_fd``, if given, is the target folder checked by the caller (an O_PATH
    descriptor): the rename, or a staged copy, then goes relative to it, so a
    folder swapped for a symlink after the check cannot redirect it, and ``final``
    only names the file in it. ``across``: whether that folder is on another
    filesystem than the partial, if the caller knows (else it is asked). With
    ``sync_folder`` False the caller takes on the folder's fsync, and must not
    report success before it (streamburst.py does one for several files).
    """
    os.fsync(fd)
    os.utime(fd, (time.time(), mtime))
    # Into a checked folder on another filesystem no rename can work, and one tried by
    # path would follow a folder swapped for a symlink (to the partials' filesystem,
    # outside the share): copy relative to the descriptor at once.
    if across is None:
        across = folder_fd is not None and os.fstat(folder_fd).st_dev != os.fstat(fd).st_dev
    published: os.stat_result | None = None
    if not across:
        try:
            if folder_fd is None:
                os.replace(partial, final)
            else:
                os.replace(partial, os.path.basename(final), dst_dir_fd=folder_fd)
            published = os.fstat(fd)  # after the rename: its ctime moved with it
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
    if published is None:
        published = _publish_by_copy(fd, final, staging_dir, folder_fd)
        os.unlink(partial)
    if sync_folder:
        fsync_dir(fd_path(folder_fd) if folder_fd is not None else os.path.dirname(final))
    return published


def _publish_by_copy(fd: int, final: str, staging_dir: str, folder_fd: int | None
                     ) -> os.stat_result:
    name = f"{STAGED_PREFIX}{uuid.uuid4().hex}"
    staged = os.path.join(os.path.dirname(final), name)  # the note needs a lasting path
    note = os.path.join(staging_dir, name)
    with open(note, "w", encoding="utf-8", errors="surrogateescape") as record:
        record.write(staged)
        record.flush()
        os.fsync(record.fileno())
    fsync_dir(staging_dir)  # the note must outlive a power cut that the copy survives
    # Relative to the checked folder when there is one; by path otherwise.
    here = {"dir_fd": folder_fd} if folder_fd is not None else {}
    source_name = name if folder_fd is not None else staged
    final_name = os.path.basename(final) if folder_fd is not None else final
    try:
        out = os.open(source_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                      | os.O_CLOEXEC, 0o600, **here)
        with open(out, "wb") as target:
            os.lseek(fd, 0, os.SEEK_SET)
            with os.fdopen(os.dup(fd), "rb") as source:
                shutil.copyfileobj(source, target, COPY_CHUNK)
            target.flush()
            done = os.fstat(fd)
            os.utime(target.fileno(), ns=(done.st_atime_ns, done.st_mtime_ns))
            os.fsync(target.fileno())
        os.replace(source_name, final_name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(source_name, **here)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(note)
    # By name, as it is now (the rename moved its ctime); the descriptor is closed.
    return os.stat(final_name, dir_fd=folder_fd, follow_symlinks=False)


def remove_leftover_staging(staging_dir: str) -> int:
    """Delete staged copies that a crash or an interrupted shutdown left in the share."""
    removed = 0
    with os.scandir(staging_dir) as scan:
        notes = [entry.path for entry in scan if entry.name.startswith(STAGED_PREFIX)]
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
            log.warning("could not clean a staged copy: %s", exc)
    return removed
