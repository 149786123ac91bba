"""Remote names: what a user typed turned into a protocol name, and a name's last part.

Both check the protocol's name rules (common/protocol/names.py), so the client
trusts neither a user's nor a server's names further than the server would.
"""

from __future__ import annotations

from common.protocol.names import check_component, split_path


def normalize_remote(path: str, *, allow_root: bool = False) -> str:
    """Turn what a user typed into a protocol name: drop leading and trailing slashes, check it."""
    name = path.strip("/")
    split_path(name, allow_root=allow_root)
    return name


def remote_basename(remote: str) -> str:
    """The last component of a remote name, checked against the path rules."""
    return check_component(remote.rstrip("/").rsplit("/", 1)[-1])
