"""The version, as installed: ``pyproject.toml`` is the one place it is written,
and the distribution's metadata is where Python keeps it at run time."""

from importlib.metadata import version

__all__: list[str] = []  # sa_signals.__version__ is its public name

__version__ = version("sa-signals")
