"""Fraud screening, run before the gateway or the ledger is touched.

Each rule that fires adds to a score; 100 or more blocks the attempt (`fraud_suspected`),
50 or more is `elevated`. The rules, with their thresholds from API.md's Defaults (the amount
thresholds are per currency: `USD=500000,JPY=50000`, or a bare number for every currency; a
currency the value does not name has the documented default, see cashew.config.PerCurrency):

- `max_amount` (100): amount > CASHEW_FRAUD_MAX_AMOUNT of the currency.
- `velocity_count_10min` (100): this attempt would be the payer's number
  CASHEW_FRAUD_MAX_PAYMENTS_10MIN + 1 within 10 minutes (every currency).
- `velocity_amount_24h` (100): the payer's attempts in this currency within 24 hours, this
  one included, add up to more than CASHEW_FRAUD_MAX_AMOUNT_24H of the currency.
- `card_risk_flag` (100, or 60 with CASHEW_FRAUD_BLOCK_RISKY_CARDS=false): the gateway
  flagged the card as high-risk when it was added. Blocked by default, as Stripe's
  highest-risk test card is; only elevated when the setting is false.
- `new_card_large_amount` (50): the card was added less than an hour ago and amount >
  CASHEW_FRAUD_NEW_CARD_AMOUNT of the currency.

The windows slide in whole minutes: they are the current minute and the 9 (or 1439) before
it, as cashew.accounts.minute_buckets says. The payer's history is cashew.accounts.velocity's.
Which rules fired is stored on the payment for admins (`fired_rules`), never shown to payers.

`screen` knows nothing of the kind of attempt: a top-up, a payment or a payout passes its
amount and currency, the payer's history (`velocity.read`), and the card it charges or pays
out to, if any (its payment method's `created_at` and `gateway_risk_flag`); then records the
attempt with `history.record_item` in the write that admits it, unless it was blocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cashew import clock
from cashew.accounts.velocity import COUNT_WINDOW_MINUTES, DAY_MINUTES, History
from cashew.config import get_settings
from cashew.payments.models import Risk

BLOCK, ELEVATED = 100, 50
RISK_FLAG_SCORE = 60  # the flag alone, when risky cards are not blocked: elevated


@dataclass(frozen=True, slots=True)
class Screening:
    score: int
    fired: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.score >= BLOCK

    def risk(self) -> Risk:
        level = "blocked" if self.blocked else "elevated" if self.score >= ELEVATED else "normal"
        return Risk(score=min(self.score, 100), level=level)


def screen(
    amount: int,
    currency: str,
    *,
    history: History | None = None,
    card_added_at: str | None = None,
    card_risk_flag: bool = False,
) -> Screening:
    """Score one attempt of `amount` (minor units of `currency`). `history`: the payer's
    recent attempts (None: the velocity rules do not apply); `card_added_at` (RFC 3339) and
    `card_risk_flag`: the card the attempt charges or pays out to, if any."""
    settings = get_settings()
    rules: list[tuple[str, int]] = []
    if amount > settings.fraud_max_amount[currency]:
        rules.append(("max_amount", BLOCK))
    if history is not None:
        if history.count_within(COUNT_WINDOW_MINUTES) + 1 > settings.fraud_max_payments_10min:
            rules.append(("velocity_count_10min", BLOCK))
        day_amount = history.amount_within(DAY_MINUTES, currency) + amount
        if day_amount > settings.fraud_max_amount_24h[currency]:
            rules.append(("velocity_amount_24h", BLOCK))
    if card_risk_flag:
        rules.append(
            ("card_risk_flag", BLOCK if settings.fraud_block_risky_cards else RISK_FLAG_SCORE)
        )
    if card_added_at is not None:
        added = datetime.fromisoformat(card_added_at.replace("Z", "+00:00"))
        new_card_amount = settings.fraud_new_card_amount[currency]
        if clock.now() - added < timedelta(hours=1) and amount > new_card_amount:
            rules.append(("new_card_large_amount", ELEVATED))
    return Screening(score=sum(s for _, s in rules), fired=[name for name, _ in rules])
