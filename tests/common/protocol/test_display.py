"""Names as shown: controls and text-disguising characters become visible escapes."""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from common.protocol.display import visible


def test_a_right_to_left_override_cannot_disguise_an_extension() -> None:
    assert visible("report\u202egpj.exe") == "report\\u202egpj.exe"
    assert visible("a\u200bb\ufeff") == "a\\u200bb\\ufeff"
    assert visible("bell\x07 esc\x1b[31m") == "bell\\x07 esc\\x1b[31m"
    assert visible("résumé 報告.pdf") == "résumé 報告.pdf"  # ordinary text stays


@given(st.text())
def test_what_is_shown_holds_no_control_or_bidi_character(text: str) -> None:
    shown = visible(text)
    assert not any(ord(c) < 0x20 or 0x7f <= ord(c) <= 0x9f for c in shown)
    assert not any(c in shown for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def test_line_separators_and_decomposed_twins_are_shown_for_what_they_are() -> None:
    """Issue 18: U+2028 and an NFD twin of a name were printed raw by ls."""
    assert visible("a\u2028b\u2029c") == "a\\u2028b\\u2029c"
    composed = unicodedata.normalize("NFC", "résumé.pdf")
    decomposed = unicodedata.normalize("NFD", "résumé.pdf")
    assert visible(composed) == "résumé.pdf"
    assert visible(decomposed) == "re\\u0301sume\\u0301.pdf"
    assert visible("क्षि.txt") == "क्षि.txt"  # an NFC name's combining marks stay
    assert visible("\u212b.txt") == "\\u212b.txt"  # ANGSTROM SIGN, twin of Å (U+00C5)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_a_name_not_in_composed_form_always_shows_an_escape(text: str) -> None:
    """So a name and its canonically equal twin (NFD, Angstrom sign, Hangul jamo) can
    never look the same: the one that is not NFC carries a visible escape."""
    for name in (text, unicodedata.normalize("NFD", text)):  # NFD: many more twins
        if not unicodedata.is_normalized("NFC", name):
            assert "\\u" in visible(name)
