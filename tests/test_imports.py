"""Dependency direction, read from the source with ast (nothing is imported).

common/ imports nothing of ours; ftserver/ and ftclient/ import common/ and never each
other; tqdm belongs to ftclient/cli/main.py alone, so the Client library stays quiet.
"""

from __future__ import annotations

import ast
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
    assert "common/protocol/frames.py" in found and "common/protocol/messages.py" in found
    assert any(name.startswith("ftserver/") for name in found)
    assert any(name.startswith("ftclient/") for name in found)
    assert "common.protocol.errors" in found["common/protocol/frames.py"]
    return found


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
    assert set(users) <= {"ftclient/cli/main.py"}, users


def test_the_client_cli_helpers_sit_in_one_leaf(imports: dict[str, set[str]]) -> None:
    """cli/util.py imports of ours only retry.py (which imports only common/), and nothing
    but the entry point imports cli.py (commands.py once reached back into it lazily for
    the helpers cli/util.py now holds)."""
    ours = {name for name in imports["ftclient/cli/util.py"] if top_levels({name}) & OURS}
    assert {name for name in ours if not name.startswith("ftclient.retry.")} == {
        "ftclient.retry"}
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
