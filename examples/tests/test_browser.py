"""The demo end to end, as a newcomer sees it: ``python -m examples.flask_app``
serving on 127.0.0.1, driven by a real headless Chromium (Debian's, through
Playwright), on each database. The audit page's screenshot is kept in the test's
temporary directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from examples.blog.seed import DEMO_PASSWORD, DEMO_USERNAME, seed
from examples.tests.conftest import ROOT
from sa_signals import raw_mode
from tests.chromium import launched_chromium, screenshots_directory
from tests.databases import Database


@pytest.fixture
def demo_url(demo_database: Database, app: Flask, engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The demo seeded (in the app's context, as ``blog`` is), and served by
    ``python -m examples.flask_app`` on a free port."""
    with app.app_context(), Session(engine) as session, raw_mode(session):
        seed(session)
        session.commit()
    port = free_port()
    log = tmp_path / "server.log"
    with (
        log.open("w") as output,
        subprocess.Popen(
            [sys.executable, "-m", "examples.flask_app"],
            cwd=ROOT,
            env={
                **os.environ,
                "DATABASE_URL": demo_database.url.render_as_string(hide_password=False),
                "PORT": str(port),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        ) as server,
    ):
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_served(url, server, log)
            yield url
        finally:
            server.terminate()
            server.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_served(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the demo server exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"the demo server did not answer at {url} within 30 s:\n{log.read_text()}")


@pytest.fixture
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


def test_log_in_edit_a_post_and_see_it_in_the_audit_log(
    demo_url: str, chromium: Browser, demo_database: Database, tmp_path: Path
) -> None:
    page = chromium.new_page()
    page.goto(f"{demo_url}/login")
    page.get_by_label("Username").fill(DEMO_USERNAME)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Wrong username or password.")).to_be_visible()

    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(f"Hello, {DEMO_USERNAME}.")).to_be_visible()

    page.get_by_role("link", name="Welcome to the sa-signals demo").click()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Title").fill("Edited in a real browser")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Post saved.")).to_be_visible()

    page.get_by_role("link", name="Audit log").click()
    log = page.locator("#audit-log")
    expect(log).to_contain_text("updated")
    expect(log).to_contain_text("Edited in a real browser")
    expect(log).to_contain_text('"Welcome to the sa-signals demo", "Edited in a real browser"')
    expect(log).to_contain_text("logged in")
    expect(log).to_contain_text('"password": "********************"')
    screenshot = screenshots_directory(tmp_path, "demo") / f"audit-log-{demo_database.backend}.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0
