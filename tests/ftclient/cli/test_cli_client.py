"""End-to-end tests of the ``ftclient`` command line: real subprocesses, a real server, real files.

Every test runs ``python -m ftclient`` against an ftserver process on 127.0.0.1
and checks what a user or a script relies on: exit codes (0, 1, 2, 130), one
clear line on stderr for a failure, the ``ls --json`` shape, progress bars, and
that Ctrl-C leaves a partial that the same command resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cliutil import one_error_line
from tests.serverproc import ServerProcess

CLIENT = [sys.executable, "-m", "ftclient"]
MiB = 1024 * 1024
BIG_SIZE = 200 * MiB
THROTTLE_RATE = 20 * MiB  # bytes per second through the slow proxy


# ---------------------------------------------------------------- helpers


def client_env(server_env: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FTCLIENT_SERVER"}
    if server_env is not None:
        env["FTCLIENT_SERVER"] = server_env
    env["PYTHONUNBUFFERED"] = "1"
    return env


def ftclient(*args: str, server: ServerProcess | str | None = None, cwd: Path | None = None,
             env: dict[str, str] | None = None, timeout: float = 60.0
             ) -> subprocess.CompletedProcess[str]:
    """Run ``ftclient [--server ADDR] ARGS...`` to completion and capture its output as text."""
    argv = list(CLIENT)
    if server is not None:
        argv += ["--server", server if isinstance(server, str) else address(server)]
    argv += list(args)
    return subprocess.run(argv, cwd=cwd, env=env if env is not None else client_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          encoding="utf-8", errors="surrogateescape", timeout=timeout)


def address(server: ServerProcess) -> str:
    return f"127.0.0.1:{server.port}"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read, closed)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_usage_error(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "usage:" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ftclient: ")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(4 * MiB):
            digest.update(block)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` in chunks; return the SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as stream:
        left = size
        while left:
            block = os.urandom(min(left, 8 * MiB))
            stream.write(block)
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class ThrottleProxy:
    """A TCP relay on 127.0.0.1 that forwards each direction at most ``rate`` bytes per second.

    Used to make a big transfer slow enough to interrupt. When either side closes,
    both sockets of that connection are closed at once, so the server notices a
    killed client promptly.
    """

    CHUNK = 64 * 1024

    def __init__(self, target: tuple[str, int], rate: int) -> None:
        self.target = target
        self.rate = rate
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.forwarded = {"up": 0, "down": 0}
        self._stop = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._accept_loop, daemon=True)]
        self._threads[0].start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                downstream, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                downstream.close()
                continue
            for sock in (downstream, upstream):
                sock.settimeout(30)
            with self._lock:
                self._sockets += [downstream, upstream]
            for src, dst, direction in ((downstream, upstream, "up"),
                                        (upstream, downstream, "down")):
                thread = threading.Thread(target=self._pump, args=(src, dst, direction),
                                          daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        started = time.monotonic()
        moved = 0
        try:
            while not self._stop.is_set():
                data = src.recv(self.CHUNK)
                if not data:
                    break
                dst.sendall(data)
                moved += len(data)
                with self._lock:
                    self.forwarded[direction] += len(data)
                ahead = moved / self.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def srv(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """A thread-executor server (the CLI does not care which executor serves it)."""
    return start_server("thread")


@pytest.fixture
def throttle_proxy() -> Iterator[Callable[[ServerProcess], ThrottleProxy]]:
    proxies: list[ThrottleProxy] = []

    def make(server: ServerProcess) -> ThrottleProxy:
        proxy = ThrottleProxy(("127.0.0.1", server.port), THROTTLE_RATE)
        proxies.append(proxy)
        return proxy

    yield make
    for proxy in proxies:
        proxy.close()


# ---------------------------------------------------------------- happy paths


def test_put_get_round_trip_under_each_executor(server: ServerProcess, tmp_path: Path) -> None:
    local = tmp_path / "data.bin"
    local.write_bytes(os.urandom(3 * MiB + 17))

    put = ftclient("-q", "put", str(local), server=server)
    assert put.returncode == 0, put.stderr
    assert (server.root / "data.bin").read_bytes() == local.read_bytes()

    out = tmp_path / "copy.bin"
    got = ftclient("-q", "get", "data.bin", str(out), server=server)
    assert got.returncode == 0, got.stderr
    assert out.read_bytes() == local.read_bytes()
    assert not (tmp_path / ".copy.bin.ftpart").exists()


def test_put_to_default_name_and_to_explicit_name(srv: ServerProcess, tmp_path: Path) -> None:
    local = tmp_path / "notes.txt"
    local.write_bytes(b"first version\n")
    assert ftclient("-q", "put", str(local), server=srv).returncode == 0
    assert (srv.root / "notes.txt").read_bytes() == b"first version\n"

    result = ftclient("-q", "put", str(local), "renamed.txt", server=srv)
    assert result.returncode == 0, result.stderr
    assert (srv.root / "renamed.txt").read_bytes() == b"first version\n"


def test_put_into_folder_with_trailing_slash(srv: ServerProcess, tmp_path: Path) -> None:
    local = tmp_path / "report.pdf"
    local.write_bytes(b"%PDF-1.7 pretend\n" * 100)
    result = ftclient("-q", "put", str(local), "reports/2026/", server=srv)
    assert result.returncode == 0, result.stderr
    assert (srv.root / "reports" / "2026" / "report.pdf").read_bytes() == local.read_bytes()
    assert not (srv.root / "reports" / "2026" / "report.pdf").is_dir()


def test_get_without_local_writes_into_cwd(srv: ServerProcess, tmp_path: Path) -> None:
    (srv.root / "sub").mkdir()
    (srv.root / "sub" / "hello.txt").write_bytes(b"hello from the share\n")
    cwd = tmp_path / "here"
    cwd.mkdir()
    result = ftclient("-q", "get", "sub/hello.txt", server=srv, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert (cwd / "hello.txt").read_bytes() == b"hello from the share\n"
    assert sorted(p.name for p in cwd.iterdir()) == ["hello.txt"]  # no partial left behind


def test_get_into_existing_folder_and_to_file_name(srv: ServerProcess, tmp_path: Path) -> None:
    (srv.root / "a.txt").write_bytes(b"AAA")
    folder = tmp_path / "dest"
    folder.mkdir()
    result = ftclient("-q", "get", "a.txt", str(folder), server=srv)
    assert result.returncode == 0, result.stderr
    assert (folder / "a.txt").read_bytes() == b"AAA"

    result = ftclient("-q", "get", "a.txt", str(folder / "b.txt"), server=srv)
    assert result.returncode == 0, result.stderr
    assert (folder / "b.txt").read_bytes() == b"AAA"
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt", "b.txt"]


def test_get_preserves_mtime(srv: ServerProcess, tmp_path: Path) -> None:
    src = srv.root / "old.txt"
    src.write_bytes(b"old")
    os.utime(src, (1_600_000_000, 1_600_000_000))
    result = ftclient("-q", "get", "old.txt", str(tmp_path / "old.txt"), server=srv)
    assert result.returncode == 0, result.stderr
    assert abs((tmp_path / "old.txt").stat().st_mtime - 1_600_000_000) < 1


def test_server_from_env_and_flag_wins(srv: ServerProcess, tmp_path: Path) -> None:
    (srv.root / "x.txt").write_bytes(b"x")
    good, bad = address(srv), f"127.0.0.1:{closed_port()}"

    from_env = ftclient("ls", env=client_env(good))
    assert from_env.returncode == 0, from_env.stderr
    assert "x.txt" in from_env.stdout

    flag_wins = ftclient("ls", server=good, env=client_env(bad))
    assert flag_wins.returncode == 0, flag_wins.stderr
    assert "x.txt" in flag_wins.stdout

    # ...and the flag really is used: a bad flag fails even with a good env.
    flag_bad = ftclient("--retries", "0", "ls", server=bad, env=client_env(good))
    one_error_line(flag_bad)


def test_ls_json_shape(srv: ServerProcess, tmp_path: Path) -> None:
    local = tmp_path / "up.bin"
    local.write_bytes(os.urandom(12345))
    os.utime(local, (1_700_000_000.5, 1_700_000_000.5))
    assert ftclient("-q", "put", str(local), server=srv).returncode == 0
    (srv.root / "by-hand.txt").write_bytes(b"copied in by hand")
    (srv.root / "folder").mkdir()

    result = ftclient("ls", "--json", server=srv)
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert isinstance(entries, list)
    by_name = {entry["name"]: entry for entry in entries}
    assert sorted(by_name) == ["by-hand.txt", "folder", "up.bin"]
    for entry in entries:
        assert {"name", "type", "size", "mtime"} <= set(entry) <= {
            "name", "type", "size", "mtime", "sha256"}
        assert entry["type"] in ("file", "dir")
        assert type(entry["size"]) is int and entry["size"] >= 0
        assert type(entry["mtime"]) in (int, float)
        if "sha256" in entry:
            assert entry["type"] == "file"
    assert by_name["folder"]["type"] == "dir"
    up = by_name["up.bin"]
    assert up["type"] == "file" and up["size"] == 12345
    assert abs(up["mtime"] - 1_700_000_000.5) < 0.01
    # The server hashed it on upload, so the hash is known.
    assert up["sha256"] == hashlib.sha256(local.read_bytes()).hexdigest()
    hand = by_name["by-hand.txt"]
    assert hand["size"] == len(b"copied in by hand")
    if "sha256" in hand:
        assert hand["sha256"] == hashlib.sha256(b"copied in by hand").hexdigest()


def test_ls_json_of_subfolder_and_of_empty_share(srv: ServerProcess) -> None:
    empty = ftclient("ls", "--json", server=srv)
    assert empty.returncode == 0, empty.stderr
    assert json.loads(empty.stdout) == []

    (srv.root / "d" / "e").mkdir(parents=True)
    (srv.root / "d" / "f.txt").write_bytes(b"f")
    sub = ftclient("ls", "d", "--json", server=srv)
    assert sub.returncode == 0, sub.stderr
    names = {(entry["name"], entry["type"]) for entry in json.loads(sub.stdout)}
    assert names == {("e", "dir"), ("f.txt", "file")}


def test_ls_human(srv: ServerProcess) -> None:
    (srv.root / "alpha.txt").write_bytes(b"a" * 2048)
    (srv.root / "beta").mkdir()
    (srv.root / "beta" / "inner.txt").write_bytes(b"inner")
    result = ftclient("ls", server=srv)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    alpha = next(line for line in lines if "alpha.txt" in line)
    beta = next(line for line in lines if "beta" in line)
    assert alpha.rstrip().endswith("alpha.txt")
    assert "2.0 KiB" in alpha
    assert beta.rstrip().endswith("beta/")
    assert "inner.txt" not in result.stdout

    sub = ftclient("ls", "beta", server=srv)
    assert sub.returncode == 0, sub.stderr
    assert sub.stdout.rstrip().endswith("inner.txt")


def test_stat(srv: ServerProcess, tmp_path: Path) -> None:
    local = tmp_path / "s.bin"
    local.write_bytes(b"stat me" * 1000)
    assert ftclient("-q", "put", str(local), "dir/s.bin", server=srv).returncode == 0
    result = ftclient("stat", "dir/s.bin", server=srv)
    assert result.returncode == 0, result.stderr
    assert "s.bin" in result.stdout
    assert "7000" in result.stdout
    assert hashlib.sha256(local.read_bytes()).hexdigest() in result.stdout


# ---------------------------------------------------------------- failures: exit 1


def test_get_missing_remote_file(srv: ServerProcess, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = ftclient("get", "no-such-file.txt", server=srv, cwd=cwd)
    line = one_error_line(result)
    assert "no-such-file.txt" in line and "not found" in line.lower()
    assert list(cwd.iterdir()) == []  # neither the file nor an empty partial


@pytest.mark.parametrize("command", [["stat", "missing.txt"], ["ls", "missing-dir"]])
def test_stat_and_ls_of_missing_remote(srv: ServerProcess, command: list[str]) -> None:
    line = one_error_line(ftclient(*command, server=srv))
    assert "missing" in line


def test_ls_of_a_file_is_an_error(srv: ServerProcess) -> None:
    (srv.root / "plain.txt").write_bytes(b"p")
    one_error_line(ftclient("ls", "plain.txt", server=srv))


def test_put_missing_local_file(srv: ServerProcess, tmp_path: Path) -> None:
    result = ftclient("put", str(tmp_path / "nope.bin"), server=srv)
    line = one_error_line(result)
    assert "nope.bin" in line
    assert list(srv.root.iterdir()) == []


def test_put_local_folder_is_an_error(srv: ServerProcess, tmp_path: Path) -> None:
    folder = tmp_path / "afolder"
    folder.mkdir()
    one_error_line(ftclient("put", str(folder), server=srv))
    assert list(srv.root.iterdir()) == []


@pytest.mark.parametrize("command", [["ls"], ["get", "x.txt"], ["stat", "x.txt"]])
def test_server_not_reachable(tmp_path: Path, command: list[str]) -> None:
    port = closed_port()
    result = ftclient("--retries", "0", *command, server=f"127.0.0.1:{port}", cwd=tmp_path,
                      timeout=30)
    line = one_error_line(result)
    assert str(port) in line
    assert list(tmp_path.iterdir()) == []


def test_put_to_unreachable_server(tmp_path: Path) -> None:
    local = tmp_path / "f.txt"
    local.write_bytes(b"f")
    one_error_line(ftclient("--retries", "0", "put", str(local),
                            server=f"127.0.0.1:{closed_port()}"))


@pytest.mark.parametrize("command", [
    ["get", "../x"],
    ["get", "a/../../x"],
    ["stat", "../x"],
    ["ls", "../"],
    ["put", "LOCAL", "../x"],
    ["get", "a\\b"],
])
def test_bad_remote_name(srv: ServerProcess, tmp_path: Path, command: list[str]) -> None:
    local = tmp_path / "local.txt"
    local.write_bytes(b"l")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    args = [str(local) if arg == "LOCAL" else arg for arg in command]
    one_error_line(ftclient(*args, server=srv, cwd=cwd))
    assert list(cwd.iterdir()) == []
    assert list(srv.root.iterdir()) == []
    assert not (tmp_path / "x").exists()


# ---------------------------------------------------------------- usage errors: exit 2


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["put"],
    ["get"],
    ["stat"],
    ["ls", "a", "b"],
    ["--bogus-flag", "ls"],
])
def test_usage_errors(args: list[str]) -> None:
    result = ftclient(*args, server="127.0.0.1:9")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "usage:" in result.stderr


@pytest.mark.parametrize("value", ["host:notaport", "127.0.0.1:0", "127.0.0.1:70000",
                                   ":9021", "127.0.0.1:-1", "[::1"])
def test_bad_server_value_is_a_usage_error(value: str) -> None:
    assert_usage_error(ftclient("ls", server=value))


def test_bad_server_value_from_env_is_a_usage_error() -> None:
    assert_usage_error(ftclient("ls", env=client_env("localhost:notaport")))


def test_help_shows_examples() -> None:
    result = ftclient("--help")
    assert result.returncode == 0, result.stderr
    assert "examples:" in result.stdout
    assert "ftclient put" in result.stdout and "ftclient get" in result.stdout
    for command in ("put", "get", "ls"):
        sub = ftclient(command, "--help")
        assert sub.returncode == 0, sub.stderr
        assert "example" in sub.stdout


# ---------------------------------------------------------------- progress output


def test_progress_bar_on_stderr_and_quiet(srv: ServerProcess, tmp_path: Path) -> None:
    local = tmp_path / "progress-me.bin"
    local.write_bytes(os.urandom(2 * MiB))

    loud = ftclient("put", str(local), server=srv)  # stderr is a pipe: the summary, no bar
    assert loud.returncode == 0, loud.stderr
    assert "\r" not in loud.stderr and "%|" not in loud.stderr
    assert "put progress-me.bin: 2.0 MiB in " in loud.stderr
    assert "Traceback" not in loud.stderr

    quiet = ftclient("-q", "put", str(local), "quiet.bin", server=srv)
    assert quiet.returncode == 0
    assert quiet.stderr == ""

    quiet_after = ftclient("put", "-q", str(local), "quiet2.bin", server=srv)
    assert quiet_after.returncode == 0
    assert quiet_after.stderr == ""

    out = tmp_path / "out"
    out.mkdir()
    loud_get = ftclient("get", "quiet.bin", str(out), server=srv)
    assert loud_get.returncode == 0, loud_get.stderr
    assert "\r" not in loud_get.stderr and "got " in loud_get.stderr
    assert "quiet.bin" in loud_get.stderr

    quiet_get = ftclient("-q", "get", "quiet.bin", str(out / "again.bin"), server=srv)
    assert quiet_get.returncode == 0
    assert quiet_get.stderr == ""
    assert (out / "again.bin").read_bytes() == local.read_bytes()


# ---------------------------------------------------------------- Ctrl-C and resume


def _ctrl_c_reaches_it() -> None:
    """In the client's process before it starts: SIGINT as at a terminal, even when the
    suite itself was started as a background job (which ignores SIGINT, and a child
    inherits that, so Python would never raise KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str
               ) -> tuple[int, str]:
    """Wait until ``ready()``, send SIGINT, and return (exit code, stderr)."""
    try:
        wait_until(lambda: ready() or proc.poll() is not None, 30, what)
        assert proc.poll() is None, "the transfer finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    return proc.returncode, err.decode("utf-8", "replace")


