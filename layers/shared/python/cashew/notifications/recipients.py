"""Who is emailed about an outcome of the payments bus, and which email (API.md
"Notifications": the table of outcomes and recipients).

An event's detail is the contract object (payment, refund or dispute) plus `outcome_id`; a
refund's detail does not name its payment's payer and payee, nor a dispute's how the payer
paid, so the consumer reads the payment and hands it here with the detail as `Facts`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from cashew.ledger.models import Outcome
from cashew.payments.models import PaymentResponse

Role = Literal["payer", "payee", "owner", "user"]
Kind = Literal["outcome", "security"]
"""`security` emails (issue 13: resets, new logins) always go, whatever `notify_email` says."""

EVENTS = (
    "payment.succeeded", "payment.failed", "payment.captured", "payment.canceled",
    "refund.succeeded", "dispute.opened", "dispute.won", "dispute.lost",
    "payout.paid", "payout.failed",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Facts:
    """What an email about one outcome says, whichever object it is about."""

    event: str  # the bus's detail-type
    outcome_id: str
    object_id: str  # the payment's, refund's or dispute's id
    payment_id: str
    payment_type: str  # "payment" | "top_up": the payment's, for a refund or a dispute too
    type: str  # the log's entry type: top_up, payment, refund, dispute
    status: str
    amount: int
    currency: str
    payer_id: str
    payee_id: str
    source: str  # how the payer paid: balance | card
    method_id: str | None  # the payer's card, when they paid by card
    failure_code: str | None
    occurred_at: str

    @property
    def outcome(self) -> Outcome:
        """The outcome as the log records it (whose parties get an entry)."""
        return Outcome(
            outcome_id=self.outcome_id, payment_id=self.payment_id, type=self.type,
            status=self.status, amount=self.amount, currency=self.currency,
            payer_id=self.payer_id, payee_id=self.payee_id, source=self.source,
            failure_code=self.failure_code, occurred_at=self.occurred_at,
        )  # fmt: skip


def of_message(
    body: str,
    payment_of: Callable[[str], PaymentResponse | None],
    owner_of: Callable[[str], str | None] = lambda _: None,
) -> Facts | None:
    """The facts of an EventBridge event (a message of EmailQueue); None for an event no
    email is about. `payment_of` reads a refund's or a dispute's payment, `owner_of` a
    payout's owner (the payout object does not name them)."""
    event = json.loads(body)
    detail_type, detail = str(event.get("detail-type")), event.get("detail") or {}
    if detail_type not in EVENTS:
        return None
    if detail_type.startswith("payout."):
        owner = owner_of(str(detail.get("id")))
        if owner is None:
            raise LookupError(f"the payout {detail.get('id')} is not stored")
        return of_payout(detail_type, detail, owner)
    payment = None
    if not detail_type.startswith("payment."):
        stored = payment_of(str(detail.get("payment_id")))
        payment = stored.model_dump(mode="json") if stored else None
    return of_event(detail_type, detail, payment)


def of_event(event: str, detail: dict[str, Any], payment: dict[str, Any] | None) -> Facts:
    """The facts of a bus event; `payment` is the payment object the detail is about (the
    detail itself for a payment event, read from the payments table for the others)."""
    payment = detail if event.startswith("payment.") else payment
    if payment is None:
        raise LookupError(f"the payment of {detail.get('id')} is not stored")
    source = dict(payment["source"])
    common: dict[str, Any] = {
        "event": event,
        "outcome_id": str(detail["outcome_id"]),
        "object_id": str(detail["id"]),
        "payment_id": str(payment["id"]),
        "payment_type": str(payment["type"]),
        "currency": str(detail["currency"]),
        "payer_id": str(payment["payer_id"]),
        "payee_id": str(payment["payee_id"]),
        "source": str(source["type"]),
        "method_id": source.get("payment_method_id"),
        "status": str(detail["status"]),
    }
    if event.startswith("payment."):
        return Facts(
            **common,
            type=str(payment["type"]),
            amount=int(payment["amount_captured"] or payment["amount"]),
            failure_code=payment.get("failure_code"),
            occurred_at=str(payment["updated_at"]),
        )
    if event.startswith("refund."):
        return Facts(
            **common, type="refund", amount=int(detail["amount"]), failure_code=None,
            occurred_at=str(detail["created_at"]),
        )  # fmt: skip
    return Facts(
        **common, type="dispute", amount=int(detail["amount"]), failure_code=None,
        occurred_at=str(detail.get("resolved_at") or detail["created_at"]),
    )  # fmt: skip


def of_payout(event: str, detail: dict[str, Any], owner: str) -> Facts:
    """The facts of a payout event: the owner's money, out of the balance to their card."""
    return Facts(
        event=event, outcome_id=str(detail["outcome_id"]), object_id=str(detail["id"]),
        payment_id=str(detail["id"]), payment_type="payout", type="payout",
        status=str(detail["status"]), amount=int(detail["amount"]),
        currency=str(detail["currency"]), payer_id=owner, payee_id=owner, source="balance",
        method_id=None, failure_code=detail.get("failure_code"),
        occurred_at=str(detail["updated_at"]),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Notice:
    """One email to send: to whom, in which role, with which wording (a key of
    templates/wording.toml)."""

    user_id: str
    role: Role
    template: str
    kind: Kind = "outcome"

    @property
    def counterparty_role(self) -> Role | None:
        return {"payer": "payee", "payee": "payer"}.get(self.role)  # type: ignore[return-value]


def notices(facts: Facts) -> list[Notice]:
    """Every email of the outcome, one per recipient (a top-up's owner is its payer)."""
    payer, payee = facts.payer_id, facts.payee_id
    name = facts.event.replace(".", "_")
    if facts.payment_type == "top_up" or payer == payee:
        if facts.event.startswith("payment."):
            return [Notice(payer, "owner", f"top_up_{facts.event.removeprefix('payment.')}")]
        return [Notice(payer, "owner", f"{name}.owner")]
    if facts.event in ("payment.succeeded", "refund.succeeded") or facts.event.startswith(
        "dispute."
    ):
        return [Notice(payer, "payer", f"{name}.payer"), Notice(payee, "payee", f"{name}.payee")]
    if facts.event in ("payment.failed", "payment.captured", "payment.canceled"):
        return [Notice(payer, "payer", f"{name}.payer")]
    return []
