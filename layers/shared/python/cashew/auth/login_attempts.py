"""The login-attempt counters, kept in the sessions table next to the sessions (whose items
are `sessions.py`'s). `lockout.py` decides what the counts mean.

Items (the record `LoginAttempts`, with its `to_item` / `from_item`):
    pk = LOGIN#<sha256 of the email>
                        n<bucket>: login attempts counted per 15-minute bucket; TTL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from cashew import clock, dynamo
from cashew.config import get_settings


@dataclass(frozen=True, slots=True)
class LoginAttempts:
    """One email's counters: attempts per 15-minute bucket, and when the item expires (None
    for an item that only a clear has written: its REMOVE creates the bare key)."""

    key: str  # LOGIN#<sha256 of the email>
    counts: Mapping[int, int] = field(default_factory=dict)  # bucket -> attempts
    expires_at: int | None = None

    def count(self, bucket: int) -> int:
        return self.counts.get(bucket, 0)

    def to_item(self) -> dict[str, str | int]:
        item: dict[str, str | int] = {"pk": self.key}
        for bucket, attempts in self.counts.items():
            item[f"n{bucket}"] = attempts
        if self.expires_at is not None:
            item["expires_at"] = self.expires_at
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, str | int]) -> Self:
        """Every attribute is the key, the expiry or a bucket's counter (`n<bucket>`): any
        other is refused rather than dropped."""
        counts: dict[int, int] = {}
        for name, value in item.items():
            if name in ("pk", "expires_at"):
                continue
            if not (name.startswith("n") and name[1:].lstrip("-").isdigit()):
                raise ValueError(f"not a login-attempt counter: {name!r}")
            counts[int(name[1:])] = int(value)
        expires_at = item.get("expires_at")
        return cls(
            key=str(item["pk"]),
            counts=counts,
            expires_at=int(expires_at) if expires_at is not None else None,
        )


def _table() -> str:
    return get_settings().sessions_table


def count(key: str, bucket: int, keep_for: int) -> tuple[int, int]:
    """Count an attempt in `bucket`, atomically (concurrent attempts are all counted), and
    return the counts of this bucket and the one before. Older buckets are dropped, so the
    item stays small however many attempts are made."""
    item = dynamo.update_item(
        _table(),
        {"pk": key},
        "ADD #current :one SET expires_at = :expires REMOVE #stale",
        {":one": 1, ":expires": clock.epoch() + keep_for},
        names={"#current": f"n{bucket}", "#stale": f"n{bucket - 2}"},
        return_new=True,
    )
    attempts = LoginAttempts.from_item(item) if item else LoginAttempts(key)
    return attempts.count(bucket), attempts.count(bucket - 1)


def clear(key: str, bucket: int) -> None:
    """Forget the attempts of `bucket` and the one before (a successful login)."""
    dynamo.update_item(
        _table(),
        {"pk": key},
        "REMOVE #current, #previous",
        {},
        names={"#current": f"n{bucket}", "#previous": f"n{bucket - 1}"},
    )
