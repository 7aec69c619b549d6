"""What a user may depend on: the names of the public modules' ``__all__``,
and nothing else. A module of the implementation lists in its ``__all__`` only
what a public module re-exports from it, so that ``from module import *``, an
IDE's completion and the API reference never offer a helper as if it were API."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path
from types import ModuleType

import pytest

import sa_signals

PUBLIC_MODULES = [
    "sa_signals",
    "sa_signals.auth",
    "sa_signals.celery",
    "sa_signals.migrations",
    "sa_signals.testing",
    "sa_signals.tracing",
    "sa_signals.types",
]


def all_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(sa_signals.__path__, "sa_signals.")
        if not info.name.endswith(".__main__")  # running it is its whole job
    )


def public_objects() -> set[tuple[str, int]]:
    """What the public modules export: each name with the identity of its object."""
    return {
        (attribute, id(getattr(module, attribute)))
        for module in map(importlib.import_module, PUBLIC_MODULES)
        for attribute in module.__all__
    }


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_a_public_modules_names_all_exist(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__all__, f"{name} exports nothing"
    assert [attribute for attribute in module.__all__ if not hasattr(module, attribute)] == []


@pytest.mark.parametrize("name", [m for m in all_modules() if m not in PUBLIC_MODULES])
def test_a_module_of_the_implementation_lists_only_public_names(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} says nothing of what it exports"
    exported = public_objects()
    assert [
        each for each in module.__all__ if (each, id(getattr(module, each))) not in exported
    ] == []


def test_the_version_is_the_one_pyproject_toml_declares() -> None:
    """Read from the installed metadata, which the build took from pyproject.toml
    (in CI's wheel job too: the sdist's tests sit beside its pyproject.toml)."""
    pyproject = Path(__file__).parents[1] / "pyproject.toml"
    declared = tomllib.loads(pyproject.read_text())["project"]["version"]
    assert sa_signals.__version__ == declared
