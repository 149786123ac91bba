"""The headers every answer carries, and those that keep an uploaded file from acting.

A file someone uploaded is served with ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: sandbox``: an HTML or SVG file then runs no script in the
share's origin and cannot read the share through the visitor's browser. The pages
ft writes itself carry a strict policy: only the page's own stylesheet and script,
from the package, nothing inline and nothing from elsewhere.
"""

from __future__ import annotations

import mimetypes

Headers = list[tuple[str, str]]

ALWAYS: Headers = [
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Server", "ftserver"),
]
PAGE_POLICY = ("default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
               "connect-src 'self'; form-action 'self'; base-uri 'none'; "
               "frame-ancestors 'none'")
PAGE: Headers = [("Content-Security-Policy", PAGE_POLICY), ("X-Frame-Options", "DENY")]
UPLOADED: Headers = [("Content-Security-Policy", "sandbox")]
"""For bytes a user put in the share: never script, never a frame of our origin."""

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


def content_type(name: str) -> str:
    """The type a file is served as, from its name; text gets UTF-8 said."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if guessed is None or encoding is not None:
        return "application/octet-stream"  # a .tar.gz is the archive, not a tar
    if guessed.startswith(_TEXT_TYPES):
        return f"{guessed}; charset=utf-8"
    return guessed
