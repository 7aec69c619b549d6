"""Which hasher is used, how tests make it cheap, and life without argon2-cffi."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from sa_signals.auth import set_password_hasher
from sa_signals.auth.hashers import get_password_hasher, hash_password
from tests.auth.conftest import WatchedHasher, run_python


def test_production_hashes_with_argon2_cffis_own_argon2id_defaults() -> None:
    set_password_hasher(None)  # what an application that never configures anything gets

    hasher = get_password_hasher()

    assert type(hasher) is PasswordHasher
    assert hasher.type is Type.ID
    defaults = PasswordHasher()  # argon2-cffi's defaults, whichever its version
    assert (hasher.time_cost, hasher.memory_cost, hasher.parallelism) == (
        defaults.time_cost,
        defaults.memory_cost,
        defaults.parallelism,
    )
    assert hash_password("correct horse").startswith(
        f"$argon2id$v=19$m={defaults.memory_cost},t={defaults.time_cost},p={defaults.parallelism}$"
    )


def test_a_test_suite_installs_a_cheap_hasher_and_gets_the_previous_one_back(
    hasher: WatchedHasher,
) -> None:
    cheaper = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

    assert set_password_hasher(cheaper) is hasher
    assert get_password_hasher() is cheaper
    assert hash_password("correct horse").startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert set_password_hasher(None) is cheaper
    assert get_password_hasher().memory_cost == PasswordHasher().memory_cost


def test_something_that_is_not_a_password_hasher_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"takes an argon2\.PasswordHasher or None, not 'argon2'"):
        set_password_hasher("argon2")  # type: ignore[arg-type]


def test_a_hasher_of_another_argon2_variant_is_refused() -> None:
    # Stored hashes are Argon2id, always: argon2i and argon2d are refused at once.
    with pytest.raises(ValueError, match="takes an Argon2id hasher; this one makes I hashes"):
        set_password_hasher(PasswordHasher(type=Type.I))


def test_importing_sa_signals_and_its_auth_module_needs_no_argon2() -> None:
    result = run_python(
        """
        import sa_signals
        import sa_signals.auth
        from tests.models import User  # the columns alone, as an Alembic env needs them
        print("imported")
        """,
        without_argon2=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "imported"


def test_hashing_without_argon2_names_the_extra_to_install() -> None:
    result = run_python(
        """
        from tests.models import User
        try:
            User(username="alice").set_password("correct horse")
        except ImportError as error:
            print(error)
        """,
        without_argon2=True,
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'sa-signals[auth]'" in result.stdout
