"""Name locks: exclusive across threads and processes, and gone from disk once let go."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from ftserver.locks import NameLock


def test_a_held_lock_is_neither_taken_nor_removed(tmp_path: Path) -> None:
    holder = NameLock(str(tmp_path), "k")
    assert holder.try_acquire()
    try:
        assert not NameLock(str(tmp_path), "k").try_acquire()
        assert not NameLock(str(tmp_path), "k").remove_if_free()
        assert (tmp_path / "k.lock").exists()
        other_process = subprocess.run(
            [sys.executable, "-c",
             "import sys; from ftserver.locks import NameLock; "
             f"sys.exit(0 if NameLock({str(tmp_path)!r}, 'k').try_acquire() else 3)"],
            timeout=30)
        assert other_process.returncode == 3
    finally:
        holder.release()
    assert NameLock(str(tmp_path), "k").remove_if_free()
    assert not (tmp_path / "k.lock").exists()
    again = NameLock(str(tmp_path), "k")
    assert again.try_acquire()
    again.release()


def test_letting_go_deletes_the_lock_file(tmp_path: Path) -> None:
    for key in ("a", "b", "c"):
        with NameLock(str(tmp_path), key) as lock:
            assert lock.try_acquire()
            assert (tmp_path / f"{key}.lock").exists()
    assert list(tmp_path.iterdir()) == []


def test_takers_racing_a_deleting_holder_are_never_two(tmp_path: Path) -> None:
    """Four threads take and let go of one name as fast as they can (each release
    deletes the file another may just have opened): never two holders at once."""
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
    assert list(tmp_path.iterdir()) == []


def test_shared_holders_and_exclusive_takers_racing_deletions_never_overlap(
        tmp_path: Path) -> None:
    """Three threads take one name shared, two exclusively, as fast as they can; each
    last holder deletes the file as it lets go (a shared one by turning exclusive
    first). An exclusive holder is never beside anyone, shared ones may be several,
    and no lock file is left."""
    shared_holders = 0
    exclusive_holders = 0
    broken = 0
    many_shared = 0
    taken = {True: 0, False: 0}
    count_lock = threading.Lock()

    def contend(shared: bool) -> None:
        nonlocal shared_holders, exclusive_holders, broken, many_shared
        for _ in range(1200):
            lock = NameLock(str(tmp_path), "k", shared=shared)
            if not lock.try_acquire():
                continue
            with count_lock:
                if shared:
                    shared_holders += 1
                    many_shared = max(many_shared, shared_holders)
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
            lock.release()

    threads = [threading.Thread(target=contend, args=(shared,))
               for shared in (True, True, True, False, False)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert taken[True] > 0 and taken[False] > 0
    assert broken == 0
    assert many_shared > 1  # shared holders do share
    assert list(tmp_path.iterdir()) == []
