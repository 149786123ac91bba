"""WebDAV requests meant to lose data, escape a lock, loop the server or break its answers.

Each one was found against an earlier version (a review's reproductions): a COPY or
MOVE that removed its destination and then failed, a copy into itself through a
link, locks on links that guarded nothing, a lock owner's stray text that broke
every later PROPFIND, a lock on the whole share, tokens good for any user, names XML
cannot hold, headers that raised, and a lock taken while an upload was running.

These run under the thread executor only: each is about what one request does, and
litmus, test_requests.py and the cross-process lock test run under both executors.
"""

from __future__ import annotations

import os
import socket
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable

import pytest
import requests
import urllib3

from tests.ftserver.dav.test_requests import LOCK_BODY, dav, lock, props_of
from tests.ftserver.session.test_auth import PASSWORDS, users_config
from tests.serverproc import ServerProcess

TIMEOUT = 20


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """One server on threads (this module's requests do not depend on the executor)."""
    return start_server("thread")


def test_a_refused_move_or_copy_removes_nothing(server: ServerProcess) -> None:
    root = server.root
    (root / "lk").mkdir()
    (root / "lk" / "g.txt").write_bytes(b"locked source")
    (root / "victim.txt").write_bytes(b"victim")
    assert lock(server, "/lk/", Depth="infinity")[0].status_code == 200
    moved = dav(server, "MOVE", "/lk/g.txt", Destination="/victim.txt")
    assert moved.status_code == 423
    assert (root / "victim.txt").read_bytes() == b"victim"
    (root / "anc").mkdir()
    (root / "anc" / "a.txt").write_bytes(b"inside")
    assert dav(server, "MOVE", "/anc/a.txt", Destination="/anc").status_code == 409
    assert dav(server, "COPY", "/anc/a.txt", Destination="/anc").status_code == 409
    assert (root / "anc" / "a.txt").read_bytes() == b"inside"
    (root / "real").mkdir()
    (root / "real" / "keep.txt").write_bytes(b"keep")
    os.symlink("real", root / "L")
    for method in ("COPY", "MOVE"):
        answer = dav(server, method, "/L/keep.txt", Destination="/real/keep.txt")
        assert answer.status_code == 403, (method, answer.status_code)
    assert (root / "real" / "keep.txt").read_bytes() == b"keep"


def test_a_copy_into_itself_through_a_link_is_refused_at_once(server: ServerProcess) -> None:
    (server.root / "loop").mkdir()
    (server.root / "loop" / "f.txt").write_bytes(b"f")
    os.symlink("loop", server.root / "loopL")
    started = time.monotonic()
    answer = dav(server, "COPY", "/loop", Destination="/loopL/x")
    assert answer.status_code == 403
    assert time.monotonic() - started < 5
    assert sorted(p.name for p in (server.root / "loop").iterdir()) == ["f.txt"]
    # A link inside a copied tree that leads back up is copied once, not forever.
    os.symlink("..", server.root / "loop" / "up")
    (server.root / "elsewhere").mkdir()
    answer = dav(server, "COPY", "/loop", Destination="/elsewhere/copy")
    assert answer.status_code in (201, 507), answer.text
    assert sum(1 for _ in (server.root / "elsewhere").rglob("*")) < 1000


def test_a_lock_on_a_link_guards_what_it_leads_to(server: ServerProcess) -> None:
    (server.root / "t.txt").write_bytes(b"target")
    os.symlink("t.txt", server.root / "linkfile")
    assert lock(server, "/linkfile")[0].status_code == 200
    assert dav(server, "PUT", "/linkfile", b"overwritten").status_code == 423
    assert dav(server, "PUT", "/t.txt", b"overwritten").status_code == 423
    assert (server.root / "t.txt").read_bytes() == b"target"
    (server.root / "real").mkdir()
    (server.root / "real" / "f.txt").write_bytes(b"f")
    os.symlink("real", server.root / "L")
    assert lock(server, "/L", Depth="infinity")[0].status_code == 200
    assert dav(server, "PUT", "/L/new.txt", b"x").status_code == 423
    assert dav(server, "DELETE", "/L/f.txt").status_code == 423
    assert dav(server, "MKCOL", "/L/sub").status_code == 423
    assert dav(server, "PUT", "/real/new.txt", b"x").status_code == 423
    assert sorted(p.name for p in (server.root / "real").iterdir()) == ["f.txt"]


