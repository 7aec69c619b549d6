"""The pytest plugin (entry point ``pytest11``, loaded in every pytest run of an
environment where sa-signals is installed) imports neither sa-signals nor
SQLAlchemy until a test uses one of its fixtures: a project that never uses
them gets no listener installed behind its back."""

from __future__ import annotations

import pytest

CHECK = """
import sys


def test_a_test_without_its_fixtures(request):
    assert request.config.pluginmanager.has_plugin("sa_signals")  # loaded...
    assert "sa_signals" not in sys.modules  # ...and nothing imported
    assert "sqlalchemy" not in sys.modules


def test_a_test_using_one(capture):
    assert "sa_signals" in sys.modules
"""


def test_the_plugin_imports_nothing_until_a_fixture_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_check=CHECK)
    # In a process of its own, as a project's own pytest run; -p keeps the order
    # of tests: the first runs before anything asked for sa-signals.
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
