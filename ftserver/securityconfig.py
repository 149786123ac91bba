"""The security settings of ServerConfig: ``tls``, ``users`` and ``anonymous``, parsed and checked.

Kept apart from config.py so that the general settings stay small; config.py
calls ``parse_tls`` and ``parse_users`` for those keys. Problems raise
SecuritySettingError with one sentence naming the key (config.py turns it into
its ConfigError). No file is read or written here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.protocol.names import split_path
from common.protocol.scram import USER_NAME, Verifier, parse_verifier

ACCESS_LEVELS = ("none", "ro", "rw")


class SecuritySettingError(Exception):
    """A security setting is wrong; the message names the key."""


@dataclass(frozen=True)
class TlsSettings:
    enabled: bool = False
    cert: Path | None = None
    """PEM certificate; with ``key`` unset too, one is generated in state_dir."""
    key: Path | None = None


@dataclass(frozen=True)
class UserAccount:
    name: str
    verifier: Verifier
    access: str  # "ro" or "rw"
    home: str = ""
    """Protocol name of the folder this user is confined to ("" is the whole share)."""


def parse_tls(value: Any) -> TlsSettings:
    if value is None:
        return TlsSettings()
    if not isinstance(value, dict):
        raise SecuritySettingError("config key 'tls': expected a mapping "
                                   "(enabled, cert, key)")
    unknown = set(value) - {"enabled", "cert", "key"}
    if unknown:
        raise SecuritySettingError(f"config key 'tls.{sorted(unknown)[0]}' is not a known setting")
    enabled = value.get("enabled", True)
    if type(enabled) is not bool:
        raise SecuritySettingError("config key 'tls.enabled': expected true or false")
    paths: dict[str, Path | None] = {}
    for key in ("cert", "key"):
        item = value.get(key)
        if item is not None and not isinstance(item, str):
            raise SecuritySettingError(f"config key 'tls.{key}': expected a file path")
        paths[key] = Path(item).expanduser() if item else None
    if (paths["cert"] is None) != (paths["key"] is None):
        raise SecuritySettingError("config keys 'tls.cert' and 'tls.key' go together: "
                                   "give both, or neither to use a generated certificate")
    return TlsSettings(enabled, paths["cert"], paths["key"])


def parse_users(value: Any) -> tuple[UserAccount, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise SecuritySettingError("config key 'users': expected a mapping of user names")
    accounts = []
    for name, entry in value.items():
        key = f"users.{name}"
        if not isinstance(name, str) or not USER_NAME.match(name):
            raise SecuritySettingError(f"config key {key!r}: a user name is 1 to 64 letters, "
                                       "digits, '.', '_' or '-'")
        if not isinstance(entry, dict):
            raise SecuritySettingError(f"config key {key!r}: expected a mapping "
                                       "(password, access, home)")
        unknown = set(entry) - {"password", "access", "home"}
        if unknown:
            raise SecuritySettingError(
                f"config key '{key}.{sorted(unknown)[0]}' is not a known setting")
        password = entry.get("password")
        if not isinstance(password, str):
            raise SecuritySettingError(f"config key '{key}.password': expected the verifier "
                                       "printed by `ftserver passwd --stdin`")
        try:
            verifier = parse_verifier(password)
        except ValueError as exc:
            raise SecuritySettingError(f"config key '{key}.password': {exc}") from None
        access = entry.get("access", "rw")
        if access not in ("ro", "rw"):
            raise SecuritySettingError(f"config key '{key}.access': expected 'ro' or 'rw'")
        home = entry.get("home", "")
        if not isinstance(home, str):
            raise SecuritySettingError(f"config key '{key}.home': expected a folder of the share")
        home = home.strip("/")
        try:
            split_path(home, allow_root=True)
        except Exception:
            raise SecuritySettingError(f"config key '{key}.home': expected a relative folder "
                                       "inside the share, such as 'teams/sales'") from None
        accounts.append(UserAccount(name, verifier, access, home))
    return tuple(accounts)


def parse_anonymous(value: Any) -> str | None:
    if value is None:
        return None
    if value not in ACCESS_LEVELS:
        raise SecuritySettingError("config key 'anonymous': expected 'none', 'ro' or 'rw'")
    return value
