"""tus uploads by the JavaScript clients people deploy: tus-js-client in Node.js, Uppy in Chromium.

Both come from the npm registry at the versions in tests/js/package-lock.json
(``.ci/run`` installs them with ``npm ci``). Each upload is cut by the cutting proxy
and must resume from what the server holds, sending the rest and no more: within
one run by the client's own retries, and in a second run that finds the cut upload
in tus-js-client's URL storage, as a program started again would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ftserver.http.browser import chromium
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

KiB = 1 << 10
MiB = 1 << 20
JS = Path(__file__).resolve().parents[2] / "js"
UPLOADER = JS / "tus_upload.js"
UPPY_BUNDLE = JS / "node_modules" / "uppy" / "dist" / "uppy.min.js"
RUN_TIMEOUT = 60
SLACK = 64 * KiB  # what a cut connection carried past the server's last write


def node_modules() -> None:
    if shutil.which("node") is None:
        pytest.fail("Node.js is not installed (apt-get install nodejs): .ci/run installs it")
    if not (JS / "node_modules" / "tus-js-client").is_dir() or not UPPY_BUNDLE.is_file():
        pytest.fail("the JavaScript test clients are not installed: npm ci --prefix tests/js "
                    "(.ci/run does it)")


def repr_digest(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def run_tus_js(endpoint: str, source: Path, name: str, urls: Path, chunk: int,
               retry_delays: str) -> tuple[int, list[dict[str, Any]]]:
    """One run of tus_upload.js: its exit code and the JSON lines it printed."""
    node_modules()
    done = subprocess.run(
        ["node", str(UPLOADER), endpoint, str(source), name, str(urls), str(chunk),
         retry_delays], capture_output=True, timeout=RUN_TIMEOUT, cwd=JS)
    events = [json.loads(line) for line in done.stdout.decode().splitlines() if line]
    assert events, done.stderr.decode()
    return done.returncode, events


def answers(events: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [event for event in events if event.get("method") == method]


def test_tus_js_client_resumes_a_cut_upload_by_its_own_retry(
        server: ServerProcess, tmp_path: Path) -> None:
    (server.root / "inbox").mkdir()
    data = os.urandom(4 * MiB + 321)
    source = tmp_path / "scan.pdf"
    source.write_bytes(data)
    with CuttingProxy(server.port, cut_after=MiB + 300 * KiB, direction="c2s",
                      cut_first=1) as proxy:
        code, events = run_tus_js(f"http://127.0.0.1:{proxy.port}/inbox/", source,
                                  "scan.pdf", tmp_path / "urls.json", 8 * MiB, "200,500")
        assert proxy.cuts == 1
        carried = proxy.forwarded["c2s"]
    assert code == 0 and events[-1]["end"] == "success", events
    (resumed,) = [head for head in answers(events, "HEAD") if head["status"] == 200]
    held = int(resumed["offset"])
    assert MiB <= held < MiB + 300 * KiB  # what reached the server before the cut stayed
    assert (server.root / "inbox" / "scan.pdf").read_bytes() == data
    # The first connection carried up to the cut, the second only what the server lacked.
    assert carried < MiB + 300 * KiB + (len(data) - held) + SLACK
    assert answers(events, "PATCH")[-1]["digest"] == repr_digest(data)
    assert not list(server.partials.glob("*.part"))


def test_tus_js_client_started_again_finds_the_cut_upload_and_sends_only_the_rest(
        server: ServerProcess, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 5)
    source = tmp_path / "backup.tar"
    source.write_bytes(data)
    urls = tmp_path / "urls.json"
    with CuttingProxy(server.port, cut_after=MiB, direction="c2s", cut_first=1) as proxy:
        endpoint = f"http://127.0.0.1:{proxy.port}/"
        code, events = run_tus_js(endpoint, source, "backup.tar", urls, 64 * MiB, "")
        assert code == 1 and events[-1]["end"] == "error", events  # no retries: it gives up
        assert not (server.root / "backup.tar").exists()  # nothing half-written shows
        before = proxy.forwarded["c2s"]
        code, events = run_tus_js(endpoint, source, "backup.tar", urls, 64 * MiB, "")
        resent = proxy.forwarded["c2s"] - before
    assert code == 0 and events[-1]["end"] == "success", events
    assert "resuming" in events[0]
    (resumed,) = answers(events, "HEAD")
    held = int(resumed["offset"])
    assert MiB // 2 <= held < MiB  # (a reset drops what the server had not yet read)
    assert not answers(events, "POST")  # the same upload, not a new one
    assert (server.root / "backup.tar").read_bytes() == data
    assert len(data) - held <= resent < len(data) - held + 8 * KiB
    assert json.loads(urls.read_text() or "{}") == {}  # forgotten once it is done


UPPY_UPLOAD = """
const [size, endpoint, done] = arguments;
const bytes = new Uint8Array(size);
for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 12)) & 255;
const uppy = new Uppy.Uppy({ autoProceed: false });
const heads = [];
uppy.use(Uppy.Tus, { endpoint, chunkSize: 8 * 1024 * 1024, retryDelays: [200, 500, 1000],
                     onAfterResponse(request, response) {
                       if (request.getMethod() === "HEAD")
                         heads.push(Number(response.getHeader("Upload-Offset")));
                     } });
uppy.addFile({ name: "minutes.odt", type: "application/octet-stream",
               data: new Blob([bytes]) });
uppy.upload().then((result) => done({ ok: result.successful.length,
                                      failed: result.failed.map((f) => String(f.error)),
                                      heads }),
                   (error) => done({ ok: 0, failed: [String(error)], heads }));
"""


def uppy_bytes(size: int) -> bytes:
    """The bytes UPPY_UPLOAD makes in the page, made the same way here."""
    return bytes((i * 7 + (i >> 12)) & 255 for i in range(size))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def test_uppy_in_chromium_resumes_an_upload_cut_by_a_dropped_link(
        browser: object, server: ServerProcess) -> None:
    node_modules()
    size = 2 * MiB + 77
    cut = MiB + MiB // 2
    (server.root / "minutes").mkdir()
    # Every connection drops after 1.5 MiB from the browser. Chromium itself sends a
    # request cut on a reused connection once more, from its first byte: the server
    # answers that replay 409 (its Upload-Offset is no longer the upload's), and then
    # tus-js-client asks where the upload stands (HEAD) and sends the rest from there.
    with CuttingProxy(server.port, cut_after=cut, direction="c2s", max_connections=16) as proxy:
        driver: Any = browser
        origin = f"http://127.0.0.1:{proxy.port}"
        driver.get(f"{origin}/minutes/")  # the share's own page: Uppy runs in its origin
        driver.set_script_timeout(RUN_TIMEOUT)
        driver.execute_script(UPPY_BUNDLE.read_text())
        result = driver.execute_async_script(UPPY_UPLOAD, size, f"{origin}/minutes/")
        assert proxy.cuts >= 1
    assert result["ok"] == 1, result
    data = uppy_bytes(size)
    assert (server.root / "minutes" / "minutes.odt").read_bytes() == data
    (held,) = result["heads"]  # one resume, from what the server held
    assert MiB // 2 <= held < cut  # (a reset drops what the server had not yet read)
    assert server.wait_for_log(r"method=PATCH .*status=204 .*result=ok")
    assert not list(server.partials.glob("*.part"))
