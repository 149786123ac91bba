"""Folder pages and their JSON, and what a browser must not be made to do.

Every name is escaped (a file called ``<script>`` shows as text); uploaded HTML and
SVG run no script in the share's origin (CSP sandbox, nosniff); the page itself
carries a strict policy; a state-changing request from another site is refused.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.ftserver.http.httptools import curl, curl_head, curl_status
from tests.serverproc import ServerProcess

HOSTILE = '<img src=x onerror=alert(1)>"\'&.txt'


def test_a_folder_page_lists_folders_first_with_sizes_and_breadcrumbs(
        server: ServerProcess) -> None:
    docs = server.root / "docs"
    (docs / "zeta").mkdir(parents=True)
    (docs / "a.txt").write_bytes(b"x" * 1536)
    status, body = curl_status(f"http://127.0.0.1:{server.port}/docs/")
    page = body.decode()
    assert status == 200
    assert page.index("zeta/") < page.index("a.txt")  # folders first
    assert "1.5 KiB" in page and 'title="1536 bytes"' in page
    assert '<a href="/">share</a> / <a href="/docs/">docs</a>' in page
    assert ".ft-partials" not in page
    status, body = curl_status(f"http://127.0.0.1:{server.port}/docs/?sort=size&order=desc")
    assert status == 200


def test_a_folder_without_its_slash_redirects(server: ServerProcess) -> None:
    (server.root / "docs").mkdir()
    head = curl_head(f"http://127.0.0.1:{server.port}/docs")
    assert head[":status"] == "301" and head["location"] == "/docs/"


def test_format_json_gives_what_ftclient_ls_json_prints(server: ServerProcess) -> None:
    (server.root / "docs").mkdir()
    (server.root / "docs" / "a.txt").write_bytes(b"hello")
    (server.root / "docs" / "sub").mkdir()
    status, body = curl_status(f"http://127.0.0.1:{server.port}/docs/?format=json")
    assert status == 200
    listed = subprocess.run([sys.executable, "-m", "ftclient", "--server",
                             f"127.0.0.1:{server.port}", "ls", "docs", "--json"],
                            capture_output=True, timeout=30)
    assert listed.returncode == 0, listed.stderr.decode()
    by_name = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert {entry["name"]: entry for entry in json.loads(body)} == by_name


def test_hostile_names_are_escaped_on_the_page(server: ServerProcess) -> None:
    (server.root / HOSTILE).write_bytes(b"x")
    status, body = curl_status(f"http://127.0.0.1:{server.port}/")
    page = body.decode()
    assert status == 200
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&#x27;&amp;.txt" in page
    head = curl_head(f"http://127.0.0.1:{server.port}/")
    policy = head["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


def test_uploaded_html_and_svg_cannot_script_the_share(server: ServerProcess) -> None:
    (server.root / "evil.html").write_bytes(b"<script>fetch('/')</script>")
    (server.root / "evil.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'>"
                                           b"<script>alert(1)</script></svg>")
    for name in ("evil.html", "evil.svg"):
        head = curl_head(f"http://127.0.0.1:{server.port}/{name}")
        assert head["content-security-policy"] == "sandbox"
        assert head["x-content-type-options"] == "nosniff"


def test_a_write_from_another_sites_page_is_refused(server: ServerProcess) -> None:
    address = f"http://127.0.0.1:{server.port}/x.txt"
    status, _ = curl_status("-X", "PUT", "--data-binary", "x", "-H",
                            "Origin: http://evil.example", address)
    assert status == 403
    status, _ = curl_status("-X", "PUT", "--data-binary", "x", "-H",
                            "Sec-Fetch-Site: cross-site", address)
    assert status == 403
    assert not (server.root / "x.txt").exists()
    status, _ = curl_status("-X", "PUT", "--data-binary", "x", "-H",
                            f"Origin: http://127.0.0.1:{server.port}", address)
    assert status == 201  # the share's own page may


def test_the_page_stylesheet_comes_from_the_package(server: ServerProcess) -> None:
    done = curl("-D", "-", f"http://127.0.0.1:{server.port}/.ft-assets/page.css")
    assert b"text/css" in done.stdout and b"font" in done.stdout
    status, _ = curl_status(f"http://127.0.0.1:{server.port}/.ft-assets/../share.txt")
    assert status in (400, 404)


def test_a_name_that_reorders_text_is_shown_escaped(server: ServerProcess) -> None:
    (server.root / "invoice\u202efdp.exe").write_bytes(b"x")
    status, body = curl_status(f"http://127.0.0.1:{server.port}/")
    assert status == 200
    assert "invoice\\u202efdp.exe" in body.decode() and "\u202e" not in body.decode()
