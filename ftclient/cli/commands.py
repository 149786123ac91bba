"""The CLI's folder and file-management commands: mkdir, mv, rm, ls -l, and many-file put/get.

main.py owns the parser's top, the terminal and the exit codes, and calls in here
for these commands; this module turns arguments into ``Client`` and tree.py
calls and a ``TreeReport`` into lines on stderr. It draws no progress bar itself:
main.py hands it the bar to use (tqdm stays in bars.py alone).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from common.protocol.errors import ConnectionLost, FtError, NotFound, Timeout
from common.protocol.replies import EntryInfo
from common.sizes import human_size
from ftclient.cli.targets import (
    expand_remote,
    local_folder_for_many,
    remote_folder_for_many,
    target_in_folder,
)
from ftclient.cli.util import UsageError, retry_notice, safe
from ftclient.client import Client
from ftclient.digests import opened_cache
from ftclient.retry import RetryCallback, RetryNote

if TYPE_CHECKING:
    from common.io.hashcache import HashCache
    from ftclient.tree import TreeProgress, TreeReport

FILE_COMMANDS = ("mkdir", "mv", "rm")
EXIT_OK, EXIT_FAILED = 0, 1


class TreeBar(Protocol):
    """What main.py's bar for a many-file transfer offers: progress, and a line per retry."""

    def __call__(self, progress: TreeProgress) -> None: ...

    def on_retry(self, note: RetryNote) -> None: ...


BarFactory = Callable[[str, bool], AbstractContextManager[TreeBar]]


def add_file_commands(commands: argparse._SubParsersAction, quiet: argparse.ArgumentParser
                      ) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    mkdir = commands.add_parser(
        "mkdir", parents=[quiet], help="create a folder", formatter_class=raw,
        epilog="examples:\n  ftclient mkdir reports\n  ftclient mkdir -p projects/2026/q1")
    mkdir.add_argument("-p", "--parents", action="store_true",
                       help="create missing parents too; an existing folder is fine")
    mkdir.add_argument("paths", metavar="REMOTE_DIR", nargs="+")

    mv = commands.add_parser(
        "mv", parents=[quiet], help="rename or move a file or folder", formatter_class=raw,
        description="Rename SRC to DST. A DST that is a folder (or ends in /) receives "
                    "SRC by its name. An existing file is never overwritten.",
        epilog="examples:\n  ftclient mv draft.txt final.txt\n  ftclient mv final.txt archive/")
    mv.add_argument("src", metavar="SRC")
    mv.add_argument("dst", metavar="DST")

    rm = commands.add_parser(
        "rm", parents=[quiet], help="delete a file or folder", formatter_class=raw,
        description="Delete remote files or empty folders; -r also deletes what a folder holds.",
        epilog="examples:\n  ftclient rm old.txt\n  ftclient rm -r projects/2019")
    rm.add_argument("-r", "-R", "--recursive", action="store_true",
                    help="delete folders with everything in them")
    rm.add_argument("-f", "--force", action="store_true",
                    help="a name that is not there is no error")
    rm.add_argument("paths", metavar="REMOTE", nargs="+")


def run_file_command(client: Client, args: argparse.Namespace, quiet: bool) -> int:
    """mkdir, mv or rm; each retried as Client retries it, with a line on stderr per retry."""
    on_retry = retry_notice(args.command, quiet)
    if args.command == "mkdir":
        for path in args.paths:
            client.mkdir(path, parents=args.parents, on_retry=on_retry)
    elif args.command == "mv":
        target = target_in_folder(client, args.dst, args.src.rstrip("/").rsplit("/", 1)[-1],
                                  on_retry)
        client.move(args.src, target, on_retry=on_retry)
    elif args.command == "rm":
        return _remove_each(client, args.paths, args.recursive, args.force, on_retry)
    return EXIT_OK


