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
