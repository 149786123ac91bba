"""Put one section into a page that is already written, leaving the rest of it alone.

For ``bench.py --merge``: a run of one case updates its own section of
docs/benchmarks.md (found by its heading line, up to the next heading of the same
level) and keeps every other figure the page holds; a section not there yet is
appended at the end.
"""

from __future__ import annotations

from pathlib import Path


def merge_section(page: str, lines: list[str]) -> str:
    """``page`` with the section ``lines`` (its first non-blank line is the heading) in
    place of the section under the same heading, or appended."""
    body = list(lines)
    while body and not body[0].strip():
        body.pop(0)
    if not body:
        return page
    heading = body[0]
    level = heading.split(" ", 1)[0] + " "
    old = page.splitlines()
    if heading in old:
        start = old.index(heading)
        end = next((i for i in range(start + 1, len(old)) if old[i].startswith(level)),
                   len(old))
        new = old[:start] + body + (["", *old[end:]] if end < len(old) else [])
    else:
        new = [*old, "", *body] if old else body
    return "\n".join(new).rstrip("\n") + "\n"


def merge_into(path: Path, sections: list[list[str]]) -> None:
    """Merge each of ``sections`` into the page at ``path`` (a new page if there is none)."""
    page = path.read_text() if path.exists() else ""
    for lines in sections:
        page = merge_section(page, lines)
    path.write_text(page)
