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


# A real hash, at the current parameters, of a random password nobody knows: unknown users
# are verified against it, so they take as long as known ones (from the first request on).
DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$ctw+WVWf0MB0nhjLuPpGHg"
    "$kWw8n/ckI36zdHqee09fbJ8aBpMq138zfCOwj3nz+VY"
)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True if `password` matches; with no hash (unknown user) spends the same time and
    returns False."""
    try:
        return _hasher().verify(password_hash or DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
