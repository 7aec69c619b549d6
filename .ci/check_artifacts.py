"""What we would publish, checked file by file: ``python .ci/check_artifacts.py DIST``.

The wheel is the package alone (with ``py.typed``, and the pytest plugin beside
it); the sdist is the package and what it takes to check it (license, README,
changelog, tests). Every classifier must be one PyPI accepts. twine and
check-wheel-contents check the formats; this checks that the right files are in.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

from trove_classifiers import classifiers as known_classifiers


def main(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    problems = check_wheel(wheel) + check_sdist(sdist)
    for problem in problems:
        print(f"  {problem}")
    if problems:
        sys.exit(f"{len(problems)} problem(s) in {dist}")
    print(f"{wheel.name} and {sdist.name} hold what they should")


def check_wheel(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    top_levels = {name.split("/")[0] for name in names}
    problems = [
        f"wheel: {required} is missing"
        for required in ("sa_signals/__init__.py", "sa_signals/py.typed", "sa_signals_pytest.py")
        if required not in names
    ]
    problems += [
        f"wheel: {name} does not belong in it"
        for name in sorted(top_levels)
        if name not in {"sa_signals", "sa_signals_pytest.py"} and not name.endswith(".dist-info")
    ]
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in names):
        problems.append("wheel: the license is missing")
    problems += [
        f"wheel metadata: {c!r} is not a trove classifier"
        for c in metadata.get_all("Classifier", [])
        if c not in known_classifiers
    ]
    if metadata["License-Expression"] != "MIT":
        problems.append(f"wheel metadata: License-Expression is {metadata['License-Expression']!r}")
    return problems


def check_sdist(sdist: Path) -> list[str]:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    required = [
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        "pyproject.toml",
        "sa_signals/py.typed",
        "sa_signals_pytest.py",
        "tests/conftest.py",
        "tests/typing/mypy.ini",
    ]
    problems = [f"sdist: {name} is missing" for name in required if name not in names]
    problems += [f"sdist: {name} does not belong in it" for name in names if name.endswith(".pyc")]
    return problems


if __name__ == "__main__":
    main(Path(sys.argv[1]))
