"""``ftserver fingerprint`` and ``ftserver passwd``: the administrator's two security helpers.

``fingerprint`` prints the SHA-256 fingerprint of the server's TLS certificate
(creating the self-signed one if the config uses it and it does not exist yet),
as the last token of its output, for clients to pin. ``passwd --stdin`` reads a
password from stdin and prints only its salted SCRAM-SHA-256 verifier, to paste
into ``users.NAME.password``; the password itself is never printed or stored.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from common.protocol.scram import DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS, make_verifier
from ftserver.config import ConfigError, load_config, prepare_directories
from ftserver.net.tlscert import certificate_fingerprint, ensure_certificate

COMMANDS = ("fingerprint", "passwd")
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftserver", description="ftserver helper commands.")
    commands = parser.add_subparsers(dest="command", required=True)
    fingerprint = commands.add_parser(
        "fingerprint", help="print the TLS certificate's SHA-256 fingerprint",
        epilog="example:\n  ftserver fingerprint --config /etc/ftserver.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    fingerprint.add_argument("--config", metavar="PATH", help="YAML settings file")
    fingerprint.add_argument("--state-dir", metavar="DIR", help="override state_dir")
    passwd = commands.add_parser(
        "passwd", help="turn a password into a verifier for users.NAME.password",
        epilog="example:\n  printf '%s' \"$PASSWORD\" | ftserver passwd --stdin",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    passwd.add_argument("--stdin", action="store_true",
                        help="read the password from stdin (one line) instead of prompting")
    passwd.add_argument("--iterations", type=int, default=DEFAULT_ITERATIONS,
                        help=f"PBKDF2 iterations (default {DEFAULT_ITERATIONS})")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "fingerprint":
        return _fingerprint(args)
    return _passwd(args)


def _fingerprint(args: argparse.Namespace) -> int:
    try:
        config = prepare_directories(load_config(args.config, state_dir=args.state_dir))
        config = ensure_certificate(config)
        assert config.tls.cert is not None
        fingerprint = certificate_fingerprint(config.tls.cert)
    except ConfigError as exc:
        print(f"ftserver: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if not config.tls.enabled:
        print("ftserver: note: tls.enabled is off in this config; clients will not see "
              "this certificate until it is on", file=sys.stderr)
    print(f"SHA-256 fingerprint: {fingerprint}")
    return 0


def _passwd(args: argparse.Namespace) -> int:
    if not MIN_ITERATIONS <= args.iterations <= MAX_ITERATIONS:
        print(f"ftserver: --iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}",
              file=sys.stderr)
        return EXIT_CONFIG
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("ftserver: the passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("ftserver: an empty password is not allowed", file=sys.stderr)
        return 1
    print(make_verifier(password, iterations=args.iterations).to_text())
    return 0
