"""The sandbox gateway: deterministic by card number, no network, no state.

The token carries the card's scenario, never its number. A charge's id is derived from the
idempotency key, so repeating a charge with the same key returns the same charge.
"""

from __future__ import annotations

import hashlib
import secrets

from cashew.payments.gateways.base import Charge, GatewayUnavailableError, TokenisedCard

SCENARIOS = {
    "4000000000000002": "declined",
    "4000000000009995": "insufficient",
    "4000000000000069": "expired",
    "4000000000000119": "error",
    "4000000000003220": "processing",
    "4100000000000019": "risky",
}
_FAILURES = {
    "declined": ("card_declined", "the card was declined"),
    "insufficient": ("insufficient_funds", "the card has insufficient funds"),
    "expired": ("expired_card", "the card has expired"),
}
TOKEN_PREFIX = "tok_sbx_"


class SandboxGateway:
    def tokenise(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenisedCard:
        scenario = SCENARIOS.get(number, "approved")
        token = f"{TOKEN_PREFIX}{scenario}_{secrets.token_hex(12)}"
        return TokenisedCard(token=token, risk_flag=scenario == "risky")

    def charge(
        self, token: str, amount: int, currency: str, *, idempotency_key: str, capture: bool
    ) -> Charge:
        if not token.startswith(TOKEN_PREFIX):
            raise ValueError("not a sandbox token")
        scenario = token.removeprefix(TOKEN_PREFIX).rsplit("_", 1)[0]
        charge_id = "ch_sbx_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]
        if scenario == "error":
            raise GatewayUnavailableError("sandbox: simulated gateway error")
        if scenario in _FAILURES:
            code, message = _FAILURES[scenario]
            return Charge(id=charge_id, status="failed", failure_code=code, failure_message=message)  # type: ignore[arg-type]
        if scenario == "processing":
            return Charge(id=charge_id, status="processing")
        return Charge(id=charge_id, status="succeeded" if capture else "requires_capture")
