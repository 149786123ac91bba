"""Turning a client's name into a real path under the share's root, refusing escapes.

The name rules themselves (which names a client may use) are the protocol's,
in common/protocol/names.py; this file follows symlinks on the server's disk.
"""

from __future__ import annotations

import os
import stat

from common.protocol.errors import BadPath
from common.protocol.names import is_within


def resolve_under(root_real: str, parts: tuple[str, ...]) -> str:
    """Return the real absolute path of ``parts`` under the root, refusing escapes.

    Symlinks are followed; a result outside ``root_real`` raises BadPath. The
    last component need not exist (a new upload); its parent is resolved instead.
    """
    real = _real_beneath(root_real, parts)
    if not is_within(root_real, real):
        raise BadPath("path leaves the shared folder")
    return real


def _real_beneath(root_real: str, parts: tuple[str, ...]) -> str:
    """``os.path.realpath`` of ``parts`` under ``root_real``, which is real already.

    Only the parts are looked at, one lstat each; realpath itself (which re-checks
    every component from ``/``) runs only when one of them is a symlink. Past a part
    that cannot be looked at (missing), realpath keeps the rest as named, and so
    does this.
    """
    path = root_real
    for part in parts:
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return os.path.join(root_real, *parts)
        if stat.S_ISLNK(mode):
            return os.path.realpath(os.path.join(root_real, *parts))
    return path
