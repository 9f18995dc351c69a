"""What a payer attempted recently: the history the velocity rules of fraud screening read.

One item per payer in the accounts table (USER#<id> / VELOCITY) holds the payer's attempts of
the last 24 hours in per-minute buckets (count and amount per currency per minute, see
accounts.minute_buckets; the windows are counted in whole minutes, as that module says), and a
`version`. An attempt is recorded in the same write that admits it (the balance payment's
transaction, or the card charge's in-progress record), conditional on the version it was
screened against. So two concurrent payments of one payer cannot both be screened against the
same history: the second write fails, and the request reads the history again and screens
again.

The item is bounded whatever the number of attempts and the thresholds: at most 24 x 60
buckets of at most one tally per currency (4 currencies). Filled to that bound (an attempt
every minute in every currency) it is about 110 KB, and it stays under 128 KiB for up to
9,999 attempts per minute and currency all day: under a third of DynamoDB's 400 KB item limit
(tests/unit/test_velocity_buckets.py measures it; with 38-digit numbers everywhere, the most
DynamoDB holds, it would be 302 KB).

An item written before the buckets (a list of every attempt) reads as the same attempts in
buckets, and the next attempt's write replaces it with buckets.

An attempt counts once screening let it through, whatever happens next (a declined card
counts: card testing is many declines), except a balance payment refused for insufficient
funds, whose transaction records nothing. A blocked attempt is not recorded. Amounts add up
per currency; the count spans currencies. Any kind of attempt (a top-up, a payment, a payout)
is recorded the same way: `read`, screen, then `record_item` in the admitting write.
"""

from __future__ import annotations

from dataclasses import dataclass

from cashew import clock, dynamo
from cashew.accounts import minute_buckets, store
from cashew.accounts.minute_buckets import MinuteBucket

DAY_MINUTES = minute_buckets.KEPT_MINUTES
COUNT_WINDOW_MINUTES = 10


@dataclass(frozen=True, slots=True)
class History:
    user_id: str
    version: int
    buckets: tuple[MinuteBucket, ...]  # oldest first
    now_minute: int  # epoch minutes, UTC

    def count_within(self, minutes: int) -> int:
        """Attempts in the last `minutes` whole minutes, this one included, every currency."""
        return minute_buckets.count_within(self.buckets, self.now_minute, minutes)

    def amount_within(self, minutes: int, currency: str) -> int:
        """Amount attempted in `currency` in the last `minutes` whole minutes."""
        return minute_buckets.amount_within(self.buckets, self.now_minute, minutes, currency)

    def record_item(self, amount: int, currency: str) -> dynamo.Write:
        """The write that records one more attempt (and forgets the buckets no window reaches
        any more), valid only if nobody recorded one since this history was read."""
        buckets = minute_buckets.record(self.buckets, self.now_minute, amount, currency)
        return store.velocity_item(self.user_id, self.version, buckets)


def read(user_id: str) -> History:
    """The payer's attempts (one strongly consistent GetItem)."""
    stored = store.get_velocity(user_id) or store.PayerAttempts(user_id, 0, ())
    now_minute = minute_buckets.minute_of(int(clock.now().timestamp() * 1000))
    return History(user_id, stored.version, stored.buckets, now_minute)
