"""Fraud screening, run before the gateway or the ledger is touched.

This module holds the rules that need no history; the velocity rules of the contract (count
and amount per payer over a window) need a read of recent payments and are not yet here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cashew import clock
from cashew.config import get_settings
from cashew.payments.models import Risk


@dataclass(frozen=True, slots=True)
class Screening:
    score: int
    fired: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.score >= 100

    def risk(self) -> Risk:
        level = "blocked" if self.blocked else "elevated" if self.score >= 50 else "normal"
        return Risk(score=min(self.score, 100), level=level)


def screen(
    amount: int, *, card_added_at: str | None = None, card_risk_flag: bool = False
) -> Screening:
    settings = get_settings()
    fired: list[str] = []
    score = 0
    if amount > settings.fraud_max_amount:
        fired.append("max_amount")
        score += 100
    if card_risk_flag:
        fired.append("card_risk_flag")
        score += 60
    if card_added_at is not None:
        added = datetime.fromisoformat(card_added_at.replace("Z", "+00:00"))
        if clock.now() - added < timedelta(hours=1) and amount > settings.fraud_new_card_amount:
            fired.append("new_card_large_amount")
            score += 50
    return Screening(score=score, fired=fired)
