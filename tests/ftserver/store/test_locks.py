"""Name locks: exclusive across threads and processes, let go by a holder that dies, and
one file on disk however many names."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ftserver.store.locks import (
    NAMES_FILE,
    KeptNamesOpen,
    NameLock,
    key_byte,
    open_names,
    remove_unused_lock_files,
    try_lock_byte,
)


def test_a_held_lock_is_taken_by_no_other_thread_or_process(tmp_path: Path) -> None:
    holder = NameLock(str(tmp_path), "k")
    assert holder.try_acquire()
    try:
        assert not NameLock(str(tmp_path), "k").try_acquire()
        other_name = NameLock(str(tmp_path), "other")
        assert other_name.try_acquire()  # another name is another lock
        other_name.release()
        other_process = subprocess.run(
            [sys.executable, "-c",
             "import sys; from ftserver.store.locks import NameLock; "
             f"sys.exit(0 if NameLock({str(tmp_path)!r}, 'k').try_acquire() else 3)"],
            timeout=30)
        assert other_process.returncode == 3
    finally:
        holder.release()
    again = NameLock(str(tmp_path), "k")
    assert again.try_acquire()
    again.release()


def test_a_holder_that_dies_lets_go(tmp_path: Path) -> None:
    code = ("import os, sys; from ftserver.store.locks import NameLock; "
            f"assert NameLock({str(tmp_path)!r}, 'k').try_acquire(); os._exit(0)")
    subprocess.run([sys.executable, "-c", code], timeout=30, check=True)
    lock = NameLock(str(tmp_path), "k")
    assert lock.try_acquire()
    lock.release()


def test_the_lock_folder_holds_one_file_however_many_names(tmp_path: Path) -> None:
    for index in range(50):
        with NameLock(str(tmp_path), f"key{index}") as lock:
            assert lock.try_acquire()
    assert [path.name for path in tmp_path.iterdir()] == [NAMES_FILE]


def test_start_up_clears_lock_files_nobody_holds(tmp_path: Path) -> None:
    (tmp_path / "0123abcd.lock").touch()  # a per-name file of an earlier version
    held = tmp_path / "held.lock"
    with open(held, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with NameLock(str(tmp_path), "k") as lock:
            assert lock.try_acquire()
            remove_unused_lock_files(str(tmp_path))
        assert sorted(path.name for path in tmp_path.iterdir()) == ["held.lock", NAMES_FILE]


def test_threads_racing_for_one_name_are_never_two_holders(tmp_path: Path) -> None:
    """Four threads take and let go of one name as fast as they can: never two at once."""
    holders = 0
    most = 0
    taken = 0
    count_lock = threading.Lock()

    def contend() -> None:
        nonlocal holders, most, taken
        for _ in range(1500):
            lock = NameLock(str(tmp_path), "k")
            if not lock.try_acquire():
                continue
            with count_lock:
                holders += 1
                most = max(most, holders)
                taken += 1
            time.sleep(0)  # let the others try while this one holds it
            with count_lock:
                holders -= 1
            lock.release()

    threads = [threading.Thread(target=contend) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert taken > 0
    assert most == 1
    assert [path.name for path in tmp_path.iterdir()] == [NAMES_FILE]


def _contend_in_threads(locks_dir: str, marker: str, rounds: int) -> int:
    """Take and let go of one name from two threads; count the times a holder found the
    marker (made with O_EXCL while held) already there: another holder at once."""
    clashes = 0
    count_lock = threading.Lock()

    def contend() -> None:
        nonlocal clashes
        for _ in range(rounds):
            lock = NameLock(locks_dir, "k")
            if not lock.try_acquire():
                continue
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            except FileExistsError:
                with count_lock:
                    clashes += 1
            else:
                time.sleep(0)
                os.unlink(marker)
            lock.release()

    threads = [threading.Thread(target=contend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return clashes


def test_processes_racing_for_one_name_are_never_two_holders(tmp_path: Path) -> None:
    """Three processes of two threads each take and let go of one name: never two holders."""
    locks, marker = tmp_path / "locks", str(tmp_path / "held")
    locks.mkdir()
    code = ("import sys; from tests.ftserver.store.test_locks import _contend_in_threads; "
            "print(_contend_in_threads(sys.argv[1], sys.argv[2], 1500))")
    racers = [subprocess.Popen([sys.executable, "-c", code, str(locks), marker],
                               cwd=Path(__file__).resolve().parents[3], stdout=subprocess.PIPE,
                               text=True) for _ in range(3)]
    try:
        outputs = [racer.communicate(timeout=120)[0] for racer in racers]
    finally:
        for racer in racers:
            racer.kill()
            racer.wait()
    assert [output.strip() for output in outputs] == ["0", "0", "0"]
    assert [path.name for path in locks.iterdir()] == [NAMES_FILE]


def test_locks_taken_through_a_kept_open_exclude_every_other_open(tmp_path: Path) -> None:
    """A burst keeps one open of the names file for its files' locks, until it ends."""
    kept = KeptNamesOpen(str(tmp_path))
    try:
        assert kept.try_lock("k")
        assert kept.try_lock("k")  # its own already
        assert kept.try_lock("other")
        assert not NameLock(str(tmp_path), "k").try_acquire()
        other_process = subprocess.run(
            [sys.executable, "-c",
             "import sys; from ftserver.store.locks import NameLock; "
             f"sys.exit(0 if NameLock({str(tmp_path)!r}, 'k').try_acquire() else 3)"],
            timeout=30)
        assert other_process.returncode == 3
        with NameLock(str(tmp_path), "free") as lock:
            assert lock.try_acquire()
            assert not kept.try_lock("free")
    finally:
        kept.close()
    for key in ("k", "other"):  # closing let go of all it held
        with NameLock(str(tmp_path), key) as lock:
            assert lock.try_acquire()


