"""A payer's recent attempts as per-minute buckets: the arithmetic of the velocity history.

A bucket holds, for one UTC minute (epoch minutes: epoch milliseconds // 60,000), the number
of attempts and the amount attempted in each currency. However many attempts are made, and
whatever the fraud thresholds, a history holds at most `KEPT_MINUTES` (24 x 60) buckets of
at most one tally per currency, so the item that stores it stays far below DynamoDB's 400 KB
(see accounts.velocity for the figure).

The windows are counted in whole minutes. At a time in minute N, a window of W minutes is the
current minute and the W - 1 before it: a bucket of minute M is in it iff M > N - W. That is
the sliding window (now - W, now] with both instants truncated to the minute. So an attempt
counts for at least W - 1 and less than W minutes after it was made: it stops counting when
the clock enters minute M + W. A bucket of a minute after N (another instance's clock a little
ahead) is in every window, as an attempt "in the future" always was.

No I/O here: accounts.store converts buckets to and from items, accounts.velocity reads and
writes them.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MINUTE_MS = 60_000
KEPT_MINUTES = 24 * 60
"""The longest window, and so how many buckets a history keeps at most."""


@dataclass(frozen=True, slots=True)
class Tally:
    """What was attempted in one currency within one minute."""

    count: int
    amount: int


@dataclass(frozen=True, slots=True)
class MinuteBucket:
    minute: int  # epoch minutes, UTC
    tallies: Mapping[str, Tally]  # currency -> tally

    @property
    def count(self) -> int:
        return sum(t.count for t in self.tallies.values())

    def amount(self, currency: str) -> int:
        tally = self.tallies.get(currency)
        return tally.amount if tally is not None else 0


def minute_of(epoch_ms: int) -> int:
    return epoch_ms // MINUTE_MS


def in_window(bucket: MinuteBucket, now_minute: int, minutes: int) -> bool:
    """Whether the bucket is within the last `minutes` whole minutes (this one included)."""
    return bucket.minute > now_minute - minutes


def count_within(buckets: Iterable[MinuteBucket], now_minute: int, minutes: int) -> int:
    """Attempts in the window, in every currency."""
    return sum(b.count for b in buckets if in_window(b, now_minute, minutes))


def amount_within(
    buckets: Iterable[MinuteBucket], now_minute: int, minutes: int, currency: str
) -> int:
    """Amount attempted in `currency` in the window."""
    return sum(b.amount(currency) for b in buckets if in_window(b, now_minute, minutes))


def add(
    buckets: Iterable[MinuteBucket], minute: int, amount: int, currency: str
) -> tuple[MinuteBucket, ...]:
    """The buckets with one more attempt in `minute`, oldest first (nothing forgotten)."""
    ordered = tuple(buckets)
    at = bisect.bisect_left(ordered, minute, key=lambda b: b.minute)
    same = at < len(ordered) and ordered[at].minute == minute
    bucket = ordered[at] if same else MinuteBucket(minute, {})
    return (*ordered[:at], _counted(bucket, amount, currency), *ordered[at + same :])


def _counted(bucket: MinuteBucket, amount: int, currency: str) -> MinuteBucket:
    tally = bucket.tallies.get(currency, Tally(0, 0))
    tallies = {**bucket.tallies, currency: Tally(tally.count + 1, tally.amount + amount)}
    return MinuteBucket(bucket.minute, tallies)


def record(
    buckets: Iterable[MinuteBucket], now_minute: int, amount: int, currency: str
) -> tuple[MinuteBucket, ...]:
    """The buckets after an attempt now: added to this minute's bucket, and every bucket that
    no window can reach any more forgotten. What is kept is the `KEPT_MINUTES` minutes ending
    with the newest bucket (this minute, or a later one another clock wrote), so the result
    never has more than `KEPT_MINUTES` buckets."""
    added = add(buckets, now_minute, amount, currency)
    horizon = max(now_minute, added[-1].minute) - KEPT_MINUTES
    return added[bisect.bisect_right(added, horizon, key=lambda b: b.minute) :]


def from_attempts(attempts: Iterable[tuple[int, int, str]]) -> tuple[MinuteBucket, ...]:
    """Buckets of the former item format: a list of `(epoch ms, amount, currency)` attempts."""
    by_minute: dict[int, MinuteBucket] = {}
    for at, amount, currency in attempts:
        minute = minute_of(at)
        by_minute[minute] = _counted(
            by_minute.get(minute, MinuteBucket(minute, {})), amount, currency
        )
    return tuple(by_minute[m] for m in sorted(by_minute))
