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


def test_a_test_using_one(sa_signals_capture):
    assert "sa_signals" in sys.modules
"""


def test_the_plugin_imports_nothing_until_a_fixture_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_check=CHECK)
    # In a process of its own, as a project's own pytest run; -p keeps the order
    # of tests: the first runs before anything asked for sa-signals.
    result = pytester.runpytest_subprocess("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_every_fixture_of_the_plugin_is_named_with_its_prefix(pytester: pytest.Pytester) -> None:
    """The plugin is loaded in every project: a fixture of its own named ``capture``
    would silently give way to a project's ``capture`` (or take the place of a
    plugin's of that name), so each has the ``sa_signals_`` prefix."""
    result = pytester.runpytest_subprocess("--fixtures", "-p", "no:cacheprovider")
    names = fixtures_listed_under(result.outlines, "fixtures defined from sa_signals_pytest")
    assert names == [
        "sa_signals_capture",
        "sa_signals_capture_on_commit_callbacks",
        "sa_signals_mute",
    ]


def test_a_projects_own_capture_and_mute_fixtures_live_beside_the_plugins(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def capture(capsys):  # a project's own meaning of the word
            return capsys

        @pytest.fixture
        def mute():
            return "the project's mute"
        """
    )
    pytester.makepyfile(
        """
        from sa_signals import Signal

        def test_both(capture, mute, sa_signals_capture, sa_signals_mute):
            signal = Signal()
            sends = sa_signals_capture(signal)
            signal.send("sender")
            print("printed")
            assert capture.readouterr().out == "printed\\n"
            assert mute == "the project's mute"
            assert [send["sender"] for send in sends] == ["sender"]
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def fixtures_listed_under(lines: list[str], heading: str) -> list[str]:
    """The fixture names of one section of ``pytest --fixtures``' output."""
    names: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("-") and line.endswith("-"):
            inside = heading in line
        elif inside and line and not line.startswith(" "):
            names.append(line.split()[0])
    return sorted(names)