def test_shared_holders_and_exclusive_takers_never_overlap(
        tmp_path: Path) -> None:
    """Three threads take one byte shared (as folder locks are), two exclusively, each
    through its own open, as fast as they can: an exclusive holder is never beside
    anyone, shared ones may be several.

    OFD locks are not fair: while shared holders overlap one another, an exclusive
    taker may never find the byte free. So no turn is promised during the race; once
    the shared threads have done their rounds and stopped, every taker must get the
    byte before a deadline (a lock that is never let go fails there).
    """
    shared_holders = 0
    exclusive_holders = 0
    broken = 0
    taken = {True: 0, False: 0}
    count_lock = threading.Lock()
    shared_done = threading.Event()
    deadline = time.monotonic() + 60
    turns_after_sharing = 0  # exclusive takers that got it once sharing stopped

    def hold(shared: bool) -> bool:
        nonlocal shared_holders, exclusive_holders, broken
        fd = open_names(str(tmp_path))
        try:
            if not try_lock_byte(fd, key_byte("k"), shared=shared):
                return False
            with count_lock:
                if shared:
                    shared_holders += 1
                else:
                    exclusive_holders += 1
                if exclusive_holders > 1 or (exclusive_holders and shared_holders):
                    broken += 1
                taken[shared] += 1
            time.sleep(0)  # let the others try while this one holds it
            with count_lock:
                if shared:
                    shared_holders -= 1
                else:
                    exclusive_holders -= 1
            return True
        finally:
            os.close(fd)  # lets go

    def share() -> None:
        for _ in range(1200):
            hold(shared=True)

    def take() -> None:
        nonlocal turns_after_sharing
        for _ in range(1200):
            hold(shared=False)
        shared_done.wait(timeout=max(0.0, deadline - time.monotonic()))
        while shared_done.is_set() and time.monotonic() < deadline:
            if hold(shared=False):  # nobody holds it shared any more: it must come
                with count_lock:
                    turns_after_sharing += 1
                return
            time.sleep(0.001)

    sharers = [threading.Thread(target=share) for _ in range(3)]
    takers = [threading.Thread(target=take) for _ in range(2)]
    for thread in sharers + takers:
        thread.start()
    for thread in sharers:
        thread.join(timeout=60)
    shared_done.set()
    for thread in takers:
        thread.join(timeout=70)
    assert not any(thread.is_alive() for thread in sharers + takers)
    assert taken[True] > 0
    assert turns_after_sharing == len(takers)
    assert broken == 0
    assert [path.name for path in tmp_path.iterdir()] == [NAMES_FILE]


def test_shared_holders_share_and_keep_exclusive_takers_out(tmp_path: Path) -> None:
    """Two opens hold the byte shared at once; meanwhile an exclusive take is refused,
    and once both let go it succeeds."""
    first, second, third = (open_names(str(tmp_path)) for _ in range(3))
    try:
        byte = key_byte("k")
        assert try_lock_byte(first, byte, shared=True)
        assert try_lock_byte(second, byte, shared=True)
        assert not try_lock_byte(third, byte, shared=False)
        os.close(first)
        assert not try_lock_byte(third, byte, shared=False)  # the second still shares it
        os.close(second)
        first = second = -1
        assert try_lock_byte(third, byte, shared=False)
        other = open_names(str(tmp_path))
        try:
            assert not try_lock_byte(other, byte, shared=True)  # exclusive keeps sharers out
        finally:
            os.close(other)
    finally:
        for fd in (first, second, third):
            if fd >= 0:
                os.close(fd)
