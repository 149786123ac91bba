"""A pyftpdlib server for the benchmark, run as its own process (``python ftpserve.py ROOT``).

Anonymous with write access, 127.0.0.1 only, a port the kernel picks (printed
on the first line of stdout), connection limits raised for the 50-client case,
and logging at warning level so that per-command log lines cost nothing. Stops
on SIGTERM.
"""

from __future__ import annotations

import logging
import signal
import sys
import warnings

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> int:
    logging.basicConfig(level=logging.WARNING)  # pyftpdlib logs each command at info
    authorizer = DummyAuthorizer()
    with warnings.catch_warnings():  # "write permissions assigned to anonymous": wanted here
        warnings.simplefilter("ignore", RuntimeWarning)
        authorizer.add_anonymous(sys.argv[1], perm="elradfmwMT")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", 0), Handler)
    server.max_cons = 512
    server.max_cons_per_ip = 512
    print(server.socket.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever(handle_exit=False)
    except SystemExit:
        pass
    finally:
        server.close_all()
    return 0


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    raise SystemExit(main())
