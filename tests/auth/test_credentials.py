"""Credentials are cleansed before they reach a receiver (and its logs)."""

from __future__ import annotations

import pytest

from sa_signals.auth.credentials import CLEANSED_SUBSTITUTE, cleanse_credentials


def test_the_substitute_is_djangos_twenty_asterisks() -> None:
    assert CLEANSED_SUBSTITUTE == "*" * 20


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "passphrase",
        "PassCode",
        "new_password2",
        "token",
        "otp_token",
        "secret",
        "client_secret",
        "key",
        "api_key",
        "apikey",
        "X-Api",
        "signature",
        "request_Signature",
    ],
)
def test_the_value_of_every_key_that_looks_sensitive_is_replaced(key: str) -> None:
    assert cleanse_credentials({key: "hunter2"}) == {key: CLEANSED_SUBSTITUTE}


@pytest.mark.parametrize("value", [None, "", 123, b"bytes", ["a", "list"], {"a": "dict"}])
def test_a_sensitive_value_is_replaced_whatever_its_type(value: object) -> None:
    assert cleanse_credentials({"password": value}) == {"password": CLEANSED_SUBSTITUTE}


def test_other_keys_keep_their_values() -> None:
    credentials = {"username": "alice", "remember_me": True, "next": "/orders"}
    assert cleanse_credentials(credentials) == credentials


def test_the_callers_credentials_are_left_untouched() -> None:
    credentials = {"username": "alice", "password": "hunter2"}
    cleansed = cleanse_credentials(credentials)
    assert cleansed == {"username": "alice", "password": CLEANSED_SUBSTITUTE}
    assert credentials == {"username": "alice", "password": "hunter2"}
