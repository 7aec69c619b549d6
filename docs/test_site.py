"""The documentation site as a reader gets it.

It is built from the source tree with every warning an error and every
cross-reference checked (``sphinx-build -W --keep-going -n``, as CI builds it),
then opened from disk in a real headless Chromium: the start page, the model
signals page with its diagram, and the API reference. The site must work with no
network: every request the pages make is to a file of the site itself. The
screenshots are kept in each test's temporary directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.chromium import launched_chromium, screenshots_directory
from tests.databases import unavailable

DOCS = Path(__file__).parent


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built from scratch into a directory of this test run."""
    if shutil.which("dot") is None:
        unavailable(
            "Graphviz's dot, which draws the diagrams, is not installed (apt-get install graphviz)"
        )
    html = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-E", DOCS, html],
        capture_output=True,
        text=True,
    )
    problems = [line for line in build.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert build.returncode == 0, "\n".join(problems) or build.stderr
    assert problems == []
    return html


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def page(chromium: Browser, site: Path) -> Iterator[Page]:
    """A page that records every URL it requests, to prove nothing leaves the site."""
    page = chromium.new_page(viewport={"width": 1280, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    yield page
    outside = [url for url in requested if not url.startswith(site.as_uri())]
    assert outside == [], f"the site fetched something from outside itself: {outside}"
    page.close()


def open_page(page: Page, site: Path, name: str) -> None:
    page.goto((site / name).as_uri())
    page.wait_for_load_state("load")


def test_the_start_page_says_what_the_project_is_and_leads_into_the_guide(
    page: Page, site: Path, tmp_path: Path
) -> None:
    open_page(page, site, "index.html")
    expect(page.get_by_role("heading", name="sa-signals", level=1)).to_be_visible()
    navigation = page.locator(".sidebar-tree")
    for title in ("Getting started", "Coming from Django", "Model signals", "API reference"):
        expect(navigation.get_by_role("link", name=title, exact=True)).to_be_visible()
    screenshots = screenshots_directory(tmp_path, "docs")
    page.screenshot(path=screenshots / "start-page.png", full_page=True)


def test_the_model_signals_page_draws_its_timeline_of_a_flush_and_a_commit(
    page: Page, site: Path, tmp_path: Path
) -> None:
    open_page(page, site, "model-signals.html")
    expect(page.get_by_role("heading", name="Model signals", level=1)).to_be_visible()
    diagram = page.locator(".graphviz").first
    diagram.scroll_into_view_if_needed()
    expect(diagram).to_be_visible()
    box = diagram.bounding_box()
    assert box is not None
    assert box["width"] > 300
    assert box["height"] > 100
    # An SVG drawn by Graphviz at build time, its labels text a reader can search.
    drawing = diagram.locator('object[type="image/svg+xml"]').first
    svg = (site / "model-signals.html").parent / str(drawing.get_attribute("data"))
    for moment in ("pre_save", "post_save", "on_commit", "SAVEPOINT"):
        assert moment in svg.read_text(), f"the diagram does not show {moment}"
    screenshots = screenshots_directory(tmp_path, "docs")
    diagram.screenshot(path=screenshots / "model-signals-diagram.png")
    page.screenshot(path=screenshots / "model-signals.png", full_page=True)


def test_the_api_reference_documents_every_public_name_from_its_docstring(
    page: Page, site: Path, tmp_path: Path
) -> None:
    open_page(page, site, "api/sa_signals.html")
    expect(page.get_by_role("heading", name="sa_signals", level=1)).to_be_visible()
    for name in ("sa_signals.post_save", "sa_signals.receiver", "sa_signals.on_commit"):
        entry = page.locator(f'dt[id="{name}"]')
        expect(entry).to_be_visible()
    expect(page.locator('dt[id="sa_signals.post_save"] + dd')).to_contain_text("created")
    screenshots = screenshots_directory(tmp_path, "docs")
    page.screenshot(path=screenshots / "api-reference.png", full_page=True)
