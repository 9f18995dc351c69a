"""What a payer attempted recently: the history the velocity rules of fraud screening read.

One item per payer in the accounts table (USER#<id> / VELOCITY) lists the payer's attempts of
the last 24 hours, `[epoch milliseconds, amount, currency]` each, and a `version`. An attempt
is recorded in the same write that admits it (the balance payment's transaction, or the card
charge's in-progress record), conditional on the version it was screened against. So two
concurrent payments of one payer cannot both be screened against the same history: the second
write fails, and the request reads the history again and screens again.

An attempt counts once screening let it through, whatever happens next (a declined card
counts: card testing is many declines), except a balance payment refused for insufficient
funds, whose transaction records nothing. A blocked attempt is not recorded. Amounts add up
per currency; the count spans currencies.
"""

from __future__ import annotations

from dataclasses import dataclass

from cashew import clock, dynamo
from cashew.accounts import store

DAY_MS = 24 * 3600 * 1000
COUNT_WINDOW_MS = 10 * 60 * 1000


@dataclass(frozen=True, slots=True)
class History:
    user_id: str
    version: int
    attempts: tuple[tuple[int, int, str], ...]  # (epoch ms, amount, currency), oldest first
    now_ms: int

    def count_within(self, window_ms: int) -> int:
        """Attempts in the last `window_ms`: (now - window, now]."""
        return sum(1 for at, _, _ in self.attempts if at > self.now_ms - window_ms)

    def amount_within(self, window_ms: int, currency: str) -> int:
        return sum(
            amount
            for at, amount, cur in self.attempts
            if at > self.now_ms - window_ms and cur == currency
        )

    def record_item(self, amount: int, currency: str) -> dynamo.Write:
        """The write that records one more attempt (and forgets those over a day old), valid
        only if nobody recorded one since this history was read."""
        kept = [list(a) for a in self.attempts if a[0] > self.now_ms - DAY_MS]
        return store.velocity_item(
            self.user_id, self.version, [*kept, [self.now_ms, amount, currency]]
        )


def read(user_id: str) -> History:
    """The payer's attempts (one strongly consistent GetItem)."""
    stored = store.get_velocity(user_id) or store.PayerAttempts(user_id, 0, ())
    return History(user_id, stored.version, stored.attempts, int(clock.now().timestamp() * 1000))
