"""Names as shown: controls and text-disguising characters become visible escapes."""

from __future__ import annotations

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
