"""Names as shown to people: nothing in a name may drive a terminal or disguise itself.

Sans-IO. C0 and C1 control characters are shown as ``\\xNN``; characters that
reorder or hide text are shown as ``\\uNNNN``: the bidirectional controls
(``report\\u202egpj.exe`` would read as ``reportexe.jpg``) and the invisible ones
(zero-width spaces and joiners, word joiner, byte-order mark, soft hyphen). Both
ends use it: the client's terminal output, the server's folder pages.
"""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_DISGUISING = re.compile("[\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064"
                         "\u2066-\u2069\ufeff]")


def visible(text: str) -> str:
    """``text`` with controls and text-disguising characters shown as escapes."""
    shown = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
    return _DISGUISING.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)
