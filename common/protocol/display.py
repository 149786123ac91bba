"""Names as shown to people: nothing in a name may drive a terminal or disguise itself.

Sans-IO. C0 and C1 control characters are shown as ``\\xNN``; characters that
reorder or hide text are shown as ``\\uNNNN``: the bidirectional controls
(``report\\u202egpj.exe`` would read as ``reportexe.jpg``) and the invisible ones
(zero-width spaces and joiners, word joiner, byte-order mark, soft hyphen, and the
line and paragraph separators U+2028 and U+2029, which break a line). A name not in
Unicode's composed form (NFC) shows what makes it so (its combining marks, and the
characters NFC would replace or fold into the one before) as ``\\uNNNN``, so the
decomposed twin of ``résumé.pdf`` (as macOS writes it) reads
``re\\u0301sume\\u0301.pdf`` beside it, never the same. Both ends use it: the
client's terminal output, the server's folder pages.
"""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DISGUISING = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064"
                         "\u2066-\u2069\ufeff]")


def visible(text: str) -> str:
    """``text`` with controls and text-disguising characters shown as escapes."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    shown = _DISGUISING.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)
    if unicodedata.is_normalized("NFC", shown):
        return shown
    return _decomposed_marks_shown(shown)


def _decomposed_marks_shown(text: str) -> str:
    """``text`` (not in NFC) with what makes it so escaped: combining marks, characters
    NFC replaces (U+212B ANGSTROM SIGN), and those NFC folds into the one before (the
    vowel of a decomposed Hangul syllable)."""
    out: list[str] = []
    previous = ""
    for char in text:
        if (unicodedata.combining(char) or unicodedata.normalize("NFC", char) != char
                or (previous and len(unicodedata.normalize("NFC", previous + char)) == 1)):
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
            previous = char
    return "".join(out)
