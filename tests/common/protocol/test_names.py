"""Path rules: which names are refused, and whether one real path lies within another."""

from __future__ import annotations

import pytest

from common.protocol.errors import BadPath, ProtocolError
from common.protocol.names import (
    MAX_COMPONENT_BYTES,
    MAX_PATH_BYTES,
    check_component,
    is_within,
    join_path,
    split_path,
)

CONTROL_CHARS = [chr(code) for code in range(0x20)] + ["\x7f"]

# ------------------------------------------------------------------ check_component


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_dot_names_and_empty_are_refused(name: str) -> None:
    with pytest.raises(BadPath):
        check_component(name)


@pytest.mark.parametrize("name", ["a/b", "/", "a\\b", "\\", "..\\x", "c:\\x"])
def test_slashes_and_backslashes_are_refused_in_a_component(name: str) -> None:
    with pytest.raises(BadPath):
        check_component(name)


@pytest.mark.parametrize("char", CONTROL_CHARS, ids=[f"{ord(c):#04x}" for c in CONTROL_CHARS])
def test_every_control_character_is_refused(char: str) -> None:
    for name in (char, f"a{char}", f"{char}a", f"a{char}b"):
        with pytest.raises(BadPath):
            check_component(name)
        with pytest.raises(BadPath):
            split_path(f"dir/{name}")


@pytest.mark.parametrize("name", [".ft-", ".ft-partial", ".ft-secret.key", ".ft-.."])
def test_reserved_prefix_is_refused(name: str) -> None:
    with pytest.raises(BadPath, match="reserved"):
        check_component(name)


def test_component_length_is_counted_in_utf8_bytes() -> None:
    assert check_component("a" * MAX_COMPONENT_BYTES) == "a" * MAX_COMPONENT_BYTES
    with pytest.raises(BadPath):
        check_component("a" * (MAX_COMPONENT_BYTES + 1))

    two_byte = "é" * 127 + "a"  # 255 bytes, 128 characters
    assert len(two_byte.encode()) == 255
    assert check_component(two_byte) == two_byte
    with pytest.raises(BadPath):
        check_component("é" * 128)  # only 128 characters, but 256 bytes

    assert check_component("€" * 85) == "€" * 85  # 3 bytes each: 255
    with pytest.raises(BadPath):
        check_component("€" * 86)
    with pytest.raises(BadPath):
        check_component("\U0001f600" * 64)  # 4 bytes each: 256


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(BadPath):
        check_component("a\ud800")
    with pytest.raises(BadPath):
        split_path("dir/a\udfff")


@pytest.mark.parametrize("value", [None, 1, b"name", ["a"]])
def test_non_strings_are_refused(value: object) -> None:
    with pytest.raises(BadPath):
        check_component(value)  # type: ignore[arg-type]
    with pytest.raises(BadPath):
        split_path(value)  # type: ignore[arg-type]


ORDINARY_NAMES = ["report.pdf", "résumé.docx", "日本語のファイル", "my file (1).txt",
                  "it's", 'say "hi".txt', "...", "a..b", ".hidden", ".ft", "x.ft-y", ".FTx",
                  " leading and trailing ", "#hash;semi&amp", "\U0001f600", "-rf", "~"]


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_names_are_accepted_unchanged(name: str) -> None:
    assert check_component(name) == name
    assert split_path(f"dir/{name}") == ("dir", name)


def test_bad_path_is_a_protocol_error_with_its_own_code() -> None:
    with pytest.raises(ProtocolError) as info:
        check_component("..")
    assert info.value.code == "bad_path"


# ------------------------------------------------------------------ split_path

REFUSED_PATHS = [
    "", "..", ".", "../x", "a/..", "a/../b", "./a", "a/./b",
    "/etc", "/etc/passwd", "/", "//server/share",
    "C:foo", "c:\\x", "C:", "z:/x", "C:/Windows",
    "a\\b", "..\\..\\x", "a//b", "a/", "/a/", "a/\x00/b", "a\x00", "a/b\nc", "x\x7f",
    ".ft-tmp", "dir/.ft-tmp", ".ft-tmp/x",
    "x" * 256, "dir/" + "y" * 256,
]


@pytest.mark.parametrize("path", REFUSED_PATHS)
def test_split_path_refuses(path: str) -> None:
    with pytest.raises(BadPath):
        split_path(path)


def test_empty_path_is_the_root_only_when_allowed() -> None:
    assert split_path("", allow_root=True) == ()
    with pytest.raises(BadPath):
        split_path("")
    with pytest.raises(BadPath):
        split_path("/", allow_root=True)
    with pytest.raises(BadPath):
        split_path(".", allow_root=True)


@pytest.mark.parametrize(("path", "parts"), [
    ("a", ("a",)),
    ("a/b/c.txt", ("a", "b", "c.txt")),
    ("Photos 2024/été/IMG 001.jpg", ("Photos 2024", "été", "IMG 001.jpg")),
    ('q "x"/it\'s', ('q "x"', "it's")),
    ("ab:c", ("ab:c",)),  # a colon is only a drive letter after exactly one letter
    ("12:30 notes.txt", ("12:30 notes.txt",)),
])
def test_split_path_accepts_relative_paths(path: str, parts: tuple[str, ...]) -> None:
    assert split_path(path) == parts
    assert join_path(parts) == path


def test_path_length_is_capped_in_utf8_bytes() -> None:
    at_cap = "/".join(["a" * 240] * 17)  # 17 * 240 + 16 slashes
    assert len(at_cap.encode()) == MAX_PATH_BYTES
    assert len(split_path(at_cap)) == 17
    with pytest.raises(BadPath, match="longer"):
        split_path(at_cap + "b")

    multibyte = "/".join(["é" * 120] * 17)  # 2048 characters, 4096 bytes
    assert len(multibyte.encode()) == MAX_PATH_BYTES
    split_path(multibyte)
    with pytest.raises(BadPath):
        split_path(multibyte + "é")  # 2049 characters but 4098 bytes


def test_very_long_paths_are_refused_before_splitting() -> None:
    with pytest.raises(BadPath, match="longer"):
        split_path("a/" * 1_000_000 + "a")


# ------------------------------------------------------------------ is_within


@pytest.mark.parametrize(("root", "candidate", "inside"), [
    ("/srv/share", "/srv/share", True),
    ("/srv/share", "/srv/share/a", True),
    ("/srv/share", "/srv/share/a/b/c", True),
    ("/srv/share/", "/srv/share/a", True),
    ("/srv/share", "/srv/share2", False),
    ("/srv/share", "/srv/share2/a", False),
    ("/srv/share", "/srv/share-old/a", False),
    ("/srv/share", "/srv/shar", False),
    ("/srv/share", "/srv", False),
    ("/srv/share", "/", False),
    ("/srv/share", "/etc/passwd", False),
    ("/", "/etc/passwd", True),
    ("/", "/", True),
])
def test_is_within_compares_whole_components(root: str, candidate: str, inside: bool) -> None:
    assert is_within(root, candidate) is inside


@pytest.mark.parametrize("path", ["a/C:x", "docs/c:", "x/y/Z:evil"])
def test_drive_letters_are_refused_in_any_component(path: str) -> None:
    # os.path.join(dest, "C:x") leaves dest on Windows; refuse it wherever it stands.
    with pytest.raises(BadPath):
        split_path(path)
