"""Security settings: every mistake stops start-up with one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from common.protocol.scram import make_verifier
from ftserver.config import ConfigError, load_config

VERIFIER = make_verifier("pw", iterations=4096).to_text()


def config_file(tmp_path: Path, settings: dict) -> Path:
    path = tmp_path / "ftserver.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize(("settings", "key"), [
    ({"tls": "yes"}, "'tls'"),
    ({"tls": {"enabled": "yes"}}, "tls.enabled"),
    ({"tls": {"enabled": True, "cert": "/x.pem"}}, "tls.cert"),
    ({"tls": {"enabled": True, "ciphers": "ALL"}}, "tls.ciphers"),
    ({"users": ["alice"]}, "'users'"),
    ({"users": {"al ice": {"password": VERIFIER}}}, "users.al ice"),
    ({"users": {"alice": {"password": "hunter2"}}}, "users.alice.password"),
    ({"users": {"alice": {"password": VERIFIER, "access": "admin"}}}, "users.alice.access"),
    ({"users": {"alice": {"password": VERIFIER, "home": "../etc"}}}, "users.alice.home"),
    ({"users": {"alice": {"password": VERIFIER, "shell": "/bin/sh"}}}, "users.alice.shell"),
    ({"anonymous": "guest"}, "'anonymous'"),
    ({"limits": {"auth_failure_delay": -1}}, "limits.auth_failure_delay"),
])
def test_bad_security_settings_name_their_key(tmp_path: Path, settings: dict, key: str) -> None:
    with pytest.raises(ConfigError) as bad:
        load_config(config_file(tmp_path, settings))
    assert key in str(bad.value)
    assert "\n" not in str(bad.value)


def test_anonymous_access_defaults_follow_the_users(tmp_path: Path) -> None:
    assert load_config(None).anonymous_access == "rw"
    with_users = {"users": {"alice": {"password": VERIFIER, "access": "ro"}}}
    assert load_config(config_file(tmp_path, with_users)).anonymous_access == "none"
    with_users["anonymous"] = "ro"
    assert load_config(config_file(tmp_path, with_users)).anonymous_access == "ro"


def test_missing_certificate_file_is_one_line_at_start_and_for_fingerprint(
        tmp_path: Path) -> None:
    (tmp_path / "share").mkdir()
    path = config_file(tmp_path, {
        "root": str(tmp_path / "share"), "state_dir": str(tmp_path / "state"),
        "host": "127.0.0.1", "port": 0,
        "tls": {"enabled": True, "cert": str(tmp_path / "no.pem"),
                "key": str(tmp_path / "no.key")},
    })
    for args in (["--config", str(path)], ["fingerprint", "--config", str(path)]):
        result = subprocess.run([sys.executable, "-m", "ftserver", *args], capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "tls.cert" in lines[0], result.stderr
