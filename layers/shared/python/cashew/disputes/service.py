"""Opening, listing and resolving disputes.

A payer disputes the entry of a succeeded payment in their log; a payment has at most one
open dispute. An admin resolves it: `lost` closes it; `won` refunds the payer what is left
of the payment through the payments module, then closes it. A `won` resolution first claims
the dispute, so that a concurrent `lost` cannot close a dispute whose refund is under way,
and its refund is idempotent on the dispute, so that any admin's retry completes an
interrupted resolution without refunding twice.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Literal

from cashew import clock, ids
from cashew.accounts import face as accounts
from cashew.disputes import store
from cashew.disputes.models import (
    AdminDispute,
    AdminDisputeList,
    Dispute,
    DisputeList,
    DisputeOutcome,
    DisputeRequest,
    DisputeStatus,
    ResolveRequest,
)
from cashew.disputes.store import StoredDispute
from cashew.errors import (
    ConflictError,
    IdempotencyInProgressError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
)
from cashew.identity import Caller
from cashew.ledger import service as ledger
from cashew.ledger.models import Funds
from cashew.payments import after_create
from cashew.payments import face as payments


def open_dispute(caller: Caller, transaction_id: str, request: DisputeRequest) -> Dispute:
    entry = ledger.get_transaction(caller, transaction_id)
    if entry.user_id != caller.user_id:  # an admin reading someone else's entry
        raise NotFoundError("transaction not found")
    if (entry.type, entry.status, entry.direction) != ("payment", "succeeded", "debit"):
        raise ConflictError("only a succeeded payment you paid can be disputed")
    stored = payments.get(entry.payment_id)
    if stored is None:  # the log names a payment the payments table does not have
        raise ConflictError("the payment of this transaction cannot be found")
    payment = stored.payment
    if payment.amount_refunded >= payment.amount_captured:
        raise ConflictError("the payment has been refunded in full")
    now = clock.utcnow_str()
    dispute = AdminDispute(
        id=ids.new_id("dsp"),
        transaction_id=entry.id,
        payment_id=payment.id,
        payer_id=payment.payer_id,
        payee_id=payment.payee_id,
        status="open",
        reason=request.reason,
        details=request.details,
        amount=payment.amount_captured,
        currency=payment.currency,
        created_at=now,
    )
    source: Funds = "card" if payment.source.get("type") == "card" else "balance"
    new = StoredDispute(dispute, source=source, updated_at=now)
    try:
        store.open_dispute(new)
    except store.AlreadyOpen:
        raise ConflictError("this payment already has an open dispute") from None
    return new.public


def list_disputes(
    caller: Caller, role: Literal["payer", "payee"], limit: int, cursor: str | None
) -> DisputeList:
    key: store.KeyName = "payer_id" if role == "payer" else "payee_id"
    found, next_cursor = store.list_disputes(key, caller.user_id, limit, cursor)
    return DisputeList(
        data=[d.public for d in found],
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )


def admin_list(status: DisputeStatus | None, limit: int, cursor: str | None) -> AdminDisputeList:
    if status is None:
        found, next_cursor = store.list_disputes("kind", "dispute", limit, cursor)
    else:
        found, next_cursor = store.list_disputes("status", status, limit, cursor)
    return AdminDisputeList(
        data=[d.dispute for d in found],
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )


def resolve(admin: Caller, dispute_id: str, request: ResolveRequest) -> AdminDispute:
    # A won dispute refunds the payer: this POST moves money, so it is gated as an admin's
    # refund is (API.md "Users and accounts"), before any read or write
    accounts.require_verified_email(admin.user_id)
    found = store.get(dispute_id)
    if found is None:
        raise NotFoundError("dispute not found")
    if found.dispute.status != "open":
        return _already_resolved(found, request.outcome)
    if request.outcome == "lost":
        return _close(admin, found, "lost", request, refund_id=None)
    attempt = uuid.uuid4().hex  # this attempt, and no other, may release its claim
    try:
        store.claim(dispute_id, "won", attempt)
    except store.Changed:
        return _changed(dispute_id, request.outcome)
    return _close(admin, found, "won", request, refund_id=_refund(found.dispute, attempt))


def _refund(dispute: AdminDispute, attempt: str) -> str | None:
    """Refund the payer what is left of the payment; None if nothing was left. A refund the
    payments module refuses (the payee's balance is too low) leaves the dispute open."""
    payment_id = dispute.payment_id
    try:
        refund = after_create.refund_for_dispute(dispute.id, payment_id)
    except IdempotencyInProgressError:
        raise ConflictError(
            "the refund waits for the gateway; resolve the dispute again to complete it"
        ) from None
    except InvalidRequestError:  # nothing left to refund: refunded in full meanwhile
        stored = payments.get(payment_id)
        if stored and stored.payment.amount_refunded >= stored.payment.amount_captured:
            return None
        store.release(dispute.id, attempt)
        raise
    except RateLimitedError:  # a throttled balance: nothing refunded, the dispute stays open
        store.release(dispute.id, attempt)
        raise
    except (ConflictError, NotFoundError) as error:
        store.release(dispute.id, attempt)
        raise ConflictError(
            f"the payer cannot be refunded ({error}); the dispute stays open"
        ) from None
    return refund.id


def _close(
    admin: Caller,
    found: StoredDispute,
    outcome: DisputeOutcome,
    request: ResolveRequest,
    refund_id: str | None,
) -> AdminDispute:
    now = clock.utcnow_str()
    resolution = {
        "status": outcome,
        "refund_id": refund_id,
        "resolved_at": now,
        "resolved_by": admin.user_id,
        "note": request.note,
    }
    resolved = replace(
        found,
        dispute=found.dispute.model_copy(update=resolution),
        updated_at=now,
        pending_outcome=None,
        pending_attempt=None,
    )
    try:
        store.resolve(resolved)
    except store.Changed:
        return _changed(found.dispute.id, outcome)
    return resolved.dispute


def _changed(dispute_id: str, outcome: DisputeOutcome) -> AdminDispute:
    """Another resolution got there first: fine if it resolved the same way."""
    found = store.get(dispute_id)
    if found is None:
        raise NotFoundError("dispute not found")
    if found.dispute.status == "open":
        raise ConflictError(f"the dispute is being resolved as {found.pending_outcome}")
    return _already_resolved(found, outcome)


def _already_resolved(found: StoredDispute, outcome: DisputeOutcome) -> AdminDispute:
    if found.dispute.status != outcome:
        raise ConflictError(f"the dispute was already resolved as {found.dispute.status}")
    return found.dispute
