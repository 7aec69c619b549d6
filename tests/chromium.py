"""A real headless Chromium for the tests that look at pages as a reader does:
Debian's package at /usr/bin/chromium, driven by Playwright (which never
downloads a browser of its own)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def screenshots_directory(tmp_path: Path, kind: str) -> Path:
    """Where a test leaves its screenshots: the test's temporary directory, or
    ``$SA_SIGNALS_SCREENSHOTS/<kind>`` when set (CI sets it, since pytest keeps
    only its last few temporary directories, and later runs prune them)."""
    root = os.environ.get("SA_SIGNALS_SCREENSHOTS")
    if not root:
        return tmp_path
    directory = Path(root) / kind
    directory.mkdir(parents=True, exist_ok=True)
    return directory
