"""The architecture, read from the source with ast (nothing is imported).

common/ imports nothing of ours; ftserver/ and ftclient/ import common/ and never each
other; tqdm belongs to ftclient/cli/bars.py alone, so the Client library stays quiet.
common/protocol/ is sans-IO: no sockets, threads, processes or file access. No import
cycles among our modules, no product file over MAX_LINES lines, and every module says
in its docstring what it owns.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "ftserver", "ftclient")
OURS = {"common", "ftserver", "ftclient", "tests", "scripts"}


def imported_modules(source: str, module: str) -> set[str]:
    """Absolute names of every module ``source`` imports, at any depth (inside functions too).

    ``module`` is the dotted name of the file, used to resolve relative imports.
    """
    found: set[str] = set()
    package = module.split(".")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # "from pkg import sub" may import the submodule pkg.sub
            found.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def top_levels(names: set[str]) -> set[str]:
    return {name.split(".")[0] for name in names if name}


def source_files() -> dict[str, set[str]]:
    """Map each .py file (relative path) under our packages to the modules it imports."""
    result: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO)
            parts = list(relative.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1] + ["__init__"]  # relative imports resolve from the package
            result[relative.as_posix()] = imported_modules(
                path.read_text(encoding="utf-8"), ".".join(parts))
    return result


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    found = source_files()
    # The scan must actually see the code, or every rule below would pass vacuously.
    assert "common/protocol/frames.py" in found and "common/protocol/requests.py" in found
    assert any(name.startswith("ftserver/") for name in found)
    assert any(name.startswith("ftclient/") for name in found)
    assert "common.protocol.errors" in found["common/protocol/frames.py"]
    return found


MAX_LINES = 500
SANS_IO_FORBIDDEN = {"socket", "ssl", "select", "selectors", "threading", "multiprocessing",
                     "concurrent", "asyncio", "subprocess", "fcntl", "mmap", "shutil",
                     "tempfile", "io", "pathlib", "sqlite3", "queue", "time"}
"""Modules the sans-IO protocol may not import (``time``: it never waits or reads a clock;
deadlines are its callers')."""
FILE_CALLS = {"open", "os.open", "os.read", "os.pread", "os.preadv", "os.write", "os.pwrite",
              "os.stat", "os.lstat", "os.fstat", "os.listdir", "os.scandir", "os.walk",
              "os.path.exists", "os.path.isdir", "os.path.isfile", "os.path.realpath",
              "os.path.getsize", "os.fdopen", "os.readlink", "os.access", "io.open"}
"""Calls that open, read or look at files: none of them in the sans-IO protocol."""


def _called_names(source: str) -> set[str]:
    """Dotted names of everything ``source`` calls (``os.path.exists``, ``open``...)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            parts = []
            target = node.func
            while isinstance(target, ast.Attribute):
                parts.append(target.attr)
                target = target.value
            if isinstance(target, ast.Name):
                parts.append(target.id)
                found.add(".".join(reversed(parts)))
    return found


def product_files() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (REPO / package).rglob("*.py"))


def test_the_protocol_is_sans_io(imports: dict[str, set[str]]) -> None:
    protocol = {path: mods for path, mods in imports.items()
                if path.startswith("common/protocol/")}
    assert len(protocol) >= 8, sorted(protocol)  # the scan sees the package
    bad = {path: sorted(top_levels(mods) & SANS_IO_FORBIDDEN
                        | {m for m in mods if m.startswith("common.io")})
           for path, mods in protocol.items()}
    assert {path: mods for path, mods in bad.items() if mods} == {}
    calls = {path: sorted(_called_names((REPO / path).read_text(encoding="utf-8")) & FILE_CALLS)
             for path in protocol}
    assert {path: names for path, names in calls.items() if names} == {}


def test_the_sans_io_check_can_fail() -> None:
    """The two scanners above see what they look for."""
    assert {"os.stat", "open", "os.path.exists"} <= _called_names(
        "import os\nos.stat('x')\nwith open('f') as f: pass\nif os.path.exists('y'): pass\n")
    assert top_levels(imported_modules("import socket\nfrom threading import Lock\n",
                                       "common.protocol.x")) == {"socket", "threading"}


def _module_name(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def _import_graph(imports: dict[str, set[str]]) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (a package counts as its __init__). A module's
    own enclosing packages are left out: Python has run their __init__ before the module,
    so ``from ftclient import pipeline`` inside ftclient/ is an edge to pipeline only."""
    modules = {_module_name(path) for path in imports}
    graph: dict[str, set[str]] = {}
    for path, mods in imports.items():
        name = _module_name(path)
        graph[name] = {mod for mod in mods if mod in modules and mod != name
                       and not name.startswith(mod + ".")}  # its own package's __init__
    return graph


def test_no_import_cycles(imports: dict[str, set[str]]) -> None:
    graph = _import_graph(imports)
    assert "ftclient.client" in graph and "ftserver.net.listener" in graph
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_product_file_is_over_the_line_limit() -> None:
    files = product_files()
    assert len(files) > 40
    long = {path.relative_to(REPO).as_posix(): count for path in files
            if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}


def test_every_product_module_says_what_it_owns() -> None:
    missing = [path.relative_to(REPO).as_posix() for path in product_files()
               if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert missing == []


def test_common_imports_nothing_of_ours(imports: dict[str, set[str]]) -> None:
    bad = {path: sorted(top_levels(mods) & (OURS - {"common"}))
           for path, mods in imports.items() if path.startswith("common/")}
    assert {path: mods for path, mods in bad.items() if mods} == {}


def test_ftserver_never_imports_ftclient(imports: dict[str, set[str]]) -> None:
    bad = [path for path, mods in imports.items()
           if path.startswith("ftserver/") and top_levels(mods) & {"ftclient", "tests", "scripts"}]
    assert bad == []


def test_ftclient_never_imports_ftserver(imports: dict[str, set[str]]) -> None:
    bad = [path for path, mods in imports.items()
           if path.startswith("ftclient/") and top_levels(mods) & {"ftserver", "tests", "scripts"}]
    assert bad == []


def test_only_the_client_cli_imports_tqdm(imports: dict[str, set[str]]) -> None:
    users = sorted(path for path, mods in imports.items() if "tqdm" in top_levels(mods))
    assert set(users) <= {"ftclient/cli/bars.py"}, users  # the bar's look, used by main.py


def test_the_client_cli_helpers_sit_in_one_leaf(imports: dict[str, set[str]]) -> None:
    """cli/util.py imports of ftclient only retry.py (which, like util.py, imports besides
    only common/), and nothing but the entry point imports cli.py (commands.py once reached
    back into it lazily for the helpers cli/util.py now holds)."""
    ours = {name for name in imports["ftclient/cli/util.py"] if top_levels({name}) & OURS}
    assert top_levels(ours) <= {"ftclient", "common"}
    assert {name for name in ours if name.startswith("ftclient")
            and not name.startswith("ftclient.retry.")} == {"ftclient.retry"}
    assert top_levels(imports["ftclient/retry.py"]) & OURS <= {"common"}
    back = sorted(path for path, mods in imports.items()
                  if "ftclient.cli.main" in mods and path != "ftclient/__main__.py")
    assert back == []


# ------------------------------------------------------------------ the scanner itself


def test_scanner_sees_every_form_of_import() -> None:
    source = (
        "import os, ftserver.store.storage as s\n"
        "from tqdm.auto import tqdm\n"
        "from . import sibling\n"
        "from ..common import errors\n"
        "def f():\n"
        "    import ftclient\n"
        "if True:\n"
        "    from ftserver import config\n"
        "try:\n"
        "    import yaml\n"
        "except ImportError:\n"
        "    pass\n"
    )
    found = imported_modules(source, "ftclient.sub.module")
    assert {"os", "ftserver.store.storage", "tqdm.auto", "ftclient", "yaml",
            "ftserver", "ftserver.config"} <= found
    assert "ftclient.sub.sibling" in found
    assert "ftclient.common" in found and "ftclient.common.errors" in found
    assert top_levels(found) == {"os", "ftserver", "tqdm", "ftclient", "yaml"}


def test_relative_import_from_a_package_init_resolves_inside_it() -> None:
    found = imported_modules("from .client import Client\n", "ftclient.__init__")
    # "ftclient.__init__" minus one level is the ftclient package itself
    assert "ftclient.client" in found


def test_the_cli_starts_without_what_only_some_commands_need(tmp_path: Path) -> None:
    """``ftclient ls`` against nothing listening: the CLI and a failed connect, no more.
    tqdm, yaml, ssl, sqlite3 and the transfer code are each a tenth of the start-up."""
    probe = ("import sys, runpy\n"
             "sys.argv = ['ftclient', '--server', '127.0.0.1:1', '--retries', '0', 'ls']\n"
             "try:\n"
             "    runpy.run_module('ftclient', run_name='__main__')\n"
             "except SystemExit:\n"
             "    pass\n"
             "heavy = ['tqdm', 'yaml', 'ssl', 'sqlite3', 'ftclient.pipeline', "
             "'ftclient.transfers', 'ftclient.tree', 'common.protocol.scram']\n"
             "print(' '.join(name for name in heavy if name in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          cwd=REPO, timeout=60, env={**os.environ,
                                                     "XDG_CONFIG_HOME": str(tmp_path)})
    assert "ftclient:" in done.stderr  # it did run, and failed to connect
    assert done.stdout.strip() == ""
