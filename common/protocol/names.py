"""Path rules: which names a client may use, and whether one real path lies within another.

Both sides apply the same rules: the server to every name a client sends, the
client to every name a server sends back. A name is a relative, "/"-separated
path. It is refused if any component is empty, ``.`` or ``..``, holds a
backslash, NUL or another control character, is longer than 255 bytes, starts
with the reserved ``.ft-`` prefix, or looks like a drive letter (``C:``), which
would escape a destination folder on Windows. Following symlinks on the server's
disk is the server's job (ftserver/store/names.py); nothing here touches a file.
"""

from __future__ import annotations

import os
import re

from common.protocol.errors import BadPath

MAX_PATH_BYTES = 4096


MAX_COMPONENT_BYTES = 255


MAX_FOLDER_DEPTH = 256
"""How deep folders are made: by the server for a client (deeper ones made on its disk
still work), and by the client for a ``get -r``."""


RESERVED_PREFIX = ".ft-"
"""Names the server keeps for itself (temporary files); never listed or served."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


_DRIVE = re.compile(r"^[A-Za-z]:")


def check_component(name: str) -> str:
    """Validate one path component (a file or folder name); return it unchanged."""
    if not isinstance(name, str):
        raise BadPath("a name must be a string")
    if name in ("", ".", ".."):
        raise BadPath(f"{name!r} is not allowed as a name")
    if "/" in name or "\\" in name:
        raise BadPath(f"name {name!r} must not contain a slash or backslash")
    if _CONTROL.search(name):
        raise BadPath(f"name {name!r} must not contain control characters")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise BadPath(f"name {name!r} is not valid Unicode") from None
    if len(encoded) > MAX_COMPONENT_BYTES:
        raise BadPath(f"a name is longer than {MAX_COMPONENT_BYTES} bytes")
    if _DRIVE.match(name):
        raise BadPath(f"name {name!r} looks like a drive letter")
    if name.startswith(RESERVED_PREFIX):
        raise BadPath(f"names starting with {RESERVED_PREFIX!r} are reserved")
    return name


def split_path(path: str, *, allow_root: bool = False) -> tuple[str, ...]:
    """Validate a relative path and return its components.

    ``allow_root`` accepts the empty string as the root folder itself (for ``ls``).
    """
    if not isinstance(path, str):
        raise BadPath("a path must be a string")
    if path == "":
        if allow_root:
            return ()
        raise BadPath("an empty path names no file")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise BadPath(f"path is longer than {MAX_PATH_BYTES} bytes")
    if path.startswith("/") or _DRIVE.match(path):
        raise BadPath(f"path {path!r} must be relative")
    parts = tuple(path.split("/"))
    for part in parts:
        check_component(part)
    return parts


def join_path(parts: tuple[str, ...] | list[str]) -> str:
    return "/".join(parts)


def is_within(root_real: str, candidate_real: str) -> bool:
    """True if ``candidate_real`` is ``root_real`` or below it (both already realpath'd).

    Compares whole components, so ``/srv/share2`` is not inside ``/srv/share``.
    """
    if candidate_real == root_real:
        return True
    prefix = root_real if root_real.endswith(os.sep) else root_real + os.sep
    return candidate_real.startswith(prefix)