def _remove_each(client: Client, paths: list[str], recursive: bool, force: bool,
                 on_retry: RetryCallback) -> int:
    """As rm(1): remove all it can, say why for each it cannot, fail if any failed."""
    failed = False
    for path in paths:
        try:
            client.remove(path, recursive=recursive, on_retry=on_retry)
        except NotFound as exc:
            if not force:
                failed = True
                print(f"ftclient: rm {safe(path)}: {safe(exc.message)}", file=sys.stderr)
        except (ConnectionLost, Timeout):
            raise  # the connection is gone: the rest cannot be tried
        except FtError as exc:
            failed = True
            print(f"ftclient: rm {safe(path)}: {safe(exc.message)}", file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def run_many(client: Client, args: argparse.Namespace, quiet: bool, bar: BarFactory) -> int:
    """``put``/``get`` with -r, or with several files and a folder last."""
    started = time.monotonic()
    with opened_cache() as cache, bar(args.command, quiet) as display:
        report = _transfer(client, args, cache, display)
    return _summarize(args.command, report, quiet, time.monotonic() - started)


def _transfer(client: Client, args: argparse.Namespace, cache: HashCache | None,
              bar: TreeBar) -> TreeReport:
    from ftclient.tree import get_files, get_tree, put_files, put_tree  # (only these need it)

    paths: list[str] = args.paths
    keep = bool(getattr(args, "no_clobber", False))
    if args.recursive:
        if len(paths) > 2:
            raise UsageError(f"{args.command} -r takes one folder and, optionally, where "
                             "it goes")
        source = paths[0]
        name = os.path.basename(os.path.normpath(source)) if args.command == "put" \
            else source.strip("/").rsplit("/", 1)[-1]
        target = paths[1] if len(paths) > 1 else name
        if not target:
            raise UsageError("say where the folder goes")
        if args.command == "put":
            return put_tree(client, source, target, cache=cache, progress=bar,
                            on_retry=bar.on_retry, keep_existing=keep)
        return get_tree(client, source, target, cache=cache, progress=bar,
                        on_retry=bar.on_retry, keep_existing=keep)
    *sources, folder = paths
    if args.command == "put":
        folder = remote_folder_for_many(client, folder, bar.on_retry)
        return put_files(client, sources, folder, cache=cache, progress=bar,
                         on_retry=bar.on_retry, keep_existing=keep)
    folder = local_folder_for_many(folder)
    return get_files(client, expand_remote(client, sources, bar.on_retry), folder,
                     cache=cache, progress=bar, on_retry=bar.on_retry, keep_existing=keep)


def _summarize(verb: str, report: TreeReport, quiet: bool, seconds: float) -> int:
    for name, reason in report.skipped:
        if not quiet:
            print(f"skipped {safe(name)}: {safe(reason)}", file=sys.stderr)
    for names, error in _by_error(report.failed):
        more = f" and {len(names) - 1} more files" if len(names) > 1 else ""
        print(f"ftclient: {safe(names[0])}{more}: {safe(error.message)}", file=sys.stderr)
    if not quiet:
        moved = ("" if report.bytes_moved == report.bytes_sent
                 else f", {human_size(report.bytes_moved)} moved: the rest was held already")
        kept = f", {len(report.kept)} kept (--no-clobber)" if report.kept else ""
        print(f"{verb}: {len(report.sent)} transferred ({human_size(report.bytes_sent)}"
              f"{moved}), {len(report.unchanged)} unchanged{kept}, "
              f"{len(report.skipped)} skipped, {len(report.failed)} failed in "
              f"{seconds:.1f} s", file=sys.stderr)
    return EXIT_FAILED if report.failed else EXIT_OK


def _by_error(failed: list[tuple[str, FtError]]) -> list[tuple[list[str], FtError]]:
    """Failures grouped by their error object, in order: the files a lost link left all
    share one error, which is worth one line, not thousands."""
    groups: dict[int, tuple[list[str], FtError]] = {}
    for name, error in failed:
        groups.setdefault(id(error), ([], error))[0].append(name)
    return list(groups.values())


def print_long_listing(entries: list[EntryInfo], human: bool = False) -> None:
    """``ls -l``: type, exact size in bytes (``-h``: as 1.5 MiB), mtime to the second,
    name (folders end in /)."""
    for entry in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.mtime))
        kind, suffix = ("d", "/") if entry.type == "dir" else ("-", "")
        size = human_size(entry.size) if human else str(entry.size)
        print(f"{kind} {size:>14}  {when}  {safe(entry.name)}{suffix}")
