"""The folder page in a real browser: headless Chromium browses, downloads and is not fooled.

It lists the folder, runs the page's own script under the strict policy (the upload
panel shows), fetches a file through a link, and a hostile file name stays text.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ftserver.http.browser import chromium
from tests.serverproc import ServerProcess

HOSTILE = "<img src=x onerror=\"document.title='pwned'\">.txt"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def test_the_page_lists_runs_its_script_and_downloads(browser: object,
                                                      server: ServerProcess) -> None:
    from selenium.webdriver.common.by import By

    (server.root / "docs").mkdir()
    (server.root / "docs" / "report.txt").write_bytes(b"quarterly figures\n")
    (server.root / "docs" / HOSTILE).write_bytes(b"x")
    driver = browser
    driver.get(f"http://127.0.0.1:{server.port}/docs/")  # type: ignore[attr-defined]
    names = [link.text for link in driver.find_elements(By.CSS_SELECTOR, "tbody a")]  # type: ignore[attr-defined]
    assert "report.txt" in names and HOSTILE in names
    assert driver.title != "pwned"  # type: ignore[attr-defined]
    assert not driver.find_elements(By.CSS_SELECTOR, "tbody img")  # type: ignore[attr-defined]
    panel = driver.find_element(By.ID, "upload")  # type: ignore[attr-defined]
    assert panel.is_displayed()  # upload.js ran: the policy lets the page's own script in
    link = driver.find_element(By.LINK_TEXT, "report.txt")  # type: ignore[attr-defined]
    text = driver.execute_async_script(  # type: ignore[attr-defined]
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text()).then(done, e => done('failed: ' + e));",
        link.get_attribute("href"))
    assert text == "quarterly figures\n"
