"""The login-attempt counters, kept in the sessions table next to the sessions (whose items
are `sessions.py`'s). `lockout.py` decides what the counts mean.

Items:
    pk = LOGIN#<sha256 of the email>
                        n<bucket>: login attempts counted per 15-minute bucket; TTL.
"""

from __future__ import annotations

from cashew import clock, dynamo
from cashew.config import get_settings


def _table() -> str:
    return get_settings().sessions_table


def count(key: str, bucket: int, keep_for: int) -> tuple[int, int]:
    """Count an attempt in `bucket`, atomically (concurrent attempts are all counted), and
    return the counts of this bucket and the one before. Older buckets are dropped, so the
    item stays small however many attempts are made."""
    counts = (
        dynamo.update_item(
            _table(),
            {"pk": key},
            "ADD #current :one SET expires_at = :expires REMOVE #stale",
            {":one": 1, ":expires": clock.epoch() + keep_for},
            names={"#current": f"n{bucket}", "#stale": f"n{bucket - 2}"},
            return_new=True,
        )
        or {}
    )
    return int(counts.get(f"n{bucket}", 0)), int(counts.get(f"n{bucket - 1}", 0))


def clear(key: str, bucket: int) -> None:
    """Forget the attempts of `bucket` and the one before (a successful login)."""
    dynamo.update_item(
        _table(),
        {"pk": key},
        "REMOVE #current, #previous",
        {},
        names={"#current": f"n{bucket}", "#previous": f"n{bucket - 1}"},
    )
