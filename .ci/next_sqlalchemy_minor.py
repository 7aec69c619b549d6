"""The SQLAlchemy minor just above the range pyproject.toml declares (``<2.2``
gives ``2.2``): the one whose pre-release CI tries when the index has one."""

import re
import tomllib
from pathlib import Path

project = tomllib.loads(Path("pyproject.toml").read_text())["project"]
(requirement,) = [d for d in project["dependencies"] if d.lower().startswith("sqlalchemy")]
upper = re.search(r"<\s*(\d+\.\d+)(?![.\d])", requirement)
if upper is None:
    raise SystemExit(f"{requirement!r} declares no upper bound on the minor version")
print(upper.group(1))
