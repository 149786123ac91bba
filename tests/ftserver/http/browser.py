"""Headless Chromium (Debian's chromium and chromium-driver) driven by selenium, for tests.

Chromium may reach only 127.0.0.1: every other host name resolves to nothing, and
the background services that phone home (updates, sync, safe browsing, metrics) are
off. Its profile lives in the test's tmp_path. The driver process is stopped by the
test that started it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
LOOPBACK_ONLY = "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


@contextmanager
def chromium(profile: Path) -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium and chromium-driver are not installed (apt-get install "
                    "chromium chromium-driver): .ci/run installs them")
    os.environ["SE_AVOID_STATS"] = "true"  # selenium's own telemetry: off
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--disable-extensions",
                 "--metrics-recording-only", "--disable-domain-reliability",
                 "--safebrowsing-disable-auto-update", "--disable-client-side-phishing-detection",
                 f"--host-resolver-rules={LOOPBACK_ONLY}", f"--user-data-dir={profile}",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
