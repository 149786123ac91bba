"""Name locks: exclusive across processes, and removable only while nobody holds them."""

from __future__ import annotations

import subprocess
import sys
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
