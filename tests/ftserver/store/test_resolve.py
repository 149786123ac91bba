"""Resolving a name under the share's root on a real disk: symlinks followed, escapes refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.protocol.errors import BadPath
from ftserver.store.names import resolve_under

# ------------------------------------------------------------------ resolve_under, real folders


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """tmp/x/share (the root), tmp/x/share2 (a sibling), tmp/x/outside (secrets)."""
    base = Path(os.path.realpath(tmp_path)) / "x"
    root = base / "share"
    sibling = base / "share2"
    outside = base / "outside"
    for folder in (root / "docs", sibling, outside):
        folder.mkdir(parents=True)
    (root / "docs" / "a.txt").write_text("inside")
    (sibling / "s.txt").write_text("sibling")
    (outside / "secret.txt").write_text("secret")
    return {"root": root, "sibling": sibling, "outside": outside}


def test_plain_paths_resolve_under_the_root(layout: dict[str, Path]) -> None:
    root = str(layout["root"])
    assert resolve_under(root, ("docs", "a.txt")) == str(layout["root"] / "docs" / "a.txt")
    assert resolve_under(root, ()) == root


def test_a_new_file_need_not_exist(layout: dict[str, Path]) -> None:
    root = str(layout["root"])
    assert resolve_under(root, ("docs", "new.iso")) == str(layout["root"] / "docs" / "new.iso")
    assert resolve_under(root, ("nodir", "new.iso")) == str(layout["root"] / "nodir" / "new.iso")


def test_symlink_pointing_outside_is_refused(layout: dict[str, Path]) -> None:
    root = layout["root"]
    (root / "escape").symlink_to(layout["outside"])
    (root / "docs" / "secret").symlink_to(layout["outside"] / "secret.txt")
    with pytest.raises(BadPath):
        resolve_under(str(root), ("escape",))
    with pytest.raises(BadPath):
        resolve_under(str(root), ("escape", "secret.txt"))
    with pytest.raises(BadPath):
        resolve_under(str(root), ("escape", "new-file"))
    with pytest.raises(BadPath):
        resolve_under(str(root), ("docs", "secret"))


def test_relative_symlink_climbing_out_is_refused(layout: dict[str, Path]) -> None:
    root = layout["root"]
    (root / "docs" / "up").symlink_to(Path("..") / ".." / "outside")
    (root / "parent").symlink_to("..")
    with pytest.raises(BadPath):
        resolve_under(str(root), ("docs", "up", "secret.txt"))
    with pytest.raises(BadPath):
        resolve_under(str(root), ("parent",))


def test_dangling_symlink_pointing_outside_is_refused(layout: dict[str, Path]) -> None:
    # An upload to this name would otherwise create a file outside the root.
    root = layout["root"]
    (root / "trap").symlink_to(layout["outside"] / "does-not-exist-yet")
    with pytest.raises(BadPath):
        resolve_under(str(root), ("trap",))
    assert not (layout["outside"] / "does-not-exist-yet").exists()


def test_symlink_to_a_sibling_sharing_the_roots_prefix_is_refused(layout: dict[str, Path]
                                                                   ) -> None:
    root = layout["root"]
    assert str(layout["sibling"]).startswith(str(root))  # /tmp/x/share2 vs /tmp/x/share
    (root / "sib").symlink_to(layout["sibling"])
    (root / "sibfile").symlink_to(layout["sibling"] / "s.txt")
    with pytest.raises(BadPath):
        resolve_under(str(root), ("sib", "s.txt"))
    with pytest.raises(BadPath):
        resolve_under(str(root), ("sib",))
    with pytest.raises(BadPath):
        resolve_under(str(root), ("sibfile",))


def test_symlink_staying_inside_is_allowed(layout: dict[str, Path]) -> None:
    root = layout["root"]
    (root / "alias").symlink_to(root / "docs")
    (root / "rel").symlink_to("docs/a.txt")
    (root / "docs" / "self").symlink_to(root)
    expected = str(root / "docs" / "a.txt")
    assert resolve_under(str(root), ("alias", "a.txt")) == expected
    assert resolve_under(str(root), ("rel",)) == expected
    assert resolve_under(str(root), ("docs", "self", "docs", "a.txt")) == expected
    assert resolve_under(str(root), ("docs", "self")) == str(root)


def test_root_reached_through_a_symlink_still_confines(tmp_path: Path,
                                                       layout: dict[str, Path]) -> None:
    link_to_root = Path(os.path.realpath(tmp_path)) / "share-link"
    link_to_root.symlink_to(layout["root"])
    root_real = os.path.realpath(link_to_root)
    assert root_real == str(layout["root"])
    (layout["root"] / "escape").symlink_to(layout["outside"])
    with pytest.raises(BadPath):
        resolve_under(root_real, ("escape", "secret.txt"))
    assert resolve_under(root_real, ("docs", "a.txt")) == str(layout["root"] / "docs" / "a.txt")
