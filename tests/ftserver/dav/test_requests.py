"""What Explorer, Finder and davfs2 send, as raw WebDAV requests, and what they must get.

A chunked PUT, a LOCK on a name not there yet, a PUT without the token (423), the
lock honoured by every other writer (ftclient put and mv, an HTTP PUT, tus), the
lock held across worker processes and ending by itself, PROPPATCH of Windows'
times, quota properties, and COPY or MOVE outside the share or onto reserved names
refused. Hostile XML (billion laughs, an external entity, a 10 MB body) costs at
most its own request: the server answers the next one at once.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import requests

from tests.ftserver.http.httptools import raw_exchange
from tests.serverproc import ServerProcess

TIMEOUT = 20
DAV = "{DAV:}"
LOCK_BODY = (b'<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:">'
             b"<D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype>"
             b"<D:owner><D:href>mailto:ann@office.lan</D:href></D:owner></D:lockinfo>")
CLIENT = [sys.executable, "-m", "ftclient", "--retries", "0"]


def url(server: ServerProcess, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def dav(server: ServerProcess, method: str, path: str, body: bytes = b"",
        **headers: str) -> requests.Response:
    return requests.request(method, url(server, path), data=body, timeout=TIMEOUT,
                            headers={key.replace("_", "-"): value
                                     for key, value in headers.items()})


def lock(server: ServerProcess, path: str, **headers: str) -> tuple[requests.Response, str]:
    answer = dav(server, "LOCK", path, LOCK_BODY, Content_Type="application/xml",
                 Timeout="Second-600", **headers)
    return answer, answer.headers.get("Lock-Token", "").strip("<>")


def ftclient(server: ServerProcess, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLIENT, "--server", f"127.0.0.1:{server.port}", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=60)


def props_of(answer: requests.Response) -> dict[str, dict[str, str]]:
    """href -> {property: text} of a 207 multistatus (200 propstats only)."""
    assert answer.status_code == 207, answer.text
    found: dict[str, dict[str, str]] = {}
    for response in ET.fromstring(answer.content).iter(f"{DAV}response"):
        href = response.findtext(f"{DAV}href") or ""
        for propstat in response.iter(f"{DAV}propstat"):
            if "200" not in (propstat.findtext(f"{DAV}status") or ""):
                continue
            for prop in propstat.find(f"{DAV}prop") or []:
                found.setdefault(href, {})[prop.tag] = "".join(prop.itertext())
    return found


def test_options_says_class_1_and_2(server: ServerProcess) -> None:
    answer = dav(server, "OPTIONS", "/")
    assert answer.headers["DAV"] == "1, 2"
    assert answer.headers["MS-Author-Via"] == "DAV"
    assert "PROPFIND" in answer.headers["Allow"] and "LOCK" in answer.headers["Allow"]


def test_propfind_lists_a_folder_with_the_live_properties(server: ServerProcess) -> None:
    (server.root / "docs").mkdir()
    (server.root / "docs" / "plan <b>&.txt").write_bytes(b"12345")
    answer = dav(server, "PROPFIND", "/docs/", Depth="1")
    found = props_of(answer)
    assert set(found) == {"/docs/", "/docs/plan%20%3Cb%3E%26.txt"}
    file_props = found["/docs/plan%20%3Cb%3E%26.txt"]
    assert file_props[f"{DAV}getcontentlength"] == "5"
    assert file_props[f"{DAV}displayname"] == "plan <b>&.txt"  # escaped by the XML writer
    get = requests.get(url(server, "/docs/plan%20%3Cb%3E%26.txt"), timeout=TIMEOUT)
    assert file_props[f"{DAV}getetag"] == get.headers["ETag"]
    assert "collection" in ET.tostring(ET.fromstring(answer.content)).decode()
    quota = props_of(dav(server, "PROPFIND", "/", (
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:quota-available-bytes/>'
        b"<D:quota-used-bytes/></D:prop></D:propfind>"), Depth="0"))["/"]
    assert int(quota[f"{DAV}quota-available-bytes"]) > 0
    assert int(quota[f"{DAV}quota-used-bytes"]) > 0
    refused = dav(server, "PROPFIND", "/", Depth="infinity")
    assert refused.status_code == 403 and b"propfind-finite-depth" in refused.content


def test_reserved_names_are_never_listed_or_reached(server: ServerProcess) -> None:
    (server.root / "seen.txt").write_bytes(b"x")
    listing = props_of(dav(server, "PROPFIND", "/", Depth="1"))
    assert not any(".ft-" in href for href in listing)
    assert dav(server, "PROPFIND", "/.ft-partials/", Depth="1").status_code in (400, 403, 404)
    for bad in ("/.ft-partials/x", "/%2e%2e/etc/passwd", "/a/..%2f..%2fetc"):
        assert dav(server, "MKCOL", bad).status_code in (400, 403, 404)


def test_a_chunked_put_with_an_mtime_is_published_whole(server: ServerProcess) -> None:
    body = b"Finder sends its files in chunks\n" * 1000
    request = (b"PUT /finder.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               b"X-OC-Mtime: 1600000000\r\nConnection: close\r\n\r\n"
               + b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 4000]), body[i:i + 4000])
                          for i in range(0, len(body), 4000)) + b"0\r\n\r\n")
    response = raw_exchange(server.port, request)
    assert response.startswith(b"HTTP/1.1 201"), response[:200]
    assert b"X-OC-MTime: accepted" in response
    assert (server.root / "finder.txt").read_bytes() == body
    assert (server.root / "finder.txt").stat().st_mtime == 1600000000


def test_a_lock_on_a_new_name_makes_it_and_keeps_every_other_writer_off(
        server: ServerProcess, tmp_path: Path) -> None:
    (server.root / "office").mkdir()
    answer, token = lock(server, "/office/report.docx")
    assert answer.status_code == 201, answer.text  # davfs2 and Office lock, then write
    assert token.startswith("opaquelocktoken:")
    assert (server.root / "office" / "report.docx").read_bytes() == b""
    # Another WebDAV client, or a plain HTTP PUT, without the token: 423.
    assert dav(server, "PUT", "/office/report.docx", b"theirs").status_code == 423
    assert dav(server, "DELETE", "/office/report.docx").status_code == 423
    assert dav(server, "MOVE", "/office/report.docx",
               Destination=url(server, "/office/x.docx")).status_code == 423
    assert dav(server, "DELETE", "/office/").status_code == 423  # a locked name inside
    # ftclient: its own "locked" error, no traceback, nothing changed.
    (tmp_path / "report.docx").write_bytes(b"from ftclient")
    put = ftclient(server, "put", "report.docx", "office/report.docx", cwd=tmp_path)
    assert put.returncode != 0 and "locked" in put.stderr and "Traceback" not in put.stderr
    moved = ftclient(server, "mv", "office/report.docx", "office/y.docx", cwd=tmp_path)
    assert moved.returncode != 0 and "locked" in moved.stderr
    removed = ftclient(server, "rm", "office/report.docx", cwd=tmp_path)
    assert removed.returncode != 0 and "locked" in removed.stderr
    # tus: the upload is refused as soon as it would write the name.
    tus = {"Tus-Resumable": "1.0.0"}
    created = requests.post(url(server, "/office/"), timeout=TIMEOUT, headers={
        **tus, "Upload-Length": "4", "Upload-Metadata": "filename cmVwb3J0LmRvY3g="})
    if created.status_code == 201:
        patched = requests.patch(url(server, created.headers["Location"]), data=b"tus!",
                                 timeout=TIMEOUT, headers={
                                     **tus, "Upload-Offset": "0",
                                     "Content-Type": "application/offset+octet-stream"})
        assert patched.status_code == 423, patched.text
    else:
        assert created.status_code == 423, created.text
    assert (server.root / "office" / "report.docx").read_bytes() == b""
    # The holder writes, with the token in If (bare or tagged, as Windows and Office do).
    mine = dav(server, "PUT", "/office/report.docx", b"mine", If=f"(<{token}>)")
    assert mine.status_code in (200, 204), mine.text
    assert (server.root / "office" / "report.docx").read_bytes() == b"mine"
    unlocked = dav(server, "UNLOCK", "/office/report.docx", Lock_Token=token)  # no brackets
    assert unlocked.status_code == 204
    put = ftclient(server, "put", "report.docx", "office/report.docx", cwd=tmp_path)
    assert put.returncode == 0, put.stderr
    assert (server.root / "office" / "report.docx").read_bytes() == b"from ftclient"


def test_a_folder_lock_covers_what_is_made_in_it(server: ServerProcess, tmp_path: Path) -> None:
    (server.root / "shared").mkdir()
    answer, token = lock(server, "/shared/", Depth="infinity")
    assert answer.status_code == 200
    assert dav(server, "PUT", "/shared/new.txt", b"x").status_code == 423
    assert dav(server, "MKCOL", "/shared/sub").status_code == 423
    (tmp_path / "new.txt").write_bytes(b"y")
    put = ftclient(server, "put", "new.txt", "shared/new.txt", cwd=tmp_path)
    assert "locked" in put.stderr
    assert dav(server, "PUT", "/shared/new.txt", b"x",
               If=f"<{url(server, '/shared/')}> (<{token}>)").status_code == 201
    assert dav(server, "PUT", "/elsewhere.txt", b"free").status_code == 201


def test_locks_hold_across_worker_processes_and_end_by_themselves(
        start_server: object, tmp_path: Path) -> None:
    server = start_server("process", workers=3)  # type: ignore[operator]
    answer = dav(server, "LOCK", "/brief.txt", LOCK_BODY, Timeout="Second-2")
    assert answer.status_code == 201
    token = answer.headers["Lock-Token"].strip("<>")
    # New connections land on the workers in turn: each of them sees the lock.
    for _ in range(6):
        assert dav(server, "PUT", "/brief.txt", b"no", Connection="close").status_code == 423
    discovered = dav(server, "PROPFIND", "/brief.txt", (
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>'),
        Depth="0")
    assert token in discovered.text and "mailto:ann@office.lan" in discovered.text
    time.sleep(2.5)  # past its timeout: the lock is gone by itself
    assert dav(server, "PUT", "/brief.txt", b"yes").status_code in (200, 204)
    assert dav(server, "UNLOCK", "/brief.txt", Lock_Token=f"<{token}>").status_code == 409


def test_proppatch_of_windows_times_sets_the_mtime_and_dead_props_follow_moves(
        server: ServerProcess) -> None:
    (server.root / "sheet.xlsx").write_bytes(b"cells")
    body = (b'<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" '
            b'xmlns:Z="urn:schemas-microsoft-com:"><D:set><D:prop>'
            b"<Z:Win32LastModifiedTime>Wed, 15 Jan 2020 10:00:00 GMT</Z:Win32LastModifiedTime>"
            b"<Z:Win32FileAttributes>00000020</Z:Win32FileAttributes>"
            b"</D:prop></D:set></D:propertyupdate>")
    answer = dav(server, "PROPPATCH", "/sheet.xlsx", body)
    assert answer.status_code == 207 and "200" in answer.text
    assert (server.root / "sheet.xlsx").stat().st_mtime == 1579082400
    assert dav(server, "MOVE", "/sheet.xlsx",
               Destination=url(server, "/kept.xlsx")).status_code == 201
    ask = (b'<D:propfind xmlns:D="DAV:"><D:prop><Z:Win32FileAttributes '
           b'xmlns:Z="urn:schemas-microsoft-com:"/></D:prop></D:propfind>')
    found = props_of(dav(server, "PROPFIND", "/kept.xlsx", ask, Depth="0"))
    assert found["/kept.xlsx"]["{urn:schemas-microsoft-com:}Win32FileAttributes"] == "00000020"
    assert not (server.root / ".ft-dav").exists() and len(list(server.root.iterdir())) == 1
    protected = dav(server, "PROPPATCH", "/kept.xlsx", (
        b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:getetag>"x"</D:getetag>'
        b"</D:prop></D:set></D:propertyupdate>"))
    assert protected.status_code == 207 and "403" in protected.text


def test_copy_and_move_never_leave_the_share_nor_land_on_reserved_names(
        server: ServerProcess) -> None:
    (server.root / "keep.txt").write_bytes(b"keep")
    for destination in ("http://elsewhere.example/keep.txt", "/.ft-partials/keep.txt",
                        "/../outside.txt", "/%2e%2e/outside.txt", "/a%2f..%2f..%2fx",
                        "/.ft-tus/abc"):
        for method in ("COPY", "MOVE"):
            answer = dav(server, method, "/keep.txt", Destination=destination)
            assert answer.status_code in (400, 403, 502), (method, destination, answer.text)
    assert (server.root / "keep.txt").read_bytes() == b"keep"
    assert sorted(p.name for p in server.root.iterdir()) == ["keep.txt"]
    copied = dav(server, "COPY", "/keep.txt", Destination=url(server, "/copy.txt"))
    assert copied.status_code == 201
    assert (server.root / "copy.txt").read_bytes() == b"keep"
    assert dav(server, "COPY", "/keep.txt", Destination=url(server, "/copy.txt"),
               Overwrite="F").status_code == 412


HOSTILE = {
    "billion laughs": (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                       b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
                       b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
                       b'<D:propfind xmlns:D="DAV:"><D:prop><x>&lol3;</x></D:prop>'
                       b"</D:propfind>"),
    "external entity": (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM '
                        b'"file:///etc/passwd">]><D:propfind xmlns:D="DAV:"><D:prop>'
                        b"<x>&e;</x></D:prop></D:propfind>"),
    "not XML": b"<D:propfind xmlns:D='DAV:'><unclosed>",
}


def test_hostile_xml_costs_only_its_request(server: ServerProcess) -> None:
    for name, body in HOSTILE.items():
        for method in ("PROPFIND", "PROPPATCH", "LOCK"):
            answer = dav(server, method, "/", body, Depth="0")
            assert answer.status_code == 400, (name, method, answer.status_code)
            assert b"root:" not in answer.content
    big = b"<D:propfind xmlns:D='DAV:'>" + b" " * (10 << 20) + b"</D:propfind>"
    started = time.monotonic()
    answer = dav(server, "PROPFIND", "/", big, Depth="0")
    assert answer.status_code == 413
    assert time.monotonic() - started < 10
    assert dav(server, "PROPFIND", "/", Depth="0").status_code == 207  # still serving
    assert "Traceback" not in server.log and "internal error" not in server.log


def test_webdav_writes_from_another_sites_page_are_refused(server: ServerProcess) -> None:
    (server.root / "keep.txt").write_bytes(b"keep")
    evil = "http://evil.example"
    for method, path, headers in (
            ("MKCOL", "/made", {}), ("LOCK", "/keep.txt", {}), ("PROPPATCH", "/keep.txt", {}),
            ("MOVE", "/keep.txt", {"Destination": "/moved.txt"}),
            ("COPY", "/keep.txt", {"Destination": "/copied.txt"}),
            ("UNLOCK", "/keep.txt", {"Lock-Token": "<opaquelocktoken:x>"})):
        answer = dav(server, method, path, LOCK_BODY if method == "LOCK" else b"",
                     Origin=evil, **{key.replace("-", "_"): value
                                     for key, value in headers.items()})
        assert answer.status_code == 403, (method, answer.status_code)
    assert sorted(p.name for p in server.root.iterdir()) == ["keep.txt"]
