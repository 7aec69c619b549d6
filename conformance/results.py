"""Reading a mode's test results, and judging its differences from the baseline."""

from __future__ import annotations

import json
import re
import tomllib
import xml.etree.ElementTree as ElementTree
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Allowed",
    "Counts",
    "Judgement",
    "counts",
    "judge",
    "outcomes",
    "read_allowed",
    "read_unfixed",
]

HERE = Path(__file__).parent
ALLOWED = HERE / "allowed.toml"
UNFIXED = HERE / "unfixed.txt"

# The only kinds of difference the allowed list may hold.
KINDS = {
    "extra-select": "an extra SELECT the README documents, which the test counts",
    "fake-arguments": "the test fires an event by hand, with arguments SQLAlchemy never passes",
}


def outcomes(directory: Path) -> dict[str, str]:
    """Each test's outcome (passed, failed, error, skipped), by its id, from
    the JUnit XML files of one mode."""
    found: dict[str, str] = {}
    for report in sorted(directory.glob("junit-*.xml")):
        for case in ElementTree.parse(report).getroot().iter("testcase"):
            test = f"{case.get('classname')}::{case.get('name')}"
            if case.find("error") is not None:
                found[test] = "error"
            elif case.find("failure") is not None:
                found[test] = "failed"
            elif case.find("skipped") is not None:
                found[test] = "skipped"
            else:
                found[test] = "passed"
    return found


@dataclass
class Counts:
    """What the plugin counted in one mode's run."""

    calls: Counter[str] = field(default_factory=Counter)  # receiver calls, by signal
    calls_by_file: Counter[str] = field(default_factory=Counter)
    listeners_restored: int = 0  # put back after SQLAlchemy's fixtures wiped them
    # Tests whose SQL assertions saw sa-signals' documented SELECTs (left out).
    tests_with_documented_selects: list[str] = field(default_factory=list)


def counts(directory: Path) -> Counts:
    total = Counts()
    for report in directory.glob("counts-*.json"):
        found = json.loads(report.read_text())
        total.calls.update(found["calls"])
        total.calls_by_file.update(found["calls_by_file"])
        total.listeners_restored += found["listeners_restored"]
        total.tests_with_documented_selects += found["tests_with_documented_selects"]
    return total


@dataclass(frozen=True)
class Allowed:
    test: str  # a test id, or a pattern (* for anything) of the ids of a parametrized test
    modes: frozenset[str]
    kind: str
    reason: str


def read_allowed(path: Path = ALLOWED) -> list[Allowed]:
    entries = tomllib.loads(path.read_text()).get("allowed", [])
    allowed = []
    for entry in entries:
        if entry.get("kind") not in KINDS or not entry.get("reason"):
            raise ValueError(
                f"{path.name}: {entry.get('test')!r} needs a kind (one of {sorted(KINDS)}) "
                "and a reason"
            )
        allowed.append(
            Allowed(entry["test"], frozenset(entry["modes"]), entry["kind"], entry["reason"])
        )
    return allowed


def read_unfixed(path: Path = UNFIXED) -> set[tuple[str, str]]:
    """The (mode, test) pairs of differences still to fix."""
    if not path.exists():
        return set()
    pairs = set()
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            mode, test = line.split(" ", 1)
            pairs.add((mode, test))
    return pairs


@dataclass
class Judgement:
    """One mode's differences from the baseline, sorted by what may explain them."""

    mode: str
    differences: dict[str, tuple[str, str]]  # test -> (baseline outcome, this mode's)
    allowed: list[str] = field(default_factory=list)
    unfixed: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # listed, yet no longer different

    @property
    def clean(self) -> bool:
        return not self.new and not self.stale


def judge(
    mode: str,
    baseline: dict[str, str],
    results: dict[str, str],
    allowed: list[Allowed],
    unfixed: set[tuple[str, str]],
) -> Judgement:
    tests = baseline.keys() | results.keys()
    differences = {
        test: (baseline.get(test, "absent"), results.get(test, "absent"))
        for test in sorted(tests)
        if baseline.get(test) != results.get(test)
    }
    allowed_here = [entry.test for entry in allowed if mode in entry.modes]
    unfixed_here = {test for listed_mode, test in unfixed if listed_mode == mode}
    judgement = Judgement(mode, differences)
    used: set[str] = set()
    for test in differences:
        patterns = [pattern for pattern in allowed_here if _matches(test, pattern)]
        if patterns:
            judgement.allowed.append(test)
            used.update(patterns)
        elif test in unfixed_here:
            judgement.unfixed.append(test)
        else:
            judgement.new.append(test)
    judgement.stale = sorted({*(set(allowed_here) - used), *(unfixed_here - differences.keys())})
    return judgement


def _matches(test: str, pattern: str) -> bool:
    """``*`` stands for anything; every other character for itself (test ids
    hold brackets, which fnmatch would read as a set)."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), test) is not None
