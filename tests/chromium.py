"""A real headless Chromium for the tests that look at pages as a reader does:
Debian's package at /usr/bin/chromium, driven by Playwright (which never
downloads a browser of its own)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

from tests.databases import unavailable

CHROMIUM = "/usr/bin/chromium"
# Chromium as this machine allows it: no sandbox (root), no GPU, no network
# beyond loopback (so nothing in the background tries to reach Google).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def launched_chromium() -> Iterator[Browser]:
    """Chromium, headless; skipped on a laptop without it, a failure in CI."""
    if shutil.which(CHROMIUM) is None:
        unavailable(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
