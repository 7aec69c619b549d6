"""SQLAlchemy's sdist, for its tests: fetched from the package index with pip
once per version, and kept in a cache directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

__all__ = ["CACHE", "installed_version", "test_files", "unpacked_sdist"]

CACHE = Path(
    os.environ.get(
        "SA_SIGNALS_CONFORMANCE_CACHE", Path.home() / ".cache" / "sa-signals-conformance"
    )
)

# The ORM tests that exercise what sa-signals listens to: the unit of work,
# cascades, transactions, events, versioning, natural primary keys, cycles,
# expiry, the session, merge, the DML statements and inheritance.
ORM_TESTS = [
    "test/orm/test_unitofwork.py",
    "test/orm/test_unitofworkv2.py",
    "test/orm/test_cascade.py",
    "test/orm/test_transaction.py",
    "test/orm/test_events.py",
    "test/orm/test_versioning.py",
    "test/orm/test_naturalpks.py",
    "test/orm/test_cycles.py",
    "test/orm/test_expire.py",
    "test/orm/test_session.py",
    "test/orm/test_merge.py",
    "test/orm/inheritance",
]
# Where each SQLAlchemy line keeps the rest: 2.1 moved the DML tests into a
# directory, and renamed the asyncio session tests.
DML_TESTS = ["test/orm/dml", "test/orm/test_bulk.py", "test/orm/test_update_delete.py"]
ASYNCIO_TESTS = ["test/ext/asyncio/test_session.py", "test/ext/asyncio/test_session_py3k.py"]


def installed_version() -> str:
    return version("SQLAlchemy")


def unpacked_sdist(sqlalchemy_version: str) -> Path:
    """The root of the unpacked sdist of ``sqlalchemy_version``, fetched with pip
    on first use."""
    root = CACHE / f"sqlalchemy-{sqlalchemy_version}"
    if (root / "test" / "conftest.py").exists():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"sqlalchemy-{sqlalchemy_version}.tar.gz"
    if not archive.exists():
        print(f"fetching the sdist of SQLAlchemy {sqlalchemy_version} with pip", flush=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                # The sdist of SQLAlchemy alone: its build requirements (Cython)
                # come as wheels, not compiled from their own sdists (minutes).
                *("--no-binary", "SQLAlchemy", "--dest", str(CACHE)),
                f"SQLAlchemy=={sqlalchemy_version}",
            ],
            # pip reads the sdist's metadata, which would otherwise compile
            # SQLAlchemy's Cython extensions first (minutes); the tests run on
            # the pure-Python lib/ anyway.
            env={**os.environ, "DISABLE_SQLALCHEMY_CEXT": "1"},
            check=True,
        )
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return root


def test_files(root: Path) -> tuple[list[str], list[str]]:
    """The ORM test paths, and the asyncio session test paths, that exist in this sdist."""
    orm = [path for path in [*ORM_TESTS, *DML_TESTS] if (root / path).exists()]
    asyncio = [path for path in ASYNCIO_TESTS if (root / path).exists()]
    return orm, asyncio
