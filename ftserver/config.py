"""Server settings: one frozen ServerConfig built from YAML plus command-line overrides.

Every key is checked (unknown keys, wrong types, impossible values) and a
problem raises ConfigError with one sentence naming the key; the CLI prints it
and exits. Nothing else in the server reads YAML or the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from common.io.ratelimit import RateError, parse_rate
from common.protocol.discovery import DEFAULT_DISCOVERY_PORT
from ftserver.securityconfig import (
    SecuritySettingError,
    TlsSettings,
    UserAccount,
    parse_anonymous,
    parse_tls,
    parse_users,
)

EXECUTORS = ("thread", "process")
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """A setting is wrong; the message names the key."""


@dataclass(frozen=True)
class Limits:
    """Bounds that keep one client or one address from starving the rest."""

    sessions_per_worker: int = 16
    max_per_address: int = 32
    handshake_timeout: float = 10.0
    idle_timeout: float = 300.0
    transfer_timeout: float = 60.0
    min_free_bytes: int = 64 * 1024 * 1024
    rate: int = 0
    """Bytes/s each connection may move, each way (0: no limit); YAML takes 10M, 512K..."""
    total_rate: int = 0
    """Bytes/s all connections together may move, each way (0: no limit)."""
    auth_failure_delay: float = 1.0
    """Seconds every failed login waits before its answer; more after repeated failures."""
    lock_wait: float = 2.0
    """Seconds a put or mkdir waits for a name another upload holds before "locked"."""
    folder_wait: float = 10.0
    """Seconds an upload or mkdir waits for a folder move or removal (quick) to finish."""
    folder_busy_wait: float = 2.0
    """Seconds a folder move or removal waits for the uploads beneath it before "locked"."""


@dataclass(frozen=True)
class Discovery:
    """The UDP responder that lets ``ftclient discover`` find this server."""

    enabled: bool = True
    port: int = DEFAULT_DISCOVERY_PORT


@dataclass(frozen=True)
class HttpSettings:
    """HTTP and HTTPS on ft's own port, for browsers, curl and wget (ftserver/http/)."""

    enabled: bool = True


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "ftserver"


DEFAULT_ROOT = Path("ft-share")
"""Shared when no root is configured; created on first start (a configured root must exist)."""


@dataclass(frozen=True)
class ServerConfig:
    root: Path | None = None
    host: str = "0.0.0.0"
    port: int = 9021
    state_dir: Path = field(default_factory=default_state_dir)
    executor: str = "thread"
    workers: int = 4
    name: str = "ft"
    log_level: str = "info"
    partial_ttl: float = 7 * 24 * 3600.0
    partial_max_bytes: int = 20 * 1024**3
    """Total bytes of partial uploads kept; beyond it the oldest not in use go (0: no cap)."""
    log_file: Path | None = None
    """Where log lines go (appended; reopened when logrotate moves it); None: stderr."""
    shutdown_grace: float = 10.0
    limits: Limits = field(default_factory=Limits)
    discovery: Discovery = field(default_factory=Discovery)
    http: HttpSettings = field(default_factory=HttpSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    users: tuple[UserAccount, ...] = ()
    anonymous: str | None = None
    """"none", "ro" or "rw"; None means rw without users and none with some."""

    @property
    def anonymous_access(self) -> str:
        if self.anonymous is not None:
            return self.anonymous
        return "none" if self.users else "rw"

    @property
    def max_sessions(self) -> int:
        """Connections served at once, over all workers."""
        return self.workers * self.limits.sessions_per_worker


_NUMBER = (int, float)
RATE_SETTINGS = frozenset({"rate", "total_rate"})


def _check_type(key: str, value: Any, expected: type | tuple[type, ...]) -> None:
    wanted = expected if isinstance(expected, tuple) else (expected,)
    if isinstance(value, bool) and bool not in wanted:
        ok = False
    else:
        ok = isinstance(value, wanted)
    if not ok:
        names = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in wanted)
        raise ConfigError(f"config key {key!r}: expected {names}, got {value!r}")


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               dict: "a mapping"}


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in known or known[key].name.startswith("_"):
            raise ConfigError(f"config key {full!r} is not a known setting")
        if cls is ServerConfig and key in _SECURITY_PARSERS:
            try:
                values[key] = _SECURITY_PARSERS[key](value)
            except SecuritySettingError as exc:
                raise ConfigError(str(exc)) from None
            continue
        default = getattr(cls(), key)
        if key in ("root", "log_file") or isinstance(default, Path):
            _check_type(full, value, str)
            values[key] = Path(os.path.expanduser(value))
        elif key in RATE_SETTINGS:
            try:
                values[key] = parse_rate(value)
            except RateError as exc:
                raise ConfigError(f"config key {full!r}: {exc}") from None
        elif isinstance(default, (Discovery, Limits, HttpSettings)):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {full!r}: expected a mapping")
            values[key] = _build(type(default), value, f"{full}.")
        elif isinstance(default, float):
            _check_type(full, value, _NUMBER)
            values[key] = float(value)
        else:
            _check_type(full, value, type(default))
            values[key] = value
    return cls(**values)