def test_stray_text_in_an_owner_or_a_property_breaks_no_later_answer(
        server: ServerProcess) -> None:
    (server.root / "own").mkdir()
    body = LOCK_BODY.replace(b"</D:owner>", b"</D:owner>junk after the owner")
    assert dav(server, "LOCK", "/own/", body).status_code == 200
    (server.root / "pp").mkdir()
    (server.root / "pp" / "victim.txt").write_bytes(b"v")
    patch = (b'<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><x:a xmlns:x="urn:x">v</x:a>'
             b"junk</D:prop></D:set></D:propertyupdate>")
    assert dav(server, "PROPPATCH", "/pp/victim.txt", patch).status_code == 207
    for path in ("/", "/own/", "/pp/"):
        answer = dav(server, "PROPFIND", path, Depth="1")
        assert answer.status_code == 207, (path, answer.text)
        ET.fromstring(answer.content)  # a body XML parsers read


def test_the_top_folder_is_never_locked_and_no_lock_outlives_an_hour(
        server: ServerProcess) -> None:
    assert dav(server, "LOCK", "/", LOCK_BODY, Timeout="Infinite").status_code == 403
    (server.root / "a.txt").write_bytes(b"a")
    answer = dav(server, "LOCK", "/a.txt", LOCK_BODY, Timeout="Infinite, Second-99999999")
    assert answer.status_code == 200
    timeout = ET.fromstring(answer.content).findtext(".//{DAV:}timeout") or ""
    assert timeout.startswith("Second-") and int(timeout[7:]) <= 3600
    assert dav(server, "PUT", "/b.txt", b"b").status_code == 201  # the rest stays writable


