"""ft's WebDAV beside WsgiDAV's, on the same data, in one run (issue 16: "measure both").

The alternative to writing WebDAV's methods on ft's own HTTP layer (h11) was
WsgiDAV with a provider over ft's storage. This runs WsgiDAV as its users would
(``wsgidav --root DIR --auth anonymous``: its filesystem provider, its cheroot
server, its in-memory lock manager) beside ftserver on its defaults, both on
127.0.0.1, and measures what a mounted drive does:

- litmus: how many of each suite's tests pass;
- PUT of many small files over one kept-alive connection (MKCOL first): files/s;
- PROPFIND Depth 1 of that folder: milliseconds, the median of several;
- curl -T of one big file (a PUT) and curl of it back (a GET): MB/s.

The two servers take turns within a round. ft hashes (SHA-256), fsyncs and renames
every upload before it answers; WsgiDAV writes in place and does neither, so its
PUT is a floor for a server that proves nothing. Needs the bench extra (wsgidav,
cheroot) and Debian's litmus and curl.

    python scripts/davcompare.py --dir /dev/shm --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchkit.external import free_port, wait_port  # noqa: E402
from benchkit.ftcases import ft_server  # noqa: E402
from benchkit.procs import stop_by_pid  # noqa: E402

SUITES = "basic copymove props locks http"
SUMMARY = re.compile(r"<- summary for `(\w+)': of (\d+) tests run: (\d+) passed")
PROPFIND = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>')


@contextlib.contextmanager
def wsgidav_server(base: Path) -> Iterator[tuple[int, Path]]:
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsgidav.server.server_cli", "--host", "127.0.0.1",
         "--port", str(port), "--root", str(root), "--auth", "anonymous", "--no-config", "-q"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        cwd=base)
    try:
        wait_port(port)
        yield port, root
    finally:
        stop_by_pid(proc)


def litmus(port: int, work: Path) -> dict[str, str]:
    done = subprocess.run(["litmus", "--keep-going", f"http://127.0.0.1:{port}/"],
                          cwd=work, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TESTS": SUITES,
                               "HTDOCS": "/usr/share/litmus/htdocs"})
    return {suite: f"{passed}/{run}" for suite, run, passed in SUMMARY.findall(done.stdout)}


def put_small(port: int, source: Path, folder: str) -> float:
    """MKCOL a folder, then PUT every small file into it over one kept-alive connection,
    as a drive's client saving many files does (rclone itself paces its calls)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    started = time.perf_counter()
    connection.request("MKCOL", f"/{folder}/")
    connection.getresponse().read()
    for path in sorted(source.iterdir()):
        connection.request("PUT", f"/{folder}/{path.name}", body=path.read_bytes())
        answer = connection.getresponse()
        answer.read()
        if answer.status not in (200, 201, 204):
            raise RuntimeError(f"PUT {path.name}: {answer.status}")
    took = time.perf_counter() - started
    connection.close()
    return took


def propfind_ms(port: int, folder: str, times: int = 7) -> float:
    took = []
    for _ in range(times):
        started = time.perf_counter()
        subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-X", "PROPFIND",
                        "-H", "Depth: 1", "-H", "Content-Type: application/xml",
                        "--data-binary", PROPFIND.decode(),
                        f"http://127.0.0.1:{port}/{folder}/"], check=True, timeout=120)
        took.append(time.perf_counter() - started)
    return statistics.median(took) * 1000


def curl_put(port: int, source: Path, name: str) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", "/dev/null", "-T", str(source),
                    f"http://127.0.0.1:{port}/{name}"], check=True, timeout=600)
    return time.perf_counter() - started


def curl_get(port: int, name: str, into: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(into),
                    f"http://127.0.0.1:{port}/{name}"], check=True, timeout=600)
    took = time.perf_counter() - started
    into.unlink()
    return took


def make_small(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"f{index:05d}.bin").write_bytes(os.urandom(size))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/dev/shm", help="where data goes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--small-count", type=int, default=500)
    parser.add_argument("--small-kib", type=int, default=4)
    parser.add_argument("--size-mib", type=int, default=256)
    args = parser.parse_args()
    for tool in ("litmus", "curl"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 1
    work = Path(args.dir) / f"ft-davcompare-{os.getpid()}"
    work.mkdir(parents=True)
    results: dict[str, dict[str, list[float]]] = {"ft": {}, "WsgiDAV": {}}
    conformance: dict[str, dict[str, str]] = {}
    try:
        small = work / "small"
        make_small(small, args.small_count, args.small_kib * 1024)
        big = work / "big.bin"
        with open(big, "wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1 << 20))
        with contextlib.ExitStack() as stack:
            ft = stack.enter_context(ft_server(work / "ft"))
            wsgidav_port, _ = stack.enter_context(wsgidav_server(work / "wsgidav"))
            ports = {"ft": ft.port, "WsgiDAV": wsgidav_port}
            for name, port in ports.items():
                (work / f"litmus-{name}").mkdir()
                conformance[name] = litmus(port, work / f"litmus-{name}")
            order = list(ports)
            for round_no in range(args.rounds):
                for name in order:
                    port = ports[name]
                    figures = results[name]
                    folder = f"small{round_no}"
                    took = put_small(port, small, folder)
                    figures.setdefault("PUT of small files, kept alive: files/s", []).append(
                        args.small_count / took)
                    figures.setdefault("PROPFIND Depth 1 of them: ms", []).append(
                        propfind_ms(port, folder))
                    took = curl_put(port, big, f"big{round_no}.bin")
                    figures.setdefault("curl -T (PUT): MB/s", []).append(
                        big.stat().st_size / took / 1e6)
                    took = curl_get(port, f"big{round_no}.bin", work / "back.bin")
                    figures.setdefault("curl GET: MB/s", []).append(
                        big.stat().st_size / took / 1e6)
                    subprocess.run(["sync"], check=False)
                order.append(order.pop(0))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"data in {args.dir}; {args.rounds} rounds; {args.small_count} x {args.small_kib} "
          f"KiB; one file of {args.size_mib} MiB")
    print()
    print("| litmus suite | ft | WsgiDAV |")
    print("|---|---|---|")
    for suite in SUITES.split():
        print(f"| {suite} | {conformance['ft'].get(suite, '-')} | "
              f"{conformance['WsgiDAV'].get(suite, '-')} |")
    print()
    print("| figure | ft | WsgiDAV | ft ÷ WsgiDAV |")
    print("|---|---|---|---|")
    for figure, values in results["ft"].items():
        ours = statistics.median(values)
        theirs = statistics.median(results["WsgiDAV"][figure])
        spread = f"{min(values):.0f}–{max(values):.0f}"
        other = results["WsgiDAV"][figure]
        print(f"| {figure} | {ours:.0f} ({spread}) | {theirs:.0f} "
              f"({min(other):.0f}–{max(other):.0f}) | {ours / theirs:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
