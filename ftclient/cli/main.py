"""``ftclient`` command line: a thin layer over ``Client`` with progress bars and exit codes.

The only module that knows about the terminal: progress bars on stderr (their look,
and tqdm, in bars.py), one clear line per error, control characters escaped before
anything a server sent is printed. Exit codes: 0 success, 1 failed transfer or remote error, 2 usage
error, 130 interrupted (a partial is left for the next run to resume).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from common.io.ratelimit import RateError, parse_rate
from common.protocol.errors import AuthFailed, FtError
from common.protocol.replies import EntryInfo
from common.sizes import human_size
from ftclient import __version__
from ftclient.cli.bars import binary_bar, draws_frames
from ftclient.cli.commands import (
    FILE_COMMANDS,
    add_file_commands,
    print_long_listing,
    run_file_command,
    run_many,
)
from ftclient.cli.completion import add_completion_command, print_script
from ftclient.cli.credentials import PASSWORD_ENV, NoPassword, password_for
from ftclient.cli.discover import add_discover_command, run_discover
from ftclient.cli.forget import add_forget_command, run_forget
from ftclient.cli.profiles import ProfileError, apply_settings, confirm_profile
from ftclient.cli.targets import has_glob, local_kept, remote_kept, target_in_folder
from ftclient.cli.util import UsageError, retry_line, retry_notice, safe, seconds_up_to
from ftclient.client import Client
from ftclient.connection import DEFAULT_PORT, MAX_TIMEOUT
from ftclient.digests import opened_cache
from ftclient.results import Progress
from ftclient.retry import DEFAULT_RETRIES, MAX_RETRIES, RetryNote
from ftclient.trust import is_pinned

if TYPE_CHECKING:
    from ftclient.tree import TreeProgress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SERVER_ENV = "FTCLIENT_SERVER"
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f]")  # the controls json.dumps(ensure_ascii=False) keeps

EXAMPLES = """examples:
  ftclient put bigfile.iso                 upload to the share's top folder
  ftclient put report.pdf reports/         upload into a folder (created if needed)
  ftclient get reports/report.pdf          download into the current folder
  ftclient get reports/report.pdf ~/Desktop/
  ftclient ls reports                      list a folder; --json for scripts
  ftclient put -r photos backup/photos     upload a folder; unchanged files are skipped
  ftclient get -r backup/photos photos     download a folder the same way
  ftclient put a.txt b.txt reports/        several files into a folder
  ftclient mv old.txt archive/old.txt      also: mkdir -p, rm [-r], ls -l
  ftclient --server fileserver:9021 ls     choose the server (or set FTCLIENT_SERVER)
  ftclient discover                        find servers on the LAN
  ftclient --limit-rate 2M put big.iso     at most 2 MiB/s (suffixes K, M, G)
  ftclient --profile office ls             settings from ~/.config/ftclient/config.yaml
  ftclient --tls --accept-new ls           encrypted; pin the server's certificate on first use
  ftclient forget fileserver               drop that pin (a replaced certificate, TLS off)
  ftclient --user alice put report.pdf     log in (password: $FTCLIENT_PASSWORD or a prompt)

An interrupted put or get resumes when you run the same command again; a dropped
connection is retried (--retries, default 3) and resumes by itself.
"""


def parse_server(value: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[IPV6]:PORT``."""
    host, port = value, DEFAULT_PORT
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise UsageError(f"bad server address {value!r}")
        host, rest = value[1:end], value[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"bad server address {value!r}")
            port = _port(rest[1:], value)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = _port(port_text, value)
    if not host:
        raise UsageError(f"bad server address {value!r}: no host")
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"bad port in server address {whole!r}")
    return int(text)


