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

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> int:
    logging.basicConfig(level=logging.WARNING)  # pyftpdlib logs each command at info
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(sys.argv[1], perm="elradfmwMT")

    class Handler(FTPHandler):
        pass

    Handler.authorizer = authorizer
    server = FTPServer(("127.0.0.1", 0), Handler)
    server.max_cons = 512
    server.max_cons_per_ip = 512
    print(server.socket.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.close_all())
    server.serve_forever(handle_exit=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
