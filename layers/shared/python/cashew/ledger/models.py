"""The outcome message (payments -> queue -> log), the log entry, and what the log answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["credit", "debit"]
Funds = Literal["balance", "card"]
EntryType = Literal["top_up", "payment", "refund", "dispute", "payout"]
EntryStatus = Literal[
    "succeeded",
    "paid",
    "pending",
    "failed",
    "processing",
    "requires_capture",
    "canceled",
    "open",
    "won",
    "lost",
]


class Outcome(BaseModel):
    """One outcome of one payment, refund or dispute, as published to the queue.
    `outcome_id` is stable, so a redelivered or republished outcome is recognised; `source`
    is how the payer paid (for a refund or a dispute: how the payer paid the payment)."""

    model_config = ConfigDict(extra="forbid")

    outcome_id: str
    payment_id: str
    type: EntryType
    status: EntryStatus
    amount: int
    currency: str
    payer_id: str
    payee_id: str
    source: Funds
    failure_code: str | None = None
    occurred_at: str


class Entry(BaseModel):
    """One immutable entry of a user's chain. `funds` says which of the user's funds the
    entry is about: the Cashew balance, or the card the payer paid with (money that never
    touched the balance). `hash` covers every other field, `prev_hash` included."""

    id: str
    outcome_id: str
    payment_id: str
    user_id: str
    type: EntryType
    direction: Direction
    funds: Funds
    amount: int
    currency: str
    status: EntryStatus
    failure_code: str | None = None
    occurred_at: str
    seq: int
    prev_hash: str
    hash: str

    @property
    def balance_change(self) -> int:
        """What this entry did to the user's balance in its currency (see `balance_change`)."""
        return balance_change(self.type, self.status, self.funds, self.direction, self.amount)


def balance_change(
    type: EntryType, status: EntryStatus, funds: Funds, direction: Direction, amount: int
) -> int:
    """What an entry with these fields does to its user's balance (0 when it moves none).
    A card refund takes the money from the payee's balance when it is created (`pending`,
    the payee's entry) and gives it to the card once the gateway confirms (`succeeded`, the
    payer's entry, about the card). A payout's entry is `paid` (the money left the balance)
    or `failed` (debited and credited back in one write: it moved none)."""
    moved = status == "succeeded" or (type, status) in (("refund", "pending"), ("payout", "paid"))
    if not moved or funds != "balance" or type == "dispute":
        return 0
    return amount if direction == "credit" else -amount


class EntryList(BaseModel):
    data: list[Entry]
    has_more: bool
    next_cursor: str | None


class ChainCheck(BaseModel):
    """The verdict on one user's chain. `first_bad_seq` is the first position at which the
    chain stops being what was appended (an edited, missing, moved or extra entry)."""

    valid: bool
    entries: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str | None = None


class ChainHead(BaseModel):
    """Where a user's chain stood: its newest entry's seq and hash."""

    seq: int
    hash: str


class ReceiptClaims(BaseModel):
    """The payload of a receipt: one entry as the log holds it (its `hash` covers every field
    of the entry, so recomputing it from the entry proves the entry), and the head of its
    user's chain when the receipt was signed."""

    model_config = ConfigDict(extra="forbid")

    iss: str
    iat: int
    entry_id: str
    user_id: str
    payment_id: str
    type: EntryType
    direction: Direction
    amount: int
    currency: str
    status: EntryStatus
    occurred_at: str
    seq: int
    prev_hash: str
    hash: str
    chain_head: ChainHead


class Receipt(BaseModel):
    """`receipt`: a compact JWS (EdDSA, header `typ` `cashew-receipt+jwt` and a `kid` of the
    JWKS) whose payload is `{iss, iat, entry_id, user_id, payment_id, type, direction, amount,
    currency, status, occurred_at, seq, prev_hash, hash, chain_head: {seq, hash}}`; `entry`:
    the entry, every field of it, whose SHA-256 over its canonical JSON without `hash` is the
    receipt's `hash`."""

    receipt: str
    entry: Entry
