"""Which TLS servers this user trusts: pinned certificate fingerprints, as ssh's known_hosts.

Pins live in ``$XDG_CONFIG_HOME/ftclient/known_servers`` (default
``~/.config``), one ``HOST:PORT SHA256HEX`` line per server. ``check_server``
decides, from the fingerprint the server just presented, whether the client
may go on: an explicit ``--fingerprint`` must match (and is pinned if the
server had no pin yet); a pinned server must
match its pin (always, even with accept_new); an unknown server is pinned only
with accept_new. Refusals raise ``Untrusted`` with the fingerprint seen and
what to do. Nothing is sent to the server before this check passes.

A pinned server is a TLS server: the CLI connects to it with TLS even without
``--tls`` (``is_pinned``). A ``--fingerprint`` that differs from a pin lets that one
connection go on (the user checked it by hand) but replaces the pin only when the
user asks, with ``ftclient forget HOST[:PORT]`` (``forget``) first.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from common.protocol.errors import Untrusted

FILE_NAME = "known_servers"


def default_known_servers() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(Path.home(), ".config")
    return Path(base) / "ftclient" / FILE_NAME


def server_key(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def read_pins(path: Path) -> dict[str, str]:
    """The pinned fingerprints by ``HOST:PORT``; lines that make no sense are skipped."""
    pins: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return pins
    except (OSError, UnicodeDecodeError) as exc:
        raise Untrusted(f"cannot read the pinned servers in {str(path)!r}: {exc}") from None
    from common.io.tls import normalize_fingerprint  # (ssl: read only for a TLS connection)

    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and not line.startswith("#"):
            fingerprint = normalize_fingerprint(fields[1])
            if fingerprint is not None:
                pins[fields[0]] = fingerprint
    return pins


def add_pin(path: Path, key: str, fingerprint: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    with contextlib.closing(os.fdopen(fd, "a", encoding="utf-8")) as stream:
        stream.write(f"{key} {fingerprint}\n")
        stream.flush()
        os.fsync(stream.fileno())


def is_pinned(host: str, port: int, path: Path | None = None) -> bool:
    """Whether this server has a pin (one stat when nothing was ever pinned)."""
    path = path or default_known_servers()
    if not path.exists():
        return False
    try:
        return server_key(host, port) in read_pins(path)
    except Untrusted:
        return False


def forget(host: str, port: int, path: Path | None = None) -> str | None:
    """Remove the pin of ``host:port``; the fingerprint it had, or None if it had none.
    The file is written anew beside itself and renamed over, so a crash keeps the old."""
    path = path or default_known_servers()
    key = server_key(host, port)
    pinned = read_pins(path).get(key)
    if pinned is None:
        return None
    kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
            if not (len(line.split()) == 2 and line.split()[0] == key)]
    fresh = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with contextlib.closing(os.fdopen(fd, "w", encoding="utf-8")) as stream:
        stream.writelines(kept)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(fresh, path)
    return pinned


def check_server(seen: str, host: str, port: int, *, pinned_by_flag: str | None,
                 accept_new: bool, known_servers: Path) -> None:
    """Return if the server that presented ``seen`` may be talked to; raise Untrusted if not."""
    key = server_key(host, port)
    if pinned_by_flag is not None:
        if seen != pinned_by_flag:
            raise Untrusted(f"{key} presented certificate fingerprint {seen}, not the "
                            f"{pinned_by_flag} given with --fingerprint; nothing was sent")
        if key not in read_pins(known_servers):
            add_pin(known_servers, key, seen)  # verified by hand: later runs need no flag
        return
    pinned = read_pins(known_servers).get(key)
    if pinned is not None:
        if seen != pinned:
            raise Untrusted(
                f"WARNING: the certificate of {key} has CHANGED (now {seen}, pinned "
                f"{pinned}): someone may be impersonating the server; nothing was sent. "
                f"If the server's certificate was replaced on purpose (check with its "
                f"administrator: `ftserver fingerprint`), remove the line for {key} "
                f"from {known_servers} (`ftclient forget {key}` does it) and connect again")
        return
    if not accept_new:
        raise Untrusted(
            f"{key} is not a known server; its certificate fingerprint is {seen}. If the "
            f"server's administrator confirms it (`ftserver fingerprint`), connect with "
            f"--fingerprint {seen}, or with --accept-new to pin it on first use")
    add_pin(known_servers, key, seen)
