"""Running code in a fresh interpreter, where nothing was connected or wrapped yet."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Two mapped classes, for code that connects receivers to one and not the other.
WATCHED_AND_IGNORED = """
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

class Base(DeclarativeBase):
    pass

class Watched(Base):
    __tablename__ = "watched"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(default="")

class Ignored(Base):
    __tablename__ = "ignored"
    id: Mapped[int] = mapped_column(primary_key=True)
"""


def run_fresh(code: str, *, prelude: str = "") -> None:
    """Run ``prelude``, then ``code``, in a new Python process; its failure fails
    the test, with its traceback."""
    program = textwrap.dedent(prelude) + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
