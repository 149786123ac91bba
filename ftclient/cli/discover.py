"""``ftclient discover``: the subcommand that lists the ft servers answering on the LAN.

Terminal side of ftclient/discovery.py: builds the subcommand's arguments and
prints what answered, as a table or as JSON, with every text a server sent
escaped. Exit 0 when at least one server answered, 1 when none did.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ftclient.cli.util import safe, seconds_up_to
from ftclient.discovery import DEFAULT_BROADCAST, DEFAULT_DISCOVERY_PORT, FoundServer, discover
from ftclient.trust import server_key

MAX_WAIT = 60.0

EXAMPLES = f"""examples:
  ftclient discover                            ask the local network ({DEFAULT_BROADCAST})
  ftclient discover --broadcast 192.168.1.255  ask one subnet
  ftclient discover --broadcast 10.0.0.5       ask one machine
  ftclient discover --json --timeout 5         for scripts; wait longer
"""


def _udp_port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"not a UDP port: {text!r}")
    return int(text)


def add_discover_command(commands: Any) -> None:
    """Add ``discover`` to the CLI's subcommands (``commands`` is argparse's subparsers)."""
    discover_parser = commands.add_parser(
        "discover", help="find ft servers on the local network",
        description="Broadcast a discovery query over UDP and list every ft server that "
                    "answers: name, address, whether TLS is on, certificate fingerprint.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    discover_parser.add_argument(
        "--broadcast", metavar="ADDR", default=DEFAULT_BROADCAST,
        help=f"where to send the query: a broadcast address or one host "
             f"(default {DEFAULT_BROADCAST})")
    discover_parser.add_argument(
        "--port", type=_udp_port, default=DEFAULT_DISCOVERY_PORT, metavar="P",
        help=f"the servers' discovery UDP port (default {DEFAULT_DISCOVERY_PORT})")
    discover_parser.add_argument(
        "--timeout", dest="wait", type=seconds_up_to(MAX_WAIT), default=2.0, metavar="S",
        help="seconds to wait for answers (default 2)")
    discover_parser.add_argument(
        "--json", action="store_true",
        help="print a JSON list of objects with name, host, port, tls and fingerprint")


def run_discover(args: argparse.Namespace) -> int:
    servers = discover(args.broadcast, args.port, args.wait)
    if args.json:
        print(json.dumps([_as_dict(server) for server in servers], indent=1))
    else:
        for server in servers:
            print(_as_line(server))
    if not servers:
        print(f"ftclient: no server answered on UDP port {args.port} within {args.wait:g} s "
              f"(query sent to {safe(args.broadcast)})", file=sys.stderr)
        return 1
    return 0


def _as_dict(server: FoundServer) -> dict[str, Any]:
    return {"name": server.name, "host": server.host, "port": server.port, "tls": server.tls,
            "fingerprint": server.fingerprint}


def _as_line(server: FoundServer) -> str:
    address = server_key(server.host, server.port)
    security = "tls" if server.tls else "plain"
    return (f"{safe(server.name):<24} {address:<22} {security:<5} "
            f"{server.fingerprint or '-'}")
