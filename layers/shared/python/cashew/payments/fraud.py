"""Fraud screening, run before the gateway or the ledger is touched.

Each rule that fires adds to a score; 100 or more blocks the attempt (`fraud_suspected`),
50 or more is `elevated`. The rules, with their thresholds from API.md's Defaults:

- `max_amount` (100): amount > CASHEW_FRAUD_MAX_AMOUNT.
- `velocity_count_10min` (100): this attempt would be the payer's number
  CASHEW_FRAUD_MAX_PAYMENTS_10MIN + 1 within 10 minutes.
- `velocity_amount_24h` (100): the payer's attempts in this currency within 24 hours, this
  one included, add up to more than CASHEW_FRAUD_MAX_AMOUNT_24H.
- `card_risk_flag` (60): the gateway flagged the card as high-risk when it was added.
- `new_card_large_amount` (50): the card was added less than an hour ago and amount >
  CASHEW_FRAUD_NEW_CARD_AMOUNT.

The windows slide: they end now. The payer's history is cashew.accounts.velocity's.
Which rules fired is stored on the payment for admins (`fired_rules`), never shown to payers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cashew import clock
from cashew.accounts.velocity import COUNT_WINDOW_MS, DAY_MS, History
from cashew.config import get_settings
from cashew.payments.models import Risk

BLOCK, ELEVATED = 100, 50


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
    settings = get_settings()
    rules: list[tuple[str, int]] = []
    if amount > settings.fraud_max_amount:
        rules.append(("max_amount", BLOCK))
    if history is not None:
        if history.count_within(COUNT_WINDOW_MS) + 1 > settings.fraud_max_payments_10min:
            rules.append(("velocity_count_10min", BLOCK))
        if history.amount_within(DAY_MS, currency) + amount > settings.fraud_max_amount_24h:
            rules.append(("velocity_amount_24h", BLOCK))
    if card_risk_flag:
        rules.append(("card_risk_flag", 60))
    if card_added_at is not None:
        added = datetime.fromisoformat(card_added_at.replace("Z", "+00:00"))
        if clock.now() - added < timedelta(hours=1) and amount > settings.fraud_new_card_amount:
            rules.append(("new_card_large_amount", ELEVATED))
    return Screening(score=sum(s for _, s in rules), fired=[name for name, _ in rules])