def test_a_lock_token_is_good_only_for_the_user_who_took_it(
        start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(tls={"enabled": True}, users=users_config())
    (server.root / "teams" / "sales").mkdir(parents=True)
    (server.root / "teams" / "sales" / "plan.txt").write_bytes(b"plan")
    urllib3.disable_warnings()
    base = f"https://127.0.0.1:{server.port}"

    def as_user(user: str, method: str, path: str, body: bytes = b"",
                **headers: str) -> requests.Response:
        return requests.request(method, base + path, data=body, verify=False,
                                auth=(user, PASSWORDS[user]), timeout=TIMEOUT,
                                headers={k.replace("_", "-"): v for k, v in headers.items()})

    taken = as_user("alice", "LOCK", "/teams/sales/plan.txt", LOCK_BODY)
    assert taken.status_code == 200
    token = taken.headers["Lock-Token"].strip("<>")
    # carol sees the same file as /plan.txt (her home), and learns the token...
    assert token in as_user("carol", "PROPFIND", "/plan.txt", Depth="0").text
    # ...but it is not hers to write with or to remove.
    assert as_user("carol", "PUT", "/plan.txt", b"carol's", If=f"(<{token}>)").status_code in (
        412, 423)
    assert as_user("carol", "UNLOCK", "/plan.txt", Lock_Token=f"<{token}>").status_code == 403
    assert (server.root / "teams" / "sales" / "plan.txt").read_bytes() == b"plan"
    assert as_user("alice", "PUT", "/teams/sales/plan.txt", b"alice's",
                   If=f"(<{token}>)").status_code in (200, 204)


def test_lock_owners_and_counts_are_bounded(server: ServerProcess) -> None:
    (server.root / "amp").mkdir()
    huge = LOCK_BODY.replace(b"mailto:ann@office.lan", b"x" * 100_000)
    assert dav(server, "LOCK", "/amp/", huge).status_code == 400
    shared = LOCK_BODY.replace(b"<D:exclusive/>", b"<D:shared/>")
    statuses = [dav(server, "LOCK", "/amp/", shared).status_code for _ in range(20)]
    assert statuses.count(200) == 16 and statuses[16:] == [423] * 4


def test_a_name_xml_cannot_hold_is_left_out_of_listings(server: ServerProcess) -> None:
    (server.root / "uni").mkdir()
    assert dav(server, "PUT", "/uni/a%EF%BF%BEb.txt", b"x").status_code == 201
    (server.root / "uni" / "fine.txt").write_bytes(b"y")
    found = props_of(dav(server, "PROPFIND", "/uni/", Depth="1"))
    assert set(found) == {"/uni/", "/uni/fine.txt"}


def test_odd_headers_and_bodies_get_400_never_500(server: ServerProcess) -> None:
    (server.root / "t.txt").write_bytes(b"t")
    bogus = b'<?xml version="1.0" encoding="bogus"?><a/>'
    assert dav(server, "PROPFIND", "/", bogus, Depth="0").status_code == 400
    assert dav(server, "COPY", "/t.txt", Destination="http://[::1/x").status_code == 400
    assert dav(server, "PUT", "/t.txt", b"t2",
               If='<http://[::1/x> (["x"])').status_code == 412
    assert dav(server, "COPY", "/t.txt", Destination="/c.txt", Depth="1").status_code == 400
    assert dav(server, "MOVE", "/t.txt", Destination="/m.txt", Depth="0").status_code == 400
    assert dav(server, "COPY", "/t.txt",
               Destination="ftp://127.0.0.1/c.txt").status_code == 502
    assert "internal error" not in server.log and "Traceback" not in server.log


def test_a_destination_in_utf8_names_that_file(server: ServerProcess) -> None:
    (server.root / "t.txt").write_bytes(b"t")
    request = ("COPY /t.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nDestination: /caf\u00e9.txt\r\n"
               "Content-Length: 0\r\nConnection: close\r\n\r\n").encode("utf-8")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 201"), answer
    assert (server.root / "caf\u00e9.txt").read_bytes() == b"t"


def test_a_lock_taken_while_an_upload_runs_stops_it_from_publishing(
        server: ServerProcess) -> None:
    (server.root / "race.txt").write_bytes(b"old")
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"PUT /race.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        time.sleep(0.5)
        assert lock(server, "/race.txt")[0].status_code == 200
        sock.sendall(b"67890")
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 423"), answer
    assert (server.root / "race.txt").read_bytes() == b"old"


def test_a_depth_0_folder_lock_guards_its_members_list_not_their_bytes(
        server: ServerProcess) -> None:
    (server.root / "d0").mkdir()
    (server.root / "d0" / "member.txt").write_bytes(b"m")
    assert lock(server, "/d0/", Depth="0")[0].status_code == 200
    assert dav(server, "PUT", "/d0/member.txt", b"new bytes").status_code in (200, 204)
    assert dav(server, "PUT", "/d0/another.txt", b"x").status_code == 423
    assert dav(server, "DELETE", "/d0/member.txt").status_code == 423


def test_a_refused_lock_of_a_new_name_leaves_no_file(server: ServerProcess) -> None:
    (server.root / "held").mkdir()
    assert lock(server, "/held/", Depth="infinity")[0].status_code == 200
    assert dav(server, "LOCK", "/held/new.txt", LOCK_BODY).status_code == 423
    assert not (server.root / "held" / "new.txt").exists()


def test_lockroot_names_the_folder_the_lock_was_taken_on(server: ServerProcess) -> None:
    (server.root / "lk").mkdir()
    (server.root / "lk" / "g.txt").write_bytes(b"g")
    assert lock(server, "/lk/", Depth="infinity")[0].status_code == 200
    answer = dav(server, "PROPFIND", "/lk/g.txt", (
        b'<D:propfind xmlns:D="DAV:"><D:prop><D:lockdiscovery/></D:prop></D:propfind>'),
        Depth="0")
    assert ET.fromstring(answer.content).findtext(".//{DAV:}lockroot/{DAV:}href") == "/lk"
