"""Where the CLI gets a password: the FTCLIENT_PASSWORD variable, else a prompt on a terminal.

Never from a command-line flag (other users could read it in the process list).
"""

from __future__ import annotations

import getpass
import os
import sys

PASSWORD_ENV = "FTCLIENT_PASSWORD"


class NoPassword(Exception):
    """No password could be had without a terminal."""


def password_for(user: str, host: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password is not None:
        return password
    if not sys.stdin.isatty():
        raise NoPassword(f"no password for {user!r}: set {PASSWORD_ENV} or run on a terminal")
    return getpass.getpass(f"Password for {user}@{host}: ")