def test_ctrl_c_during_get_leaves_resumable_partial(
    srv: ServerProcess, throttle_proxy: Callable[[ServerProcess], ThrottleProxy],
    tmp_path: Path,
) -> None:
    expected = write_random(srv.root / "big", BIG_SIZE)
    proxy = throttle_proxy(srv)
    dest = tmp_path / "dl"
    dest.mkdir()
    partial = dest / ".big.ftpart"

    proc = subprocess.Popen(CLIENT + ["--server", proxy.address, "get", "big"], cwd=dest,
                            env=client_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_ctrl_c_reaches_it)
    code, err = _interrupt(proc, lambda: size_of(partial) > 0, "the download's partial to grow")
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert not (dest / "big").exists()
    assert partial.exists()
    held = partial.stat().st_size
    assert 0 < held < BIG_SIZE

    again = ftclient("get", "big", server=srv, cwd=dest)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stderr
    assert not partial.exists()
    assert sha256_of(dest / "big") == expected
    assert sorted(p.name for p in dest.iterdir()) == ["big"]


def test_ctrl_c_during_put_leaves_resumable_partial(
    srv: ServerProcess, throttle_proxy: Callable[[ServerProcess], ThrottleProxy],
    tmp_path: Path,
) -> None:
    local = tmp_path / "big"
    expected = write_random(local, BIG_SIZE)
    proxy = throttle_proxy(srv)

    proc = subprocess.Popen(CLIENT + ["--server", proxy.address, "put", str(local)],
                            env=client_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_ctrl_c_reaches_it)
    code, err = _interrupt(proc, lambda: proxy.forwarded["up"] > 8 * MiB,
                           "the upload to pass 8 MiB")
    assert code == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert not (srv.root / "big").exists()
    assert srv.wait_for_log("transfer broke off", timeout=15), srv.log
    partials = [p for p in srv.partials.glob("*.part") if p.stat().st_size > 0]
    assert len(partials) == 1
    assert 0 < partials[0].stat().st_size < BIG_SIZE
    listing = ftclient("ls", "--json", server=srv)
    assert listing.returncode == 0 and json.loads(listing.stdout) == []

    again = ftclient("put", str(local), server=srv)
    assert again.returncode == 0, again.stderr
    assert "resumed" in again.stderr
    assert sha256_of(srv.root / "big") == expected


