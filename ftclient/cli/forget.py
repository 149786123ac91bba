"""``ftclient forget HOST[:PORT]``: drop a server's pinned certificate (as ``ssh-keygen -R``).

Terminal side of ftclient/trust.py's ``forget``. A pinned server is taken to be a TLS
server, so forgetting is also how a user says a server no longer speaks TLS, or that
its certificate was replaced on purpose (the next connection then pins the new one,
with ``--fingerprint`` or ``--accept-new``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ftclient.cli.util import safe
from ftclient.trust import forget, server_key

EXIT_OK, EXIT_FAILED = 0, 1


def add_forget_command(commands: Any) -> None:
    parser = commands.add_parser(
        "forget", help="forget a server's pinned certificate",
        description="Remove the pin of HOST[:PORT] from the pinned servers (as ssh-keygen "
                    "-R). The next TLS connection to it needs --fingerprint or --accept-new "
                    "again; until then it is no longer taken to be a TLS server.",
        epilog="examples:\n  ftclient forget fileserver\n  ftclient forget 10.0.0.5:9021",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", metavar="HOST[:PORT]")


def run_forget(args: argparse.Namespace, host: str, port: int) -> int:
    pinned = forget(host, port)
    key = server_key(host, port)
    if pinned is None:
        print(f"ftclient: forget: {safe(key)} has no pinned certificate", file=sys.stderr)
        return EXIT_FAILED
    if not getattr(args, "quiet", False):
        print(f"forgot {safe(key)} (its pin was {pinned})", file=sys.stderr)
    return EXIT_OK
