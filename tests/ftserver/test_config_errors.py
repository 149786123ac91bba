"""Config mistakes an admin makes, answered in one line that says where (issue 17)."""

from __future__ import annotations

from pathlib import Path

from tests.ftserver.test_cli_server import assert_config_error, run_server_expecting_exit


def test_a_yaml_error_names_its_line_and_column(tmp_path: Path) -> None:
    config = tmp_path / "ftserver.yaml"
    config.write_text("port: 9021\nlimits:\n  rate: 5M\n bad: [\n")
    line = assert_config_error(run_server_expecting_exit(["--config", str(config)]),
                               "not valid YAML")
    assert "line 4 column 2" in line


def test_a_state_dir_inside_the_share_is_refused_before_anything_is_made_there(
        tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    result = run_server_expecting_exit(["--root", str(share), "--state-dir",
                                        str(share / "state" / "ftserver"), "--port", "0",
                                        "--host", "127.0.0.1"])
    assert_config_error(result, "state_dir", "inside the shared folder")
    assert list(share.iterdir()) == []  # nothing was left in the share
