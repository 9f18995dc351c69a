"""Resuming card charges whose request died (reconciliation's `request#in_progress` row).

A top-up's or card payment's in-progress idempotency record keeps its request (the operation
and the validated body; cashew.payments.idempotency `Kept.request`) and is in ResumeIndex
(idempotency table; open_status = "request#in_progress", open_since = created_at) until the
completing write removes it. Once it is older than CASHEW_RECONCILE_AFTER, `resume` runs the
request again exactly as the client's retry would: the body rebuilt from the record (and
checked against its request hash), the same `CardCharge` through `idempotency.run`, under the
same record (taken over only once its lease has run out: 409 before, so it is left for the
next run), the gateway asked again under the request's key (the sandbox and Stripe answer the
same charge), then the completing write with the money. A client's retry racing it completes
the record first or replays it: the money moves once. The screening the record kept is used,
and no new attempt is recorded in the payer's history (the request's admission recorded it).

A request that can no longer be resumed (the payment method it charged was deleted since, or
the payee's account is gone) cannot be asked of the gateway: the method's gateway token is
deleted with it, and the gateway has no lookup by key. Its record is then taken out of
ResumeIndex (it stays in progress: a client's retry gets what it got before), with an ERROR
log and the `ReconcileUnresumable` metric naming the payment id the gateway charge carries in
its metadata, so that an operator voids or refunds it at the gateway: never silently.
"""

from __future__ import annotations

import contextlib

from aws_lambda_powertools.metrics import MetricUnit

from cashew import dynamo
from cashew.accounts import face as accounts
from cashew.config import get_settings
from cashew.errors import ConflictError
from cashew.identity import Caller
from cashew.observability import logger, metrics
from cashew.payments import create, fraud, idempotency
from cashew.payments.idempotency import Admission, IdempotencyRecord, Refused

SESSION = "reconcile"
"""The session id of a resumed request's caller (no client session is this)."""


class Resumed(create.CardCharge):
    """The card charge of a request that died, resumed under its record: admitted as the
    record already is (its screening and method, nothing recorded again); if the record
    vanished meanwhile (expired), the one just written is dropped and nothing is charged."""

    def __init__(
        self,
        caller: Caller,
        scope: idempotency.Scope,
        method: accounts.PaymentMethod,
        charge: create.CardRequest,
        field: str,
        *,
        record: IdempotencyRecord,
    ) -> None:
        super().__init__(caller, scope, method, charge, field)
        self.record = record

    def admit(self) -> Admission:
        kept = self.record.kept
        if kept is None:
            raise ValueError("a resumable record keeps its screening")
        self.screening = fraud.Screening(score=kept.risk_score, fired=kept.fired_rules)
        return Admission(self.record.payment_id, kept)

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        if resumed is None:  # the record expired meanwhile: this is no retry of it
            raise Refused(ConflictError("the request's record is gone"))
        super().prepare(work_id, resumed)


def resume(pk: str) -> bool:
    """Resume the request of the in-progress record `pk` (see the module's docstring): True
    when this call completed it."""
    item = dynamo.get_item(_table(), {"pk": pk})
    if item is None or item.get("status") != "in_progress" or "kept_request" not in item:
        return False  # completed (or expired) meanwhile
    record = IdempotencyRecord.from_item(item)
    user_id, _, key = pk.partition("#")
    operation, request = create.kept_request(str(item["kept_request"]))
    scope = idempotency.scope(user_id, key, operation, request.model_dump(mode="json"))
    if scope.request_hash != record.request_hash:
        raise ValueError("the kept request does not match the record's hash")
    charge, field = create.card_request(user_id, operation, request)
    method_id = record.kept.payment_method_id if record.kept else None
    method = accounts.get_payment_method(user_id, method_id) if method_id else None
    if method is None:
        return _unresumable(pk, record, "the payment method it charged was deleted")
    if charge.payee_id != user_id and not accounts.user_exists(charge.payee_id):
        return _unresumable(pk, record, "the payee's account is gone")
    caller = Caller(user_id=user_id, session_id=SESSION, role="user")
    op = Resumed(caller, scope, method, charge, field, record=record)
    op.payment_id = record.payment_id
    logger.info("resuming a card charge whose request died", extra={"payment_id": op.payment_id})
    outcome = idempotency.run(op)
    if outcome.replayed:  # a client's retry completed it first
        return False
    create.after_charge(caller.user_id, method.id, outcome)
    return True


def _unresumable(pk: str, record: IdempotencyRecord, reason: str) -> bool:
    """Out of ResumeIndex, still in progress; said loudly (see the module's docstring)."""
    with contextlib.suppress(dynamo.ConditionFailed):  # completed meanwhile: nothing to say
        dynamo.update_item(
            _table(),
            {"pk": pk},
            "REMOVE open_status, open_since",
            {":in_progress": "in_progress"},
            condition="#status = :in_progress",
            names={"#status": "status"},
        )
        logger.error(
            "a card charge cannot be resumed: void or refund it at the gateway",
            extra={"payment_id": record.payment_id, "reason": reason},
        )
        metrics.add_metric(name="ReconcileUnresumable", unit=MetricUnit.Count, value=1)
    return False


def _table() -> str:
    return get_settings().idempotency_table
