"""Password hashing with argon2id at OWASP's parameters (m=19 MiB, t=2, p=1) or stronger."""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1


@functools.cache
def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=TIME_COST, memory_cost=MEMORY_KIB, parallelism=PARALLELISM)


@functools.cache
def _dummy_hash() -> str:
    """A real hash of nothing useful: unknown users are verified against it, so they take
    as long as known ones."""
    return _hasher().hash("cashew-dummy-password-for-timing")


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if `password` matches; with no hash (unknown user) spends the same time and
    returns False."""
    try:
        return _hasher().verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
