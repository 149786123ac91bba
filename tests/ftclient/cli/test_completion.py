"""``ftclient completion bash|zsh``: the script, loaded into a real bash, completes
subcommands and each one's own options, and leaves paths to the shell's file names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CLIENT = [sys.executable, "-m", "ftclient"]


def completions(script: Path, *words: str, cwd: Path) -> list[str]:
    """What bash offers for the last of ``words`` (as typed), with the script loaded."""
    quoted = " ".join(f"'{word}'" for word in words)
    program = (f"source {script}\nCOMP_WORDS=({quoted})\nCOMP_CWORD={len(words) - 1}\n"
               "_ftclient_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], cwd=cwd,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_and_their_own_options(tmp_path: Path) -> None:
    made = subprocess.run([*CLIENT, "completion", "bash"], capture_output=True, text=True,
                          timeout=30)
    assert made.returncode == 0, made.stderr
    script = tmp_path / "ftclient.bash"
    script.write_text(made.stdout)
    assert completions(script, "ftclient", "p", cwd=tmp_path) == ["put"]
    assert completions(script, "ftclient", "", cwd=tmp_path)[:3] == ["completion", "discover",
                                                                     "forget"]
    assert completions(script, "ftclient", "put", "--no", cwd=tmp_path) == ["--no-clobber"]
    assert completions(script, "ftclient", "--se", cwd=tmp_path) == ["--server"]
    assert "--server" not in completions(script, "ftclient", "ls", "-", cwd=tmp_path)
    assert "--json" in completions(script, "ftclient", "ls", "-", cwd=tmp_path)
    # A path after a command is the shell's to complete (complete -o default).
    assert completions(script, "ftclient", "put", "rep", cwd=tmp_path) == []
    assert "complete -o default -o bashdefault -F _ftclient_complete ftclient" in made.stdout


def test_zsh_gets_the_same_script_through_bashcompinit() -> None:
    made = subprocess.run([*CLIENT, "completion", "zsh"], capture_output=True, text=True,
                          timeout=30)
    assert made.returncode == 0
    assert "autoload -U +X bashcompinit && bashcompinit" in made.stdout
    assert "_ftclient_complete" in made.stdout
    refused = subprocess.run([*CLIENT, "completion", "fish"], capture_output=True, text=True,
                             timeout=30)
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
