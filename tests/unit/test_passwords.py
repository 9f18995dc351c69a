"""Password hashing: argon2id at OWASP parameters or stronger (PROPERTIES.md #23).

Hashing costs ~50 ms, so one hash is shared by the module.
"""

from __future__ import annotations

import re

import pytest
from argon2 import PasswordHasher

from cashew.accounts import passwords
from cashew.accounts.passwords import hash_password, needs_rehash, verify_password

PASSWORD = "correct horse battery staple"
PHC = re.compile(
    r"^\$(?P<variant>argon2(?:id|i|d))\$v=(?P<version>\d+)"
    r"\$m=(?P<m>\d+),t=(?P<t>\d+),p=(?P<p>\d+)\$(?P<salt>[A-Za-z0-9+/]+)\$(?P<hash>[A-Za-z0-9+/]+)$"
)


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def test_hash_is_argon2id_at_owasp_parameters_or_stronger(stored: str) -> None:
    match = PHC.match(stored)
    assert match, stored
    assert match["variant"] == "argon2id"
    assert int(match["version"]) == 19
    assert int(match["m"]) >= 19 * 1024
    assert int(match["t"]) >= 2
    assert int(match["p"]) == 1
    assert PASSWORD not in stored


def test_hashes_are_salted(stored: str) -> None:
    again = hash_password(PASSWORD)
    assert again != stored
    assert PHC.match(again)["salt"] != PHC.match(stored)["salt"]  # type: ignore[index]


def test_the_right_password_verifies(stored: str) -> None:
    assert verify_password(stored, PASSWORD) is True


@pytest.mark.parametrize(
    "attempt",
    ["correct horse battery stapl", "Correct horse battery staple", "", PASSWORD + " "],
)
def test_a_wrong_password_does_not_verify(stored: str, attempt: str) -> None:
    assert verify_password(stored, attempt) is False


@pytest.mark.parametrize("attempt", [PASSWORD, "cashew-dummy-password-for-timing", ""])
def test_no_hash_means_no_match(attempt: str) -> None:
    # Given an unknown user (no hash), even the dummy hash's own password does not verify
    assert verify_password(None, attempt) is False
    assert verify_password("", attempt) is False


@pytest.mark.parametrize("broken", ["not-a-hash", "$argon2id$v=19$m=19456,t=2,p=1$", "$2b$12$abc"])
def test_a_corrupt_hash_does_not_verify_and_does_not_raise(broken: str) -> None:
    assert verify_password(broken, PASSWORD) is False


def test_a_fresh_hash_needs_no_rehash(stored: str) -> None:
    assert needs_rehash(stored) is False


def test_a_hash_with_weaker_parameters_verifies_and_needs_rehash() -> None:
    # Given a hash made before the parameters rose (cheap parameters: fast test)
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    # Then the user can still log in, and the login rehashes
    assert verify_password(weak, PASSWORD) is True
    assert needs_rehash(weak) is True


def test_the_dummy_hash_for_unknown_users_costs_what_a_real_hash_costs() -> None:
    # the dummy is verified in place of a missing user's hash: same algorithm and parameters
    assert passwords.DUMMY_HASH.startswith("$argon2id$")
    assert not passwords.needs_rehash(passwords.DUMMY_HASH)