def rate(text: str) -> int:
    """An argparse type: bytes per second, as curl's --limit-rate reads them."""
    try:
        return parse_rate(text)
    except RateError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def retry_count(text: str) -> int:
    """An argparse type: a whole number of retries from 0 to MAX_RETRIES."""
    if not text.isdigit() or int(text) > MAX_RETRIES:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_RETRIES}, not {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                       help="no progress bars or summary lines")
    quiet.add_argument("--retries", type=retry_count, default=argparse.SUPPRESS, metavar="N",
                       help=f"retry N times after a lost connection, a timeout or a server "
                            f"shutting down; transfers resume each time, and rm, mv and "
                            f"mkdir without -p are retried only until sent "
                            f"(default {DEFAULT_RETRIES}; 0: fail at the first error)")
    parser = SuggestingParser(
        prog="ftclient", parents=[quiet],
        description="Put, get and list files on an ft server: resumable, verified by SHA-256.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--server", metavar="HOST[:PORT]",
                        help=f"server address (default: ${SERVER_ENV} or localhost:{DEFAULT_PORT})")
    parser.add_argument("--timeout", type=seconds_up_to(MAX_TIMEOUT), default=60.0,
                        metavar="SECONDS",
                        help="give up on a silent server after this long (default 60)")
    parser.add_argument("--limit-rate", type=rate, default=0, metavar="RATE",
                        help="move at most RATE bytes/s, e.g. 500K or 10M (default: no limit)")
    parser.add_argument("--profile", metavar="NAME", help="use the named profile of "
                        "~/.config/ftclient/config.yaml (or set FTCLIENT_PROFILE)")
    parser.add_argument("--tls", action="store_true", help="encrypt the connection (never "
                        "falls back to plaintext); trust the server with --accept-new or "
                        "--fingerprint, once; later runs check its pin, and need no --tls "
                        "(ftclient forget HOST undoes it)")
    parser.add_argument("--fingerprint", metavar="HEX", help="trust only the server whose "
                        "certificate has this SHA-256 fingerprint (implies --tls)")
    parser.add_argument("--accept-new", action="store_true", help="pin an unknown server's "
                        "fingerprint on first contact, as ssh does (implies --tls); a changed "
                        "one is still refused")
    parser.add_argument("--user", metavar="NAME", help="log in (password from "
                        f"${PASSWORD_ENV} or a prompt); it never crosses the network")
    parser.add_argument("--version", action="version", version=f"ftclient {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    put = commands.add_parser(
        "put", parents=[quiet], help="upload a file",
        description="Upload LOCAL. REMOTE defaults to the file's name; "
                    "a REMOTE ending in / is a folder.",
        epilog="examples:\n  ftclient put disk.iso\n  ftclient put notes.txt projects/2026/\n"
               "  ftclient put draft.txt final.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    put.add_argument("paths", metavar="LOCAL [LOCAL ...] [REMOTE]", nargs="+",
                     help="one file and its remote name or folder; several files and a "
                          "remote folder; or, with -r, a folder and its remote name")
    put.add_argument("-r", "--recursive", action="store_true",
                     help="upload a whole folder; files already there are skipped")
    put.add_argument("-n", "--no-clobber", "--ignore-existing", action="store_true",
                     dest="no_clobber",
                     help="never replace a file the server has under that name, whatever "
                          "it holds (as cp -n; rsync's --ignore-existing)")

    get = commands.add_parser(
        "get", parents=[quiet], help="download a file",
        description="Download REMOTE. LOCAL defaults to its name in the current folder; "
                    "an existing local folder receives the file.",
        epilog="examples:\n  ftclient get disk.iso\n  ftclient get projects/2026/notes.txt ~/\n"
               "  ftclient get final.txt copy.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    get.add_argument("paths", metavar="REMOTE [REMOTE ...] [LOCAL]", nargs="+",
                     help="one file and its local name or folder; several files and a "
                          "local folder; or, with -r, a folder and its local name")
    get.add_argument("-r", "--recursive", action="store_true",
                     help="download a whole folder; files already here are skipped")
    get.add_argument("-n", "--no-clobber", "--ignore-existing", action="store_true",
                     dest="no_clobber",
                     help="never replace a local file that exists, whatever it holds "
                          "(as cp -n; rsync's --ignore-existing)")

    ls = commands.add_parser(
        "ls", parents=[quiet], help="list a folder", add_help=False,
        description="List a remote folder: size, modified time, name.",
        epilog="examples:\n  ftclient ls\n  ftclient ls -lh projects\n"
               "  ftclient ls projects --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    # As ls(1): -h is human-readable sizes (so --help only), -a is accepted (nothing is
    # hidden but the server's own .ft- names, which no one sees).
    ls.add_argument("--help", action="help", help="show this help message and exit")
    ls.add_argument("-h", "--human-readable", dest="human", action="store_true",
                    help="with -l, sizes as 1.5 MiB instead of bytes")
    ls.add_argument("-a", "--all", action="store_true", help=argparse.SUPPRESS)
    ls.add_argument("path", metavar="REMOTE_DIR", nargs="?", default="")
    ls.add_argument("--json", action="store_true", help="print a JSON list of objects with "
                    "name, type, size, mtime and (where known) sha256")
    ls.add_argument("-l", dest="long", action="store_true",
                    help="long listing: type, exact size, modified time to the second, name")

    stat = commands.add_parser(
        "stat", parents=[quiet], help="show one file's size, mtime and SHA-256",
        epilog="example:\n  ftclient stat projects/2026/notes.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    stat.add_argument("path", metavar="REMOTE")
    add_file_commands(commands, quiet)
    add_discover_command(commands)
    add_forget_command(commands)
    add_completion_command(commands)
    return parser


class SuggestingParser(argparse.ArgumentParser):
    """argparse's parser, whose error for an unknown command suggests the closest one
    (``ftclient pt``: did you mean 'put'?), through ``error``, the documented hook."""

    def error(self, message: str) -> NoReturn:
        match = _INVALID_COMMAND.search(message)
        if match is not None:
            commands = re.findall(r"'([^']*)'", match.group(2))
            close = difflib.get_close_matches(match.group(1), commands, n=1, cutoff=0.5)
            if close:
                message = (f"unknown command {match.group(1)!r}; did you mean {close[0]!r}? "
                           f"(commands: {', '.join(commands)})")
        super().error(message)


_INVALID_COMMAND = re.compile(r"argument COMMAND: invalid choice: '([^']*)' \(choose from (.*)\)")


class TreeDisplay:
    """One overall tqdm bar for a many-file transfer (bytes, files done, the current file),
    and a line above it for each retry."""

    def __init__(self, verb: str, quiet: bool) -> None:
        self.verb = verb
        self.quiet = quiet
        self.bar = binary_bar(total=0, desc=verb, disable=quiet or not draws_frames())

    def __call__(self, progress: TreeProgress) -> None:
        self.bar.total = progress.bytes_total
        self.bar.set_description_str(
            f"{self.verb} {progress.files_done}/{progress.files_total} files", refresh=False)
        self.bar.set_postfix_str(safe(progress.current)[-40:], refresh=False)
        self.bar.update(progress.bytes_done - self.bar.n)

    def on_retry(self, note: RetryNote) -> None:
        """Print "put 57 files: retry 1/3 in 1 s: connection lost" above the bar."""
        if self.quiet:
            return
        if self.bar.disable:
            print(retry_line(self.verb, note), file=sys.stderr)
        else:
            self.bar.write(retry_line(self.verb, note), file=sys.stderr)


@contextmanager
def tree_progress_bar(verb: str, quiet: bool) -> Iterator[TreeDisplay]:
    """Yield a TreeDisplay drawing one overall bar on stderr; closed on the way out."""
    display = TreeDisplay(verb, quiet)
    try:
        yield display
    finally:
        display.bar.close()


class TransferDisplay:
    """One tqdm bar on stderr for a transfer, plus a note on it for each retry."""

    def __init__(self, verb: str, quiet: bool) -> None:
        self.verb = verb
        self.quiet = quiet
        self.frames = not quiet and draws_frames()
        """Whether bar frames are drawn: never into a log or a pipe (no terminal)."""
        self.bar: Any = None  # a binary_bar, once the first file starts
        self.retried = False
        """A retry note is on the bar: the next start of the transfer replaces it."""

    def __call__(self, progress: Progress) -> None:
        if self.bar is None:
            label = f"{self.verb} {safe(progress.path)}"
            if progress.resumed_from:
                label += f" (resumed at {human_size(progress.resumed_from)})"
            self.bar = binary_bar(total=progress.total, initial=progress.done, desc=label,
                                 disable=not self.frames)
        elif self.retried and progress.done == progress.resumed_from:  # a retry's start
            self.retried = False
            self.bar.reset(total=progress.total)
            self.bar.update(progress.done)
            self.bar.set_postfix_str(f"resumed at {human_size(progress.resumed_from)}"
                                     if progress.resumed_from else "started again")
            return
        self.bar.update(progress.done - self.bar.n)

    def on_retry(self, note: RetryNote) -> None:
        """Show "retry 1/3 in 2 s: connection lost" on the bar, or as a line without one."""
        if self.quiet:
            return
        if self.bar is not None and self.frames:
            self.bar.set_postfix_str(str(note))
            self.retried = True
        else:
            print(retry_line(self.verb, note), file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@contextmanager
def progress_bar(verb: str, quiet: bool) -> Iterator[TransferDisplay]:
    """Yield a progress callback (with ``on_retry``) drawing one tqdm bar on stderr."""
    display = TransferDisplay(verb, quiet)
    try:
        yield display
    finally:
        display.close()


def _moved(size: int, resumed_from: int) -> str:
    """ " (112 MiB moved, resumed at 188 MiB)" when a transfer resumed, else nothing."""
    if not resumed_from:
        return ""
    if resumed_from == size:
        return " (already there: nothing moved)"
    return f" ({human_size(size - resumed_from)} moved, resumed at {human_size(resumed_from)})"


def _retried(count: int) -> str:
    if not count:
        return ""
    return f", after {count} {'retry' if count == 1 else 'retries'}"


def _note(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    if args.command == "discover":
        return run_discover(args)
    if args.command == "forget":
        return run_forget(args, *parse_server(args.target))
    if args.command == "completion":
        return print_script(build_parser(), args.shell)
    server = args.server or os.environ.get(SERVER_ENV) or f"localhost:{DEFAULT_PORT}"
    host, port = parse_server(server)
    if not args.tls and is_pinned(host, port):
        args.tls = True  # pinned once: a TLS server, without --tls every time
    quiet = getattr(args, "quiet", False)
    if args.fingerprint is not None and not _fingerprint_ok(args.fingerprint):
        raise UsageError("--fingerprint takes the 64 hex digits `ftserver fingerprint` prints")
    try:
        password = None if args.user is None else password_for(args.user, host)
    except NoPassword as exc:
        raise AuthFailed(str(exc)) from None
    retries = getattr(args, "retries", DEFAULT_RETRIES)
    # Not "with Client(...)": that connects at once, and put and get connect inside
    # their own retries, so that waiting for a server that restarts shows as retries.
    with closing(Client(host, port, timeout=args.timeout, retries=retries,
                        limit_rate=args.limit_rate, tls=args.tls,
                        fingerprint=args.fingerprint, accept_new=args.accept_new,
                        user=args.user, password=password)) as client:
        if args.command == "get" and not args.recursive and any(
                has_glob(name) for name in args.paths[:-1] or args.paths):  # the remotes
            # get 'inbox/*.pdf' [LOCAL_DIR]: the matches, into LOCAL_DIR or here
            if len(args.paths) == 1:
                args.paths.append(".")
            return run_many(client, args, quiet, tree_progress_bar)
        if args.command in ("put", "get") and (args.recursive or len(args.paths) > 2):
            return run_many(client, args, quiet, tree_progress_bar)
        if args.command in FILE_COMMANDS:
            return run_file_command(client, args, quiet)
        if args.command == "put":
            started = time.monotonic()
            source: str | BinaryIO = args.paths[0]
            if source == "-":  # standard input, spooled first (see ftclient/spool.py)
                if _second(args.paths) is None:
                    raise UsageError("put - reads standard input: give the remote name, "
                                     "as in `tar c dir | ftclient put - backup.tar`")
                source = sys.stdin.buffer
            with progress_bar("put", quiet) as bar, opened_cache() as cache:
                remote = _second(args.paths)
                if remote and isinstance(source, str):  # stdin has no name to put inside
                    remote = target_in_folder(client, remote, os.path.basename(source),
                                              bar.on_retry)
                if args.no_clobber and (kept := remote_kept(client, source, remote,
                                                            bar.on_retry)):
                    _note(quiet, f"kept {safe(kept)}: the server has it already (--no-clobber)")
                    return EXIT_OK
                result = client.put(source, remote, progress=bar, on_retry=bar.on_retry,
                                    cache=cache)
            _note(quiet, f"put {safe(result.remote)}: {human_size(result.size)}"
                         f"{_moved(result.size, result.resumed_from)} in "
                         f"{time.monotonic() - started:.1f} s, sha256 {result.sha256} verified"
                         f"{_retried(result.retries)}")
        elif args.command == "get":
            started = time.monotonic()
            local: str | BinaryIO | None = _second(args.paths)
            if local == "-":  # standard output: no bar among the bytes, the summary on stderr
                sys.stdout.flush()
                local = sys.stdout.buffer
            if args.no_clobber and isinstance(local, str | None) and (
                    kept := local_kept(args.paths[0], local)):
                _note(quiet, f"kept {safe(kept)}: it exists here (--no-clobber)")
                return EXIT_OK
            with progress_bar("get", quiet or local is sys.stdout.buffer) as bar, \
                    opened_cache() as cache:
                result = client.get(args.paths[0], local, progress=bar,
                                    on_retry=bar.on_retry, cache=cache)
            if local is sys.stdout.buffer:
                sys.stdout.buffer.flush()
            _note(quiet, f"got {safe(result.local)}: {human_size(result.size)}"
                         f"{_moved(result.size, result.resumed_from)} in "
                         f"{time.monotonic() - started:.1f} s, sha256 {result.sha256} verified"
                         f"{_retried(result.retries)}")
        elif args.command == "ls":
            print_listing(client.list(args.path, on_retry=retry_notice("ls", quiet)),
                          args.json, args.long, args.human)
        elif args.command == "stat":
            print_stat(client.stat(args.path, digest=True,
                                   on_retry=retry_notice("stat", quiet)))
    return EXIT_OK


def _second(paths: list[str]) -> str | None:
    return paths[1] if len(paths) > 1 else None


def print_listing(entries: list[EntryInfo], as_json: bool, long: bool = False,
                  human: bool = False) -> None:
    if long and not as_json:
        print_long_listing(entries, human)
        return
    if as_json:
        text = json.dumps([entry.to_dict() for entry in entries], ensure_ascii=False, indent=1)
        # json.dumps escapes C0 controls but leaves DEL and C1 (U+007F-U+009F) raw; they can
        # only sit inside strings, where a \uXXXX escape decodes to the same name.
        print(_RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))
        return
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.mtime))
        if entry.type == "dir":
            print(f"{'-':>10}  {when}  {safe(entry.name)}/")
        else:
            print(f"{human_size(entry.size):>10}  {when}  {safe(entry.name)}")


def print_stat(entry: EntryInfo) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.mtime))
    print(f"name:   {safe(entry.name)}")
    print(f"type:   {entry.type}")
    print(f"size:   {entry.size}")
    print(f"mtime:  {when}")
    if entry.sha256:
        print(f"sha256: {entry.sha256}")


def _fingerprint_ok(text: str) -> bool:
    from common.io.tls import normalize_fingerprint  # (ssl: only when a pin is given)

    return normalize_fingerprint(text) is not None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = sys.argv[1:] if argv is None else argv
    try:
        apply_settings(parser, arguments)
        args = parser.parse_args(arguments)
        confirm_profile(args.profile, arguments)
    except ProfileError as exc:
        print(f"ftclient: {safe(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"ftclient: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\nftclient: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except FtError as exc:
        print(f"ftclient: {safe(exc.message)}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"ftclient: {safe(exc.strerror or str(exc))}"
              + (f": {safe(str(exc.filename))}" if exc.filename else ""), file=sys.stderr)
        return EXIT_FAILED
