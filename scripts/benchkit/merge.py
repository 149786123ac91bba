"""Put one section into a page that is already written, leaving the rest of it alone.

For ``bench.py --merge``: a run of one case updates its own section of
docs/benchmarks.md (found by its heading line, up to the next heading of the same
level) and keeps every other figure the page holds; a section not there yet is
appended at the end. Run as a script, it copies such sections from a page that a
run wrote elsewhere (``--out``) into another:

    python scripts/benchkit/merge.py /tmp/benchhttp/benchmarks.md docs/benchmarks.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

OWN_SECTIONS = "## HTTP:"
"""How the headings of the cases' own sections begin (httpreport.py's)."""


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


def sections_of(page: str, prefix: str = OWN_SECTIONS) -> list[list[str]]:
    """The level-2 sections of ``page`` whose heading begins with ``prefix``, in order."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for line in page.splitlines():
        if line.startswith("## "):
            current = [line] if line.startswith(prefix) else None
            if current is not None:
                found.append(current)
        elif current is not None:
            current.append(line)
    for lines in found:
        while lines and not lines[-1].strip():
            lines.pop()
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="copy a bench run's own case sections "
                                                 "from one page into another")
    parser.add_argument("source", type=Path, help="a page bench.py wrote (--out)")
    parser.add_argument("into", type=Path, help="the page to update, e.g. docs/benchmarks.md")
    parser.add_argument("--prefix", default=OWN_SECTIONS,
                        help=f"the sections' headings begin so (default {OWN_SECTIONS!r})")
    args = parser.parse_args(argv)
    sections = sections_of(args.source.read_text(), args.prefix)
    if not sections:
        parser.error(f"no section of {args.source} begins with {args.prefix!r}")
    merge_into(args.into, sections)
    for lines in sections:
        print(f"merged into {args.into}: {lines[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
