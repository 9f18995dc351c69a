"""Dispute rules on in-memory fakes (cashew.disputes.service): who may dispute what, and how
a resolution claims, refunds, releases and closes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from cashew.disputes import service
from cashew.disputes.models import DisputeRequest, ResolveRequest
from cashew.disputes.store import StoredDispute
from cashew.errors import ConflictError, IdempotencyInProgressError, NotFoundError
from cashew.identity import Caller
from cashew.ledger.models import Entry
from cashew.payments.models import RefundResponse

PAYER = Caller("usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6", "ses_1", "user")
PAYEE = Caller("usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9", "ses_2", "user")
ADMIN = Caller("usr_01JCQ3A0B1C2D3E4F5G6H7J8K9", "ses_3", "admin")
PAYMENT = "pay_01JCQ3J2K4M6N8P0Q2R4S6T8V0"


def entry(**changes: Any) -> Entry:
    fields = {
        "id": "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1", "outcome_id": f"{PAYMENT}:succeeded",
        "payment_id": PAYMENT, "user_id": PAYER.user_id, "type": "payment",
        "direction": "debit", "funds": "balance", "amount": 600, "currency": "USD",
        "status": "succeeded", "occurred_at": "2026-11-30T09:30:00.000Z", "seq": 2,
        "prev_hash": "a" * 64, "hash": "b" * 64, **changes,
    }  # fmt: skip
    return Entry(**fields)


@dataclass
class FakePayment:
    id: str = PAYMENT
    payer_id: str = PAYER.user_id
    payee_id: str = PAYEE.user_id
    amount_captured: int = 600
    amount_refunded: int = 0
    currency: str = "USD"
    source: dict[str, str] = field(default_factory=lambda: {"type": "balance"})


@dataclass
class FakeStored:
    payment: FakePayment


class FakeDisputes:
    """The disputes store's contract, in memory: `items` holds the items as the store
    writes them (`StoredDispute.to_item`)."""

    AlreadyOpen = service.store.AlreadyOpen
    Changed = service.store.Changed

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.locks: set[str] = set()

    def open_dispute(self, new: StoredDispute) -> None:
        item = new.to_item()
        if item["payment_id"] in self.locks:
            raise self.AlreadyOpen(item["payment_id"])
        self.locks.add(item["payment_id"])
        self.items[item["id"]] = item

    def get(self, dispute_id: str) -> StoredDispute | None:
        found = self.items.get(dispute_id)
        return StoredDispute.from_item(found) if found else None

    def claim(self, dispute_id: str, outcome: str, attempt: str) -> None:
        item = self.items[dispute_id]
        if item["status"] != "open" or item.get("pending_outcome", outcome) != outcome:
            raise self.Changed(dispute_id)
        item.update(pending_outcome=outcome, pending_attempt=attempt)

    def release(self, dispute_id: str, attempt: str) -> None:
        item = self.items[dispute_id]
        if item["status"] == "open" and item.get("pending_attempt") == attempt:
            item.pop("pending_outcome"), item.pop("pending_attempt")

    def resolve(self, resolved: StoredDispute) -> None:
        item, outcome = resolved.to_item(), resolved.dispute.status
        changes = {k: item[k] for k in ("refund_id", "resolved_at", "resolved_by", "note")}
        changes["updated_at"] = item["updated_at"]
        stored = self.items[item["id"]]
        pending = stored.get("pending_outcome")
        claimed = pending == "won" if outcome == "won" else pending in (None, outcome)
        if stored["status"] != "open" or not claimed:
            raise self.Changed(item["id"])
        stored.update(changes, status=outcome)
        stored.pop("pending_outcome", None), stored.pop("pending_attempt", None)
        self.locks.discard(item["payment_id"])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    disputes, payment = FakeDisputes(), FakePayment()
    refunds: list[tuple[str, str]] = []
    state: dict[str, Any] = {"disputes": disputes, "payment": payment, "refunds": refunds,
                             "refuse": None, "entry": entry()}  # fmt: skip

    def refund_for_dispute(dispute_id: str, payment_id: str) -> RefundResponse:
        if state["refuse"] is not None:
            raise state["refuse"]
        refunds.append((dispute_id, payment_id))
        payment.amount_refunded = payment.amount_captured
        return RefundResponse(
            id="re_01JCQ3K2K4M6N8P0Q2R4S6T8V9", payment_id=payment_id, amount=600,
            currency="USD", status="succeeded", reason="dispute_won",
            created_at="2026-11-30T10:00:00.000Z",
        )  # fmt: skip

    def transaction(caller: Caller, entry_id: str) -> Entry:
        found: Entry = state["entry"]
        if entry_id != found.id or (caller.role != "admin" and caller.user_id != found.user_id):
            raise NotFoundError("transaction not found")
        return found

    monkeypatch.setattr(service, "store", disputes)
    monkeypatch.setattr(service.payments, "get", lambda _: FakeStored(payment))
    monkeypatch.setattr(service.after_create, "refund_for_dispute", refund_for_dispute)
    monkeypatch.setattr(service.ledger, "get_transaction", transaction)
    return state


def open_one(world: dict[str, Any]) -> str:
    return service.open_dispute(PAYER, world["entry"].id, DisputeRequest(reason="other")).id


def test_the_payer_opens_one_dispute_at_a_time(world):
    dispute = service.open_dispute(PAYER, world["entry"].id, DisputeRequest(reason="duplicate"))
    assert (dispute.status, dispute.amount, dispute.payment_id) == ("open", 600, PAYMENT)
    with pytest.raises(ConflictError, match="already has an open dispute"):
        service.open_dispute(PAYER, world["entry"].id, DisputeRequest(reason="other"))


@pytest.mark.parametrize(
    "changes",
    [{"direction": "credit"}, {"type": "top_up"}, {"status": "failed"}, {"type": "refund"}],
)
def test_only_a_succeeded_payment_the_caller_paid_can_be_disputed(world, changes):
    world["entry"] = entry(**changes)
    with pytest.raises(ConflictError):
        open_one(world)


def test_nobody_disputes_someone_elses_entry_not_even_an_admin(world):
    with pytest.raises(NotFoundError):
        service.open_dispute(PAYEE, world["entry"].id, DisputeRequest(reason="other"))
    with pytest.raises(NotFoundError):
        service.open_dispute(ADMIN, world["entry"].id, DisputeRequest(reason="other"))


def test_a_fully_refunded_payment_cannot_be_disputed(world):
    world["payment"].amount_refunded = 600
    with pytest.raises(ConflictError, match="refunded in full"):
        open_one(world)


def test_won_refunds_once_under_the_disputes_own_key_and_closes(world):
    dispute_id = open_one(world)
    won = service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="won", note="ok"))
    again = service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="won"))
    assert (won.status, won.refund_id, won.resolved_by) == ("won", again.refund_id, ADMIN.user_id)
    assert won.refund_id == "re_01JCQ3K2K4M6N8P0Q2R4S6T8V9"
    assert world["refunds"] == [(dispute_id, PAYMENT)]
    with pytest.raises(ConflictError, match="already resolved as won"):
        service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="lost"))


def test_a_refused_refund_releases_the_claim_and_leaves_the_dispute_open(world):
    dispute_id = open_one(world)
    world["refuse"] = ConflictError("the payee's balance is too low for this refund")
    with pytest.raises(ConflictError, match="stays open"):
        service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="won"))
    item = world["disputes"].items[dispute_id]
    assert item["status"] == "open" and "pending_outcome" not in item
    assert service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="lost")).status == "lost"


def test_a_refund_waiting_for_the_gateway_keeps_the_claim_for_a_retry(world):
    dispute_id = open_one(world)
    world["refuse"] = IdempotencyInProgressError("waits for the gateway")
    with pytest.raises(ConflictError, match="resolve the dispute again"):
        service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="won"))
    assert world["disputes"].items[dispute_id]["pending_outcome"] == "won"
    with pytest.raises(ConflictError, match="being resolved as won"):
        service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="lost"))
    world["refuse"] = None
    assert service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="won")).status == "won"


def test_lost_moves_no_money_and_frees_the_payment(world):
    dispute_id = open_one(world)
    lost = service.resolve(ADMIN, dispute_id, ResolveRequest(outcome="lost", note="no proof"))
    assert (lost.status, lost.refund_id, lost.note) == ("lost", None, "no proof")
    assert world["refunds"] == []
    assert open_one(world) != dispute_id


def test_an_unknown_dispute_is_not_found(world):
    with pytest.raises(NotFoundError):
        service.resolve(ADMIN, "dsp_01JCQ3K2K4M6N8P0Q2R4S6T8V2", ResolveRequest(outcome="won"))