# ---------------------------------------------------------------- hostile names from the server


def test_control_characters_in_names_never_reach_the_terminal(srv: ServerProcess) -> None:
    (srv.root / "evil\x1b[31mred").write_bytes(b"escape")
    (srv.root / "fine.txt").write_bytes(b"fine")
    for args in (["ls"], ["ls", "--json"]):
        result = subprocess.run(CLIENT + ["--server", address(srv), *args], env=client_env(),
                                stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
        assert b"\x1b" not in result.stdout
        assert b"\x1b" not in result.stderr
        assert b"fine.txt" in result.stdout
    # Asking for it by name: refused locally, and the error line is escaped too.
    result = subprocess.run(CLIENT + ["--server", address(srv), "stat", "evil\x1b[31mred"],
                            env=client_env(), stdin=subprocess.DEVNULL, capture_output=True,
                            timeout=30)
    assert result.returncode == 1
    assert b"\x1b" not in result.stdout + result.stderr
    assert b"Traceback" not in result.stderr


def test_c1_control_characters_are_escaped_in_output(srv: ServerProcess, tmp_path: Path
                                                     ) -> None:
    """U+009B (CSI) passes the path rules, so the server lists it; the CLI must escape it."""
    name = "evil\u009b31mred"
    raw = name[4].encode("utf-8")  # b"\xc2\x9b"
    (srv.root / name).write_bytes(b"c1")

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(CLIENT + ["--server", address(srv), *args], env=client_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30,
                              cwd=cwd)

    human = run("ls")
    assert human.returncode == 0, human.stderr
    assert raw not in human.stdout + human.stderr
    assert b"evil\\x9b31mred" in human.stdout

    as_json = run("ls", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert raw not in as_json.stdout + as_json.stderr
    assert [entry["name"] for entry in json.loads(as_json.stdout)] == [name]

    stat = run("stat", name)
    assert stat.returncode == 0, stat.stderr
    assert raw not in stat.stdout + stat.stderr

    got = run("get", name, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert raw not in got.stdout + got.stderr
    assert (tmp_path / name).read_bytes() == b"c1"
