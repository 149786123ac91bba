"""A folder of the share as a page (HTML) or as data (``?format=json``).

The page is plain and fast, and works without JavaScript: breadcrumbs, folders
first, each entry's name, size (human and exact) and modification time, sorted by
the column a visitor picks (``?sort=name|size|mtime&order=asc|desc``). Every name
is escaped for HTML and percent-encoded in links, and the page carries a strict
Content-Security-Policy (headers.py). ``?format=json`` gives the entries exactly as
``ftclient ls --json`` prints them.
"""

from __future__ import annotations

import html
import json
import time

from common.protocol.display import visible
from common.protocol.replies import EntryInfo
from common.sizes import human_size
from ftserver.http.exchange import HttpExchange
from ftserver.http.folderzip import serve_zip
from ftserver.http.headers import PAGE
from ftserver.http.target import ASSETS, Target, url_path
from ftserver.store.base import Share

SORT_KEYS = {
    "name": lambda entry: entry.name.casefold(),
    "size": lambda entry: entry.size,
    "mtime": lambda entry: entry.mtime,
}


def serve_folder(exchange: HttpExchange, storage: Share, target: Target) -> None:
    if target.query.get("format") == "zip":
        serve_zip(exchange, storage, target.name)
        return
    entries = storage.list_folder(target.name)
    if target.query.get("format") == "json":
        body = json.dumps([entry.to_dict() for entry in entries], ensure_ascii=False,
                          indent=1).encode()
        exchange.respond(200, [*PAGE, ("Cache-Control", "no-cache")], body + b"\n",
                         "application/json; charset=utf-8")
        return
    sort = target.query.get("sort", "name")
    if sort not in SORT_KEYS:
        sort = "name"
    descending = target.query.get("order") == "desc"
    page = render_page(target.name, entries, sort, descending)
    exchange.respond(200, [*PAGE, ("Cache-Control", "no-cache")], page.encode(),
                     "text/html; charset=utf-8")


UPLOAD_PANEL = "\n".join([
    # Shown by upload.js (without JavaScript the page is for browsing and downloading).
    '<section id="upload" hidden>',
    "<h2>Upload here</h2>",
    "<p>Drop files or a folder anywhere on this page, or choose them:",
    ' <label>files <input type="file" id="pick-files" multiple></label>',
    ' <label>a folder <input type="file" id="pick-folder" webkitdirectory></label></p>',
    '<p class="total"><progress id="total-bar" value="0" max="1"></progress>',
    ' <span id="total-text"></span></p>',
    '<ul id="uploads"></ul>',
    '<p id="refresh" hidden><a href="">Show the folder as it is now</a></p>',
    "</section>",
])


def render_page(folder: str, entries: list[EntryInfo], sort: str, descending: bool) -> str:
    ordered = sorted(entries, key=SORT_KEYS[sort], reverse=descending)
    ordered.sort(key=lambda entry: entry.type != "dir")  # stable: folders first, in order
    title = "/" + visible(folder) + ("/" if folder else "")
    rows = [_row(folder, entry) for entry in ordered]
    if not rows:
        rows.append('<tr><td colspan="3" class="empty">This folder is empty.</td></tr>')
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)} - ft</title>",
        f'<link rel="stylesheet" href="/{ASSETS}/page.css">',
        f'<script src="/{ASSETS}/upload.js" defer></script>',
        "</head><body>",
        f'<nav class="crumbs">{_breadcrumbs(folder)}'
        ' <a class="zip" href="?format=zip">download all as ZIP</a></nav>',
        '<table><thead><tr>',
        _heading("name", "Name", sort, descending),
        _heading("size", "Size", sort, descending),
        _heading("mtime", "Modified", sort, descending),
        "</tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        UPLOAD_PANEL,
        "</body></html>",
        "",
    ])


def _breadcrumbs(folder: str) -> str:
    parts = folder.split("/") if folder else []
    links = ['<a href="/">share</a>']
    for index, part in enumerate(parts):
        path = url_path("/".join(parts[: index + 1]), folder=True)
        links.append(f'<a href="{html.escape(path)}">{html.escape(visible(part))}</a>')
    return " / ".join(links)


def _heading(key: str, label: str, sort: str, descending: bool) -> str:
    order = "asc" if key == sort and descending else ("desc" if key == sort else "asc")
    mark = (" \u25bc" if descending else " \u25b2") if key == sort else ""
    return f'<th><a href="?sort={key}&amp;order={order}">{label}{mark}</a></th>'


def _row(folder: str, entry: EntryInfo) -> str:
    name = f"{folder}/{entry.name}" if folder else entry.name
    is_dir = entry.type == "dir"
    href = html.escape(url_path(name, folder=is_dir))
    shown = html.escape(visible(entry.name) + ("/" if is_dir else ""))
    size = "" if is_dir else (f'<span title="{entry.size} bytes">'
                              f"{html.escape(human_size(entry.size))}</span>")
    when = _local(entry.mtime)
    kind = "dir" if is_dir else "file"
    return (f'<tr class="{kind}"><td><a href="{href}">{shown}</a></td>'
            f'<td class="size" data-bytes="{entry.size}">{size}</td>'
            f'<td><time datetime="{_iso(entry.mtime)}">{when}</time></td></tr>')


def _local(seconds: float) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))
    except (OverflowError, OSError, ValueError):
        return "?"  # a date far outside what the platform's calendar holds


def _iso(seconds: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return ""
