"""The listings of the demo's receivers that the README and the docs show are
the command's real output: each ```text block that starts with
``$ python -m sa_signals receivers ...`` is run from the repository's root, and
must print exactly the lines below it. A receiver added, moved or renamed in the
demo shows up here until the pages say so."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from examples.tests.conftest import ROOT

PAGES = [ROOT / "README.md", ROOT / "docs" / "receivers.md"]
BLOCK = re.compile(
    r"^```text\n\$ (?P<command>[^\n]*python -m sa_signals receivers [^\n]*)\n(?P<output>.*?)^```$",
    re.M | re.S,
)


def documented_listings() -> list[tuple[str, str, str]]:
    found = []
    for page in PAGES:
        for block in BLOCK.finditer(page.read_text()):
            found.append((page.relative_to(ROOT).as_posix(), block["command"], block["output"]))
    return found


def test_the_pages_show_listings() -> None:
    assert {page for page, _, _ in documented_listings()} == {"README.md", "docs/receivers.md"}


@pytest.mark.parametrize(("page", "command", "output"), documented_listings())
def test_a_documented_listing_is_what_the_command_prints(
    page: str, command: str, output: str
) -> None:
    arguments = shlex.split(command)
    assert Path(arguments[0]).name.startswith("python")
    printed = subprocess.run(
        [sys.executable, *arguments[1:]], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert printed == output, f"{page}: {command}"
