"""How fast can one address guess a password online? Guesses per second against a real server.

Starts an ftserver on 127.0.0.1 (built-in auth_failure_delay, users alice rw and
bob ro), then runs ``--connections`` guessers from one address for ``--seconds``
(bounded also by ``--max-guesses``), each making wrong-password logins as alice.
With ``--own-account`` every guess is followed by a good login as bob, which is
what reset the throttle before issue 18. Prints guesses per second.

    .venv/bin/python scripts/guessrate.py --seconds 30
    .venv/bin/python scripts/guessrate.py --seconds 30 --own-account
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.protocol.errors import AuthFailed, FtError  # noqa: E402
from common.protocol.scram import make_verifier  # noqa: E402
from ftclient import Client  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-2"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-guesses", type=int, default=2000)
    parser.add_argument("--own-account", action="store_true")
    args = parser.parse_args()
    users = {name: {"password": make_verifier(password, iterations=4096).to_text(),
                    "access": "rw" if name == "alice" else "ro"}
             for name, password in PASSWORDS.items()}
    with tempfile.TemporaryDirectory(prefix="ft-guess-") as base:
        server = ServerProcess(Path(base), users=users,
                               limits={"max_per_address": 64, "sessions_per_worker": 32})
        server.start()
        try:
            guesses = attack(server.port, args)
        finally:
            server.terminate()
    print(f"{'with' if args.own_account else 'without'} an own account: {guesses} guesses "
          f"in {args.seconds:.0f} s from {args.connections} connections = "
          f"{guesses / args.seconds:.2f} guesses/s")
    return 0


def attack(port: int, args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.seconds
    counted = [0]
    lock = threading.Lock()

    def guesser(worker: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            with lock:
                if counted[0] >= args.max_guesses:
                    return
            guess = Client("127.0.0.1", port, timeout=60, busy_wait=5, retries=0,
                           user="alice", password=f"guess-{worker}-{n}")
            try:
                guess.connect()
            except AuthFailed:
                if time.monotonic() <= deadline:  # answered within the time measured
                    with lock:
                        counted[0] += 1
            except FtError:
                pass
            finally:
                guess.close()
            n += 1
            if args.own_account:
                with Client("127.0.0.1", port, timeout=60, busy_wait=5, user="bob",
                            password=PASSWORDS["bob"]) as own:
                    own.list("")

    threads = [threading.Thread(target=guesser, args=(i,), daemon=True)
               for i in range(args.connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=args.seconds + 90)
    return counted[0]


if __name__ == "__main__":
    sys.exit(main())
