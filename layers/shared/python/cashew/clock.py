"""Time in one place: RFC 3339 UTC strings with a Z suffix, and epoch seconds."""

import re
from datetime import UTC, datetime

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")
"""The stored times: `rfc3339()` writes them (milliseconds; up to microseconds accepted)."""


def now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def utcnow_str() -> str:
    return rfc3339(now())


def epoch() -> int:
    return int(now().timestamp())


def to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
