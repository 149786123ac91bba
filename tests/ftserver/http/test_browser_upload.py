"""Uploads from the folder page in headless Chromium: the file picker, bars, SHA-256, resume.

The page's own script sends each chosen file over tus to the folder's URL; the file
appears only whole and checked, and the page shows its SHA-256. An upload cut by a
dropped link (the cutting proxy) resumes when the same file is chosen again,
from what the server holds.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ftserver.http.browser import chromium
from tests.proxy import CuttingProxy
from tests.serverproc import ServerProcess

MiB = 1 << 20
WAIT = 60


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    with chromium(tmp_path / "profile") as driver:
        yield driver


def choose(driver: object, path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "pick-files").send_keys(str(path))  # type: ignore[attr-defined]


def wait_for(driver: object, css: str, count: int = 1) -> list:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(  # type: ignore[arg-type]
        lambda d: (found := d.find_elements(By.CSS_SELECTOR, css)) and len(found) >= count
        and found)


def test_a_file_chosen_on_the_page_is_uploaded_checked_and_listed(
        browser: object, server: ServerProcess, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    (server.root / "inbox").mkdir()
    source = tmp_path / "holiday photo.jpg"
    data = os.urandom(3 * MiB + 11)
    source.write_bytes(data)
    driver = browser
    driver.get(f"http://127.0.0.1:{server.port}/inbox/")  # type: ignore[attr-defined]
    choose(driver, source)
    (done,) = wait_for(driver, "#uploads li.done")
    assert hashlib.sha256(data).hexdigest() in done.text
    assert (server.root / "inbox" / "holiday photo.jpg").read_bytes() == data
    assert driver.find_element(By.ID, "total-bar").get_attribute("value") == str(len(data))  # type: ignore[attr-defined]
    driver.refresh()  # type: ignore[attr-defined]
    names = [link.text for link in driver.find_elements(By.CSS_SELECTOR, "tbody a")]  # type: ignore[attr-defined]
    assert "holiday photo.jpg" in names


def test_an_upload_cut_by_a_dropped_link_resumes_when_the_file_is_chosen_again(
        browser: object, server: ServerProcess, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    source = tmp_path / "big.iso"
    data = os.urandom(5 * MiB)
    source.write_bytes(data)
    # Every connection drops after 2 MiB from the browser, as a flaky Wi-Fi link would:
    # each choice of the file sends what it can, and the next goes on from there.
    with CuttingProxy(server.port, cut_after=2 * MiB, direction="c2s",
                      max_connections=64) as proxy:
        driver = browser
        driver.get(f"http://127.0.0.1:{proxy.port}/")  # type: ignore[attr-defined]
        done = []
        for attempt in range(1, 8):
            choose(driver, source)
            WebDriverWait(driver, WAIT).until(  # type: ignore[arg-type]
                lambda d, n=attempt: len(d.find_elements(By.CSS_SELECTOR, "#uploads li.failed"))
                + len(d.find_elements(By.CSS_SELECTOR, "#uploads li.done")) >= n)
            done = driver.find_elements(By.CSS_SELECTOR, "#uploads li.done")  # type: ignore[attr-defined]
            if done:
                break
            assert not (server.root / "big.iso").exists()  # nothing half-written shows
        assert done, "the upload never finished"
        failed = driver.find_elements(By.CSS_SELECTOR, "#uploads li.failed")  # type: ignore[attr-defined]
        assert failed and "choose it again" in failed[0].text
        text = done[0].text
    assert hashlib.sha256(data).hexdigest() in text
    match = re.search(r"resumed at (\d+) bytes", text)
    assert match is not None, text
    assert int(match.group(1)) >= MiB  # it went on from what the server held
    assert (server.root / "big.iso").read_bytes() == data


def test_a_whole_folder_chosen_on_the_page_arrives_with_its_subfolders(
        browser: object, server: ServerProcess, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    album = tmp_path / "album"
    (album / "sub").mkdir(parents=True)
    (album / "a.txt").write_bytes(b"first\n")
    (album / "sub" / "b.txt").write_bytes(b"second\n")
    driver = browser
    driver.get(f"http://127.0.0.1:{server.port}/")  # type: ignore[attr-defined]
    driver.find_element(By.ID, "pick-folder").send_keys(str(album))  # type: ignore[attr-defined]
    wait_for(driver, "#uploads li.done", count=2)
    assert (server.root / "album" / "a.txt").read_bytes() == b"first\n"
    assert (server.root / "album" / "sub" / "b.txt").read_bytes() == b"second\n"


def test_files_dropped_on_the_page_are_uploaded(browser: object, server: ServerProcess) -> None:
    driver = browser
    driver.get(f"http://127.0.0.1:{server.port}/")  # type: ignore[attr-defined]
    # What a drop from the desktop hands the page: a DataTransfer holding files.
    driver.execute_script(  # type: ignore[attr-defined]
        "const transfer = new DataTransfer();"
        "transfer.items.add(new File(['dropped bytes'], 'dropped.txt'));"
        "document.body.dispatchEvent(new DragEvent('drop', {dataTransfer: transfer,"
        " bubbles: true, cancelable: true}));")
    (done,) = wait_for(driver, "#uploads li.done")
    assert hashlib.sha256(b"dropped bytes").hexdigest() in done.text
    assert (server.root / "dropped.txt").read_bytes() == b"dropped bytes"
