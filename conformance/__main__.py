"""``python -m conformance``: SQLAlchemy's own ORM tests, in every mode, judged
against the baseline.

Options: ``--modes`` (default: all four), ``--workers`` (pytest-xdist, default
2), ``--write-unfixed`` (rewrite ``unfixed.txt`` from this run's unexplained
differences), ``-k`` (passed to pytest, to look at a few tests). The baseline,
which does not depend on sa-signals, is run once per SQLAlchemy and Python
version and kept in the cache. Exits non-zero when a mode has a difference that
neither list explains, or a listed one that is gone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from conformance.plugin import MODES
from conformance.results import (
    UNFIXED,
    Judgement,
    counts,
    judge,
    outcomes,
    read_allowed,
    read_unfixed,
)
from conformance.sdist import CACHE, installed_version, test_files, unpacked_sdist

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    version = installed_version()
    sdist = unpacked_sdist(version)
    orm_tests, asyncio_tests = test_files(sdist)
    results = CACHE / "results" / f"{version}-py{sys.version_info.major}{sys.version_info.minor}"
    print(f"SQLAlchemy {version}'s own tests, from {sdist}", flush=True)

    modes = ["baseline", *(mode for mode in options.modes if mode != "baseline")]
    for mode in modes:
        out = results / mode
        ran = [*orm_tests, *asyncio_tests, options.k or ""]
        if mode == "baseline" and _ran(out) == ran:
            # sa-signals plays no part in it: one run per SQLAlchemy and Python.
            print(f"  baseline: kept from {out}", flush=True)
            continue
        started = time.monotonic()
        _run(mode, sdist, orm_tests, asyncio_tests, out, options)
        (out / "ran.txt").write_text("\n".join(ran))
        print(f"  {mode}: {time.monotonic() - started:.0f} s", flush=True)

    baseline = outcomes(results / "baseline")
    allowed, unfixed = read_allowed(), read_unfixed()
    judgements = [
        judge(mode, baseline, outcomes(results / mode), allowed, unfixed)
        for mode in modes
        if mode != "baseline"
    ]
    _report(baseline, judgements, results, options)
    if options.write_unfixed:
        _write_unfixed(judgements)
        return 0
    return 0 if all(judgement.clean for judgement in judgements) else 1


def _ran(out: Path) -> list[str] | None:
    """The test paths (and -k) of the run kept in ``out``, if it finished."""
    ran = out / "ran.txt"
    return ran.read_text().split("\n") if ran.exists() else None


def _run(
    mode: str,
    sdist: Path,
    orm_tests: list[str],
    asyncio_tests: list[str],
    out: Path,
    options: argparse.Namespace,
) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    environment = {
        **os.environ,
        "SA_SIGNALS_CONFORMANCE_MODE": mode,
        "SA_SIGNALS_CONFORMANCE_OUT": str(out),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    runs = {
        "orm": (orm_tests, []),
        "asyncio": (asyncio_tests, ["--dburi", "sqlite+aiosqlite:///:memory:"]),
    }
    for name, (paths, extra) in runs.items():
        if not paths:
            continue
        command = [
            *(sys.executable, "-m", "pytest", *paths, *extra),
            # Our own entry point would import SQLAlchemy (the installed one)
            # before the sdist's conftest puts its lib/ first.
            *("-p", "no:sa_signals", "-p", "no:cacheprovider", "-p", "conformance.plugin"),
            *("-o", "addopts=", "-q", "--tb=no", "-n", str(options.workers)),
            f"--junitxml={out / f'junit-{name}.xml'}",
            *(["-k", options.k] if options.k else []),
        ]
        completed = subprocess.run(
            command,
            cwd=sdist,
            env={**environment, "SA_SIGNALS_CONFORMANCE_RUN": name},
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode not in (0, 1):  # 1: some tests failed, which we judge
            print(completed.stdout[-5000:], completed.stderr[-5000:], sep="\n")
            raise SystemExit(f"the {mode} run of {name} ended with {completed.returncode}")


def _report(
    baseline: dict[str, str],
    judgements: list[Judgement],
    results: Path,
    options: argparse.Namespace,
) -> None:
    print()
    print("| mode | passed | failed | skipped | differences | allowed | unfixed | new | stale |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| baseline | {_counts(baseline)} | | | | | |")
    for judgement in judgements:
        mode_outcomes = outcomes(results / judgement.mode)
        print(
            f"| {judgement.mode} | {_counts(mode_outcomes)} | {len(judgement.differences)} "
            f"| {len(judgement.allowed)} | {len(judgement.unfixed)} | {len(judgement.new)} "
            f"| {len(judgement.stale)} |"
        )
    for judgement in judgements:
        counted = counts(results / judgement.mode)
        if counted.calls:
            by_file = counted.calls_by_file
            silent = sorted(file for file, count in by_file.items() if not count)
            print(f"\n{judgement.mode}: receiver calls {dict(sorted(counted.calls.items()))}")
            print(
                f"  {len(by_file) - len(silent)} of {len(by_file)} test files called receivers; "
                f"listeners put back after SQLAlchemy wiped them: {counted.listeners_restored}"
            )
            if silent:
                print(f"  files with no call: {', '.join(silent)}")
            documented = counted.tests_with_documented_selects
            print(
                f"  {len(documented)} tests pass once sa-signals' documented SELECTs are left "
                "out of their SQL assertions (see --list-selects)"
            )
            if options.list_selects:
                for test in sorted(documented):
                    print(f"    {test}")
        for title, tests in (("new", judgement.new), ("stale", judgement.stale)):
            for test in tests:
                before, after = judgement.differences.get(test, ("-", "-"))
                print(f"{judgement.mode}: {title}: {test} ({before} -> {after})")


def _counts(found: dict[str, str]) -> str:
    values = list(found.values())
    failed = values.count("failed") + values.count("error")
    return f"{values.count('passed')} | {failed} | {values.count('skipped')}"


def _write_unfixed(judgements: list[Judgement]) -> None:
    lines = [
        "# Differences from SQLAlchemy's baseline that sa-signals still makes, by mode and",
        "# test: behaviour changes to fix (issue 16), never to allow. python -m conformance",
        "# fails on a new one, and on one listed here that is gone (delete its line).",
    ]
    judged = {judgement.mode for judgement in judgements}
    kept = sorted((mode, test) for mode, test in read_unfixed() if mode not in judged)
    lines += [f"{mode} {test}" for mode, test in kept]  # modes this run left out
    for judgement in judgements:
        lines += [f"{judgement.mode} {test}" for test in [*judgement.unfixed, *judgement.new]]
    UNFIXED.write_text("\n".join(lines) + "\n")
    print(f"\nwrote {UNFIXED}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance")
    parser.add_argument("--modes", type=lambda text: text.split(","), default=list(MODES))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write-unfixed", action="store_true")
    parser.add_argument(
        "--list-selects",
        action="store_true",
        help="name the tests that pass once sa-signals' documented SELECTs are left out",
    )
    parser.add_argument("-k", help="pytest's -k, to look at a few tests")
    return parser


if __name__ == "__main__":
    sys.exit(main())
