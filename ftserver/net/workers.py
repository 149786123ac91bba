"""The two executors: sessions on threads of this process, or spread over worker processes.

Both take an accepted socket with ``submit`` and report through ``on_done`` when
its session has ended, so the listener can keep its admission counts. In process
mode the listener sends each socket to the least-loaded worker over a Unix socket
pair (SCM_RIGHTS, via multiprocessing.reduction) and closes its own copy once the
descriptor is on its way; each worker runs many sessions on threads. When every
slot is taken, ``evict_idle`` asks the hosts to close one idle connection (in
process mode a question and answer over the same pipe) to make room.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.reduction import recv_handle, send_handle
from typing import Protocol

from ftserver.config import ServerConfig
from ftserver.logsetup import setup_logging
from ftserver.net.instance import hold_sessions_lock
from ftserver.net.sessionhost import SessionHost
from ftserver.net.throttling import RateStates, ServerRates, shared_rate_states
from ftserver.session.security import SessionSecurity
from ftserver.store.storage import LocalStorage

log = logging.getLogger("ftserver.workers")

DoneCallback = Callable[[int], None]

EVICT_WAIT = 0.2
"""Seconds the listener waits for a worker to close an idle connection (only when full)."""


class Executor(Protocol):
    def start(self) -> None: ...
    def submit(self, session_id: int, sock: socket.socket, peer: str) -> None: ...
    def stop(self, grace: float) -> None: ...
    def evict_idle(self, candidates: Sequence[int]) -> int | None: ...


def make_storage(config: ServerConfig) -> LocalStorage:
    limits = config.limits
    return LocalStorage(str(config.root), str(config.state_dir), limits.min_free_bytes,
                   config.partial_max_bytes, lock_wait=limits.lock_wait,
                   folder_wait=limits.folder_wait, folder_busy_wait=limits.folder_busy_wait)


class ThreadExecutor:
    """Every session is a thread of the server process."""

    def __init__(self, config: ServerConfig, on_done: DoneCallback) -> None:
        self.host = SessionHost(make_storage(config), config.limits, config.name,
                                SessionSecurity(config), http_enabled=config.http.enabled)
        self.on_done = on_done
        self.state_dir = str(config.state_dir)
        self._sessions_lock: int | None = None

    def start(self) -> None:
        self._sessions_lock = hold_sessions_lock(self.state_dir)

    def submit(self, session_id: int, sock: socket.socket, peer: str) -> None:
        self.host.run_session(session_id, sock, peer, self.on_done)

    def evict_idle(self, candidates: Sequence[int]) -> int | None:
        return self.host.evict_idle(candidates)

    def stop(self, grace: float) -> None:
        self.host.drain(grace)
        if self._sessions_lock is not None:
            os.close(self._sessions_lock)


WORKER_START_WAIT = 60.0
"""Seconds start-up waits for the spawned workers to be ready (a busy machine is slow)."""


class _WorkerHandle:
    def __init__(self, index: int) -> None:
        self.index = index
        self.process: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None
        self.sessions: set[int] = set()
        self.send_lock = threading.Lock()
        self.evictions: queue.Queue[tuple[int, int | None]] = queue.Queue()
        """The worker's answers to "evict": (the question's number, the session closed)."""
        self.ready = threading.Event()
        """Set once the worker has imported everything and can take sessions."""


class ProcessExecutor:
    """Sessions run in ``workers`` processes, each serving several on threads."""

    def __init__(self, config: ServerConfig, on_done: DoneCallback) -> None:
        self.config = config
        self.on_done = on_done
        self._context = multiprocessing.get_context("spawn")
        self._workers = [_WorkerHandle(i) for i in range(config.workers)]
        self._rate_states = shared_rate_states(self._context, config.limits)
        self._lock = threading.Lock()
        self._stopping = False
        self._questions = itertools.count(1)

    def start(self) -> None:
        """Spawn the workers and wait (up to WORKER_START_WAIT) until each can take sessions,
        so that "listening" is only logged when a connection will be served at once."""
        for worker in self._workers:
            self._spawn(worker)
        deadline = time.monotonic() + WORKER_START_WAIT
        for worker in self._workers:
            if not worker.ready.wait(max(0.0, deadline - time.monotonic())):
                log.warning("worker %d is slow to start; its connections wait for it",
                            worker.index)

    def _spawn(self, worker: _WorkerHandle) -> None:
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main, args=(self.config, child_conn, self._rate_states),
            name=f"ftserver-worker-{worker.index}",
        )
        process.start()
        child_conn.close()
        worker.process, worker.conn = process, parent_conn
        threading.Thread(target=self._watch, args=(worker, parent_conn), daemon=True,
                         name=f"watch-worker-{worker.index}").start()

    def submit(self, session_id: int, sock: socket.socket, peer: str) -> None:
        with self._lock:
            worker = min(self._workers, key=lambda w: len(w.sessions))
            worker.sessions.add(session_id)
        try:
            assert worker.conn is not None and worker.process is not None
            with worker.send_lock:
                worker.conn.send(("session", session_id, peer))
                send_handle(worker.conn, sock.fileno(), worker.process.pid)
        except (OSError, ValueError) as exc:
            log.error("could not hand a connection to worker %d: %s", worker.index, exc)
            with self._lock:
                worker.sessions.discard(session_id)
            self.on_done(session_id)
        finally:
            sock.close()  # the worker holds its own descriptor now

    def _watch(self, worker: _WorkerHandle, conn: Connection) -> None:
        while True:
            try:
                kind, session_id = conn.recv()
            except (EOFError, OSError):
                break
            if kind == "ready":
                worker.ready.set()
            elif kind == "done":
                with self._lock:
                    worker.sessions.discard(session_id)
                self.on_done(session_id)
            elif kind == "evicted":
                worker.evictions.put(session_id)
        with self._lock:
            lost, worker.sessions = worker.sessions, set()
            restart = not self._stopping and worker.conn is conn
        for session_id in lost:
            self.on_done(session_id)
        if restart:
            log.error("worker %d exited unexpectedly; starting a new one", worker.index)
            if worker.process is not None:
                worker.process.join(timeout=1.0)
            self._spawn(worker)

    def evict_idle(self, candidates: Sequence[int]) -> int | None:
        """Ask the workers holding ``candidates``, in their order, to close one that is
        idle; each answers within EVICT_WAIT or is passed over."""
        with self._lock:
            holder = {sid: worker for worker in self._workers for sid in worker.sessions}
        asked: list[_WorkerHandle] = []
        for sid in candidates:
            worker = holder.get(sid)
            if worker is not None and worker not in asked:
                asked.append(worker)
        for worker in asked:
            mine = [sid for sid in candidates if holder.get(sid) is worker]
            question = next(self._questions)
            try:
                assert worker.conn is not None
                with worker.send_lock:
                    worker.conn.send(("evict", question, mine))
            except (OSError, ValueError, AssertionError):
                continue
            deadline = time.monotonic() + EVICT_WAIT
            while (left := deadline - time.monotonic()) > 0:
                try:
                    number, evicted = worker.evictions.get(timeout=left)
                except queue.Empty:
                    break
                if number == question:  # an answer that came too late is dropped
                    if evicted is not None:
                        return evicted
                    break
        return None

    def stop(self, grace: float) -> None:
        with self._lock:
            self._stopping = True
        for worker in self._workers:
            try:
                assert worker.conn is not None
                with worker.send_lock:
                    worker.conn.send(("stop", grace))
            except (OSError, ValueError, AssertionError):
                pass
        for worker in self._workers:
            if worker.process is None:
                continue
            worker.process.join(timeout=grace + 10.0)
            if worker.process.is_alive():
                log.warning("worker %d did not stop; killing it", worker.index)
                worker.process.kill()
                worker.process.join(timeout=5.0)
            if worker.conn is not None:
                worker.conn.close()


def worker_main(config: ServerConfig, conn: Connection,
                rate_states: RateStates | None = None) -> None:
    """Entry point of a worker process: receive sockets, run their sessions, drain on stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the listener decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a terminal's hang-up reaches the group
    setup_logging(config.log_level, config.log_file)
    sessions_lock = hold_sessions_lock(str(config.state_dir))  # noqa: F841 - held till exit
    host = SessionHost(make_storage(config), config.limits, config.name,
                       SessionSecurity(config), ServerRates(config.limits, rate_states),
                       http_enabled=config.http.enabled)
    send_lock = threading.Lock()
    conn.send(("ready", 0))

    def report_done(session_id: int) -> None:
        with send_lock:
            try:
                conn.send(("done", session_id))
            except (OSError, ValueError):
                pass

    def report_evicted(question: int, session_id: int | None) -> None:
        with send_lock:
            try:
                conn.send(("evicted", (question, session_id)))
            except (OSError, ValueError):
                pass

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            host.drain(0.0)  # the listener is gone
            break
        if message[0] == "session":
            _, session_id, peer = message
            fd = recv_handle(conn)
            sock = socket.socket(fileno=fd)
            host.run_session(session_id, sock, peer, report_done)
        elif message[0] == "evict":
            _, question, candidates = message
            report_evicted(question, host.evict_idle(candidates))
        elif message[0] == "stop":
            host.drain(float(message[1]))
            break
    conn.close()