_SECURITY_PARSERS = {"tls": parse_tls, "users": parse_users, "anonymous": parse_anonymous}


def _validate(config: ServerConfig) -> ServerConfig:
    if config.executor not in EXECUTORS:
        raise ConfigError(f"config key 'executor': expected 'thread' or 'process', "
                          f"got {config.executor!r}")
    if config.log_level not in LOG_LEVELS:
        raise ConfigError(f"config key 'log_level': expected one of {', '.join(LOG_LEVELS)}")
    if not 1 <= config.workers <= 256:
        raise ConfigError("config key 'workers': expected 1 to 256")
    if not 0 <= config.port <= 65535:
        raise ConfigError("config key 'port': expected 0 to 65535")
    limits = config.limits
    for key in ("sessions_per_worker", "max_per_address"):
        if getattr(limits, key) < 1:
            raise ConfigError(f"config key 'limits.{key}': expected at least 1")
    for key in ("handshake_timeout", "idle_timeout", "transfer_timeout"):
        if getattr(limits, key) <= 0:
            raise ConfigError(f"config key 'limits.{key}': expected a positive number")
    for key in ("lock_wait", "folder_wait", "folder_busy_wait"):
        if not 0 <= getattr(limits, key) <= 3600:
            raise ConfigError(f"config key 'limits.{key}': expected 0 to 3600 seconds")
    if not 1 <= config.discovery.port <= 65535:
        raise ConfigError("config key 'discovery.port': expected 1 to 65535")
    if limits.auth_failure_delay < 0:
        raise ConfigError("config key 'limits.auth_failure_delay': expected 0 or more")
    if limits.min_free_bytes < 0:
        raise ConfigError("config key 'limits.min_free_bytes': expected 0 or more")
    if config.partial_max_bytes < 0:
        raise ConfigError("config key 'partial_max_bytes': expected 0 (no cap) or more")
    for key in ("partial_ttl", "shutdown_grace"):
        if getattr(config, key) < 0:
            raise ConfigError(f"config key {key!r}: expected 0 or more")
    return config


def _where(exc: yaml.YAMLError) -> str:
    """", line L column C" where the YAML parser stopped, if it says (1-based)."""
    mark = getattr(exc, "problem_mark", None)
    if mark is None:
        return ""
    return f", line {mark.line + 1} column {mark.column + 1}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem) if problem else str(exc).splitlines()[0]


def load_config(path: str | os.PathLike[str] | None, **overrides: Any) -> ServerConfig:
    """Read YAML at ``path`` (None: built-in defaults), apply non-None overrides, validate."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as stream:
                loaded = yaml.safe_load(stream)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {os.fspath(path)!r}: "
                              f"{exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {os.fspath(path)!r} is not valid YAML"
                              f"{_where(exc)}: {_yaml_problem(exc)}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {os.fspath(path)!r} must hold a mapping of settings")
        data = dict(loaded)
    config = _build(ServerConfig, data, "")
    cleaned = {key: value for key, value in overrides.items() if value is not None}
    for key in ("root", "state_dir", "log_file"):
        if key in cleaned:
            cleaned[key] = Path(os.path.expanduser(cleaned[key]))
    config = replace(config, **cleaned)
    return _validate(config)


def prepare_directories(config: ServerConfig) -> ServerConfig:
    """Check that the root exists (creating the built-in default one) and make state_dir.

    Returns the config with both paths made absolute.
    """
    root = (config.root or DEFAULT_ROOT).absolute()
    if not root.exists():
        if config.root is not None:
            raise ConfigError(f"config key 'root': folder {str(root)!r} does not exist")
        root.mkdir(parents=True)
    if not root.is_dir():
        raise ConfigError(f"config key 'root': {str(root)!r} is not a folder")
    state_dir = config.state_dir.absolute()
    _refuse_state_in_share(root, state_dir)  # before anything is made in the share
    try:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise ConfigError(f"config key 'state_dir': cannot create {str(state_dir)!r}: "
                          f"{exc.strerror or exc}") from None
    _refuse_state_in_share(root, state_dir)  # as made (a symlink on the way may lead in)
    log_file = None if config.log_file is None else config.log_file.absolute()
    return replace(config, root=root, state_dir=state_dir, log_file=log_file)


def _refuse_state_in_share(root: Path, state_dir: Path) -> None:
    root_real = os.path.realpath(root)
    state_real = os.path.realpath(state_dir)  # the part that does not exist yet as written
    if state_real == root_real or state_real.startswith(root_real + os.sep):
        raise ConfigError("config key 'state_dir': must not be inside the shared folder")
