"""Short flags as every Unix tool combines them, and rm as rm(1) does it (issue 17)."""

from __future__ import annotations

from pathlib import Path

from tests.ftclient.cli.test_cli_client import ftclient
from tests.serverproc import ServerProcess


def test_ls_takes_lh_and_la(server: ServerProcess) -> None:
    (server.root / "big.bin").write_bytes(b"x" * 1536)
    human = ftclient("ls", "-lh", server=server)
    assert human.returncode == 0, human.stderr
    assert "1.5 KiB" in human.stdout and "big.bin" in human.stdout
    exact = ftclient("ls", "-la", server=server)
    assert exact.returncode == 0, exact.stderr
    assert " 1536 " in exact.stdout
    assert "usage" in ftclient("ls", "--help", server=server).stdout


def test_rm_rf_removes_all_it_can_and_says_why_for_the_rest(server: ServerProcess) -> None:
    (server.root / "a.txt").write_bytes(b"a")
    (server.root / "tree" / "deep").mkdir(parents=True)
    (server.root / "full").mkdir()
    (server.root / "full" / "x").write_bytes(b"x")
    forced = ftclient("rm", "-rf", "a.txt", "missing.txt", "tree", server=server)
    assert forced.returncode == 0, forced.stderr
    assert not (server.root / "a.txt").exists() and not (server.root / "tree").exists()
    (server.root / "b.txt").write_bytes(b"b")
    plain = ftclient("rm", "missing.txt", "full", "b.txt", server=server)
    assert plain.returncode == 1
    assert "rm missing.txt:" in plain.stderr and "rm full:" in plain.stderr
    assert not (server.root / "b.txt").exists()  # it went on past the failures
    assert (server.root / "full" / "x").exists()


def test_a_typo_gets_the_closest_command() -> None:
    result = ftclient("pt", "x")
    assert result.returncode == 2
    assert "did you mean 'put'?" in result.stderr


def test_a_folder_without_r_says_to_use_r(server: ServerProcess, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (server.root / "remote-photos").mkdir()
    put = ftclient("put", str(tmp_path / "photos"), server=server)
    assert put.returncode == 1 and "use put -r" in put.stderr
    get = ftclient("get", "remote-photos", str(tmp_path / "here"), server=server)
    assert get.returncode == 1 and "use get -r" in get.stderr
