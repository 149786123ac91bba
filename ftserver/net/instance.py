"""One server per state folder: the locks that keep two servers, or a dead server's
leftover workers, from sharing partials, name locks and staged copies.

The listener holds ``state_dir/listener.lock`` exclusively for its lifetime; a
second server on the same state folder refuses to start. Every process that
runs sessions holds ``state_dir/sessions.lock`` shared. Start-up cleanup of
what earlier runs left behind happens only when that lock can be had
exclusively, that is when no session of any earlier run is still alive.
"""

from __future__ import annotations

import fcntl
import os


class StateDirBusy(Exception):
    """Another ftserver is using this state folder."""


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def hold_listener_lock(state_dir: str) -> int:
    """Lock the state folder for this listener; the returned fd must stay open."""
    fd = _open(os.path.join(state_dir, "listener.lock"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StateDirBusy(
            f"another ftserver is already using the state folder {state_dir}") from None
    return fd


def hold_sessions_lock(state_dir: str) -> int:
    """Mark this process as running sessions (shared); the fd must stay open."""
    fd = _open(os.path.join(state_dir, "sessions.lock"))
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def no_sessions_alive(state_dir: str) -> bool:
    """True if no process (of any run) holds the sessions lock right now."""
    fd = _open(os.path.join(state_dir, "sessions.lock"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases the lock
    return True
