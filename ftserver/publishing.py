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

from common.durable import fsync_dir
from common.paths import RESERVED_PREFIX

log = logging.getLogger("ftserver.publishing")

STAGED_PREFIX = f"{RESERVED_PREFIX}tmp-"
COPY_CHUNK = 1 << 20


def publish(partial: str, fd: int, final: str, mtime: float, staging_dir: str) -> None:
    """Move the verified partial (open as ``fd``) to ``final``, durably and atomically."""
    folder = os.path.dirname(final)
    os.fsync(fd)
    os.utime(fd, (time.time(), mtime))
    try:
        os.replace(partial, final)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _publish_by_copy(partial, fd, final, staging_dir)
        os.unlink(partial)
    fsync_dir(folder)


def _publish_by_copy(partial: str, fd: int, final: str, staging_dir: str) -> None:
    staged = os.path.join(os.path.dirname(final), f"{STAGED_PREFIX}{uuid.uuid4().hex}")
    note = os.path.join(staging_dir, os.path.basename(staged))
    with open(note, "w", encoding="utf-8", errors="surrogateescape") as record:
        record.write(staged)
        record.flush()
        os.fsync(record.fileno())
    fsync_dir(staging_dir)  # the note must outlive a power cut that the copy survives
    try:
        with open(staged, "wb") as target:
            os.lseek(fd, 0, os.SEEK_SET)
            with os.fdopen(os.dup(fd), "rb") as source:
                shutil.copyfileobj(source, target, COPY_CHUNK)
            target.flush()
            os.fsync(target.fileno())
        shutil.copystat(partial, staged)
        os.replace(staged, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(note)


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
