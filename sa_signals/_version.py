"""The version, as installed: ``pyproject.toml`` is the one place it is written,
and the distribution's metadata is where Python keeps it at run time. A source
tree put on ``sys.path`` without being installed has no metadata, and says so."""

from importlib.metadata import PackageNotFoundError, version

__all__: list[str] = []  # sa_signals.__version__ is its public name

try:
    __version__ = version("sa-signals")
except PackageNotFoundError:  # pragma: no cover - only without an installation
    __version__ = "0+unknown"
