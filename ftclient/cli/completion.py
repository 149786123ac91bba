"""``ftclient completion bash|zsh``: a shell completion script, generated from the parser.

The script knows every subcommand and every option of the CLI as the parser has them
(so it never falls behind), and completes local file names wherever a path may go;
zsh loads the same script through its bash compatibility (``bashcompinit``). README
shows how to enable it. Remote names are not completed: that would connect to the
server on every Tab.
"""

from __future__ import annotations

import argparse
import shlex

BASH_TEMPLATE = """\
# ftclient completion for bash (and zsh, through bashcompinit); made by
# `ftclient completion {shell}`.
_ftclient_complete() {{
    local cur command word i options
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    command=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            {commands_pattern}) command="$word"; break ;;
        esac
    done
    case "$command" in
{cases}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ -z "$command" ]]; then
        COMPREPLY=($(compgen -W "{commands}" -- "$cur"))
    else
        COMPREPLY=()
    fi
}}
{zsh_preamble}complete -o default -o bashdefault -F _ftclient_complete ftclient
"""
ZSH_PREAMBLE = "autoload -U +X bashcompinit && bashcompinit\n"


def options_of(parser: argparse.ArgumentParser) -> list[str]:
    return sorted({text for action in parser._actions for text in action.option_strings})


def subcommands_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def script(parser: argparse.ArgumentParser, shell: str) -> str:
    commands = subcommands_of(parser)
    top = " ".join(options_of(parser))
    cases = [f'        "") options={shlex.quote(top)} ;;']
    for name, sub in sorted(commands.items()):  # (the global ones go before the command)
        own = " ".join(options_of(sub))
        cases.append(f"        {name}) options={shlex.quote(own)} ;;")
    return BASH_TEMPLATE.format(
        shell=shell, commands_pattern="|".join(sorted(commands)),
        commands=" ".join(sorted(commands)), cases="\n".join(cases),
        zsh_preamble=ZSH_PREAMBLE if shell == "zsh" else "")


def print_script(parser: argparse.ArgumentParser, shell: str) -> int:
    print(script(parser, shell), end="")
    return 0


def add_completion_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = commands.add_parser(
        "completion", help="print a shell completion script",
        description="Print a completion script for bash or zsh. Enable it with "
                    "eval \"$(ftclient completion bash)\" in ~/.bashrc (or zsh in "
                    "~/.zshrc), or save it where bash-completion finds it.",
        epilog="examples:\n"
               "  ftclient completion bash > ~/.local/share/bash-completion/completions/"
               "ftclient\n  ftclient completion zsh >> ~/.zshrc",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shell", choices=("bash", "zsh"))
