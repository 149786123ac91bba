"""Client settings from the config file and the environment, as defaults for the CLI's options.

``$XDG_CONFIG_HOME/ftclient/config.yaml`` (default ``~/.config/ftclient/config.yaml``)
holds settings for every run at its top level and named profiles under
``profiles:``; ``--profile NAME`` (or ``$FTCLIENT_PROFILE``) picks one. Each key is
the name of a long option of ``ftclient`` without its dashes (``server``,
``limit-rate`` or ``limit_rate``, ``timeout``...), and every option is also read
from ``$FTCLIENT_<OPTION>`` (``FTCLIENT_SERVER``, ``FTCLIENT_LIMIT_RATE``...).
Precedence, highest first: flags, environment, the chosen profile, the file's
top level, built-in defaults.

The mapping is generic: it reads the option table of the argparse parser it is
given, so an option added to the CLI works in profiles and the environment with
no change here. Values go through the option's own ``type`` and ``choices``.
Anything wrong raises ``ProfileError`` with one line naming the file (or
variable) and the key; the CLI prints it and exits 2. Prints nothing itself.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PROFILE_ENV = "FTCLIENT_PROFILE"
ENV_PREFIX = "FTCLIENT_"
PROFILES_KEY = "profiles"
NOT_SETTABLE = frozenset({"help", "version", "profile"})
"""Options that make no sense as a stored default."""
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})

Option = tuple[argparse.ArgumentParser, argparse.Action]


class ProfileError(Exception):
    """A setting in the config file or environment is wrong; one line says which and why."""


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "ftclient" / "config.yaml"


def profile_flag(argv: Sequence[str]) -> str | None:
    """The value of ``--profile`` in ``argv``, found before the real parse needs it."""
    early = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    early.add_argument("--profile")
    known, _ = early.parse_known_args(list(argv))
    return known.profile


def requested_profile(argv: Sequence[str], environ: Mapping[str, str] = os.environ
                      ) -> str | None:
    """The profile named by ``--profile`` in ``argv``, else by ``$FTCLIENT_PROFILE``."""
    return profile_flag(argv) or environ.get(PROFILE_ENV) or None


def confirm_profile(parsed: str | None, argv: Sequence[str]) -> None:
    """Refuse an abbreviated ``--prof NAME``: its settings were not read before parsing."""
    if parsed != profile_flag(argv):
        raise ProfileError("write --profile in full (its settings are read before the "
                           "other options)")


def load_layers(path: Path, profile: str | None) -> list[tuple[str, dict[str, Any]]]:
    """The file's top-level settings, then the chosen profile's; each with where it is."""
    data = _read(path, required=profile is not None)
    profiles = data.pop(PROFILES_KEY, None) or {}
    if not isinstance(profiles, dict):
        raise ProfileError(f"config file {path}: {PROFILES_KEY!r} must be a mapping of "
                           "profile names to settings")
    layers = [(f"config file {path}", data)]
    if profile is not None:
        chosen = profiles.get(profile)
        if chosen is None:
            names = ", ".join(sorted(map(str, profiles))) or "none"
            raise ProfileError(f"config file {path} has no profile {profile!r} "
                               f"(profiles: {names})")
        if not isinstance(chosen, dict):
            raise ProfileError(f"config file {path}: profile {profile!r} must be a mapping "
                               "of settings")
        layers.append((f"config file {path}, profile {profile!r}", chosen))
    return layers


def apply_settings(parser: argparse.ArgumentParser, argv: Sequence[str],
                   environ: Mapping[str, str] = os.environ) -> None:
    """Make the config file's and the environment's values the defaults of ``parser``."""
    options = long_options(parser)
    path = config_path(environ)
    for where, settings in load_layers(path, requested_profile(argv, environ)):
        for key, value in settings.items():
            name = str(key).replace("_", "-")
            if name not in options or name in NOT_SETTABLE:
                raise ProfileError(f"{where}: unknown setting {key!r} (settings are "
                                   "ftclient's long options, such as server or timeout)")
            _set_default(options[name], value, f"{where}: setting {key!r}")
    for name, option in options.items():
        variable = ENV_PREFIX + name.upper().replace("-", "_")
        if name not in NOT_SETTABLE and variable in environ:
            _set_default(option, _from_env(option[0][1], environ[variable], variable),
                         f"environment variable {variable}")


def long_options(parser: argparse.ArgumentParser) -> dict[str, list[Option]]:
    """Every ``--name`` option of the parser and of each subcommand that has it, by name.

    An option the main parser has is set there only: a subcommand's default would
    override what the user typed before the subcommand.
    """
    main = _options_of(parser)
    found = {name: [option] for name, option in main.items()}
    for action in parser._actions:  # argparse keeps its option table here
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                for name, option in _options_of(subparser).items():
                    if name not in main:
                        found.setdefault(name, []).append(option)
    return found


def _options_of(parser: argparse.ArgumentParser) -> dict[str, Option]:
    return {text[2:]: (parser, action) for action in parser._actions
            for text in action.option_strings if text.startswith("--")}


def _read(path: Path, required: bool) -> dict[str, Any]:
    """The file's settings; yaml is imported only when there is a file to read (most
    runs have none, and the import is a tenth of the CLI's start-up)."""
    try:
        with open(path, encoding="utf-8") as stream:
            import yaml

            try:
                loaded = yaml.safe_load(stream)
            except yaml.YAMLError as exc:
                raise ProfileError(f"config file {path} is not valid YAML: "
                                   f"{str(exc).splitlines()[0]}") from None
    except FileNotFoundError:
        if required:
            raise ProfileError(f"config file {path} does not exist, so it has no "
                               "profiles") from None
        return {}
    except OSError as exc:
        raise ProfileError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ProfileError(f"config file {path} must hold a mapping of settings")
    return loaded


def _from_env(action: argparse.Action, text: str, variable: str) -> Any:
    """An environment string as the YAML value it stands for (flags take yes/no, 1/0...)."""
    if action.nargs == 0:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ProfileError(f"environment variable {variable}: expected 1 or 0, "
                           f"got {text!r}")
    return text


def _set_default(options: list[Option], value: Any, where: str) -> None:
    for parser, action in options:
        converted = _convert(action, value, where)
        if action.default is argparse.SUPPRESS:
            # An option shared with the subcommands through ``parents`` (such as -q) is
            # one Action object in several parsers: changing its default would let the
            # subcommand's default undo a flag typed before it. A parser-level default
            # applies only where the flag was not given.
            parser._defaults[action.dest] = converted
        else:
            parser.set_defaults(**{action.dest: converted})


def _convert(action: argparse.Action, value: Any, where: str) -> Any:
    if action.nargs == 0:  # a flag: store_true, store_false, --x/--no-x
        if type(value) is not bool:
            raise ProfileError(f"{where}: expected true or false, got {value!r}")
        if isinstance(action, argparse.BooleanOptionalAction) or action.const is None:
            return value
        return action.const if value else not action.const
    if action.nargs not in (None, "?"):
        raise ProfileError(f"{where}: this option cannot be set in a profile")
    if isinstance(value, bool | dict | list) or value is None:
        raise ProfileError(f"{where}: expected a single value, got {value!r}")
    text = str(value)
    try:
        converted = action.type(text) if callable(action.type) else text
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise ProfileError(f"{where}: {exc}") from None
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise ProfileError(f"{where}: expected one of {choices}, got {value!r}")
    return converted
