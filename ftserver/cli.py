"""``ftserver`` command line: read the config, start the listener, stop cleanly on SIGTERM/SIGINT.

SIGHUP does what daemons' SIGHUP does for logs: the log file is reopened (so a
rotation by hand or by logrotate without ``copytruncate`` takes effect at once)
and the server keeps serving; settings are read only at start, as the log
line says. A terminal hang-up therefore does not stop a server run in it.

Configuration problems end the program with one line on stderr and exit code 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from ftserver import __version__, admin
from ftserver.config import EXECUTORS, ConfigError, load_config, prepare_directories
from ftserver.logsetup import LogFileError, reopen_log_file, setup_logging

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftserver",
        description="Share a folder over the ft protocol: resumable, verified transfers.",
        epilog="examples:\n"
               "  ftserver                          share ./ft-share on port 9021\n"
               "  ftserver --root /srv/share        share another folder\n"
               "  ftserver --config /etc/ftserver.yaml\n"
               "  ftserver --executor process --workers 4\n"
               "  ftserver fingerprint --config F  print the TLS certificate's fingerprint\n"
               "  ftserver passwd --stdin           make a password verifier for users\n"
               "\n"
               "Discovery, rate limits and every other setting are described in\n"
               "config/ftserver.yaml.\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="PATH", help="YAML settings file "
                        "(see config/ftserver.yaml)")
    parser.add_argument("--root", metavar="DIR", help="the folder to share")
    parser.add_argument("--host", help="address to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, help="TCP port (default 9021; 0 picks a free one)")
    parser.add_argument("--executor", choices=EXECUTORS, help="run sessions on threads or in "
                        "worker processes")
    parser.add_argument("--workers", type=int, help="number of workers")
    parser.add_argument("--state-dir", metavar="DIR", help="where partial uploads and the hash "
                        "cache live (outside the share)")
    parser.add_argument("--log-file", metavar="PATH", help="append log lines here instead of "
                        "stderr (logrotate may move it)")
    parser.add_argument("--version", action="version", version=f"ftserver {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in admin.COMMANDS:
        return admin.main(argv)
    args = build_parser().parse_args(argv)
    try:
        config = load_config(
            args.config, root=args.root, host=args.host, port=args.port,
            executor=args.executor, workers=args.workers, state_dir=args.state_dir,
            log_file=args.log_file,
        )
        config = prepare_directories(config)
    except ConfigError as exc:
        print(f"ftserver: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        setup_logging(config.log_level, config.log_file)
    except LogFileError as exc:
        print(f"ftserver: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    from ftserver.net.instance import StateDirBusy
    from ftserver.net.listener import Server  # after logging, so start-up errors are logged

    try:
        server = Server(config)
    except ConfigError as exc:
        print(f"ftserver: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StateDirBusy as exc:
        print(f"ftserver: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"ftserver: cannot listen on {config.host}:{config.port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 1

    def on_signal(signum: int, _frame: object) -> None:
        logging.getLogger("ftserver").info("received %s", signal.Signals(signum).name)
        server.request_shutdown()

    def on_hangup(_signum: int, _frame: object) -> None:
        reopen_log_file()
        logging.getLogger("ftserver").info(
            "received SIGHUP: log file reopened; still serving (other settings change on "
            "restart)")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    signal.set_wakeup_fd(server.wakeup_fd())  # a signal on any thread wakes the loop
    server.serve_forever()
    return 0

