"""scripts/ftserver.service: a valid systemd unit that runs ftserver unattended and sandboxed."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from ftserver.cli import build_parser

UNIT = Path(__file__).resolve().parents[2] / "scripts" / "ftserver.service"


def service_section() -> dict[str, str]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return dict(parser["Service"])


def test_unit_runs_unprivileged_restarts_and_is_sandboxed() -> None:
    service = service_section()
    assert service["DynamicUser"] == "yes"
    assert service["Restart"] == "on-failure"
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "yes"
    assert service["PrivateTmp"] == "yes"
    assert service["ReadWritePaths"].split() == ["/srv/ft-share"]
    assert service["StateDirectory"] == "ftserver"
    argv = shlex.split(service["ExecStart"])
    args = build_parser().parse_args(argv[1:])  # the flags it passes exist
    assert (args.root, args.state_dir) == ("/srv/ft-share", "/var/lib/ftserver")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    unit = tmp_path / "ftserver.service"  # the ExecStart binary must exist to verify
    unit.write_text(UNIT.read_text().replace("/opt/ft/.venv/bin/ftserver", "/bin/true"))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
