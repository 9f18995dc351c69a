"""After a payment is created: reading and listing it, capture, cancel and refunds.

Capture, cancel and refund are operations of the idempotency protocol
(cashew.payments.idempotency): these are only their own steps. Each change is one
conditional TransactWriteItems that also completes the request's idempotency record: a
capture or cancel moves the payment out of `requires_capture` only if it is still there,
and a refund raises `amount_refunded` only while the total stays within what was captured,
however many requests race.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit
from pydantic import BaseModel

from cashew import clock, dynamo, ids
from cashew.accounts import face as accounts
from cashew.errors import (
    ConflictError,
    ForbiddenError,
    IdempotencyInProgressError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
)
from cashew.gateways import get_gateway
from cashew.gateways.base import Charge, GatewayRefund
from cashew.identity import Caller
from cashew.observability import metrics
from cashew.payments import idempotency, states
from cashew.payments import store as payments
from cashew.payments.idempotency import Admission, Commit, IdempotencyRecord, Outcome, Refused
from cashew.payments.models import (
    CaptureRequest,
    PaymentList,
    PaymentResponse,
    PaymentStatus,
    RefundList,
    RefundRequest,
    RefundResponse,
)

# Refunds of won disputes are made under this user: its idempotency keys (the dispute ids)
# belong to no client, so no client request can collide with them.
DISPUTES = "disputes"


def _visible(caller: Caller, payment_id: str) -> payments.StoredPayment:
    """The payment if the caller is its payer or payee (or an admin); 404 otherwise, so
    that nobody learns whether someone else's payment exists."""
    stored = payments.get(payment_id)
    if stored is None or (
        caller.role != "admin"
        and caller.user_id not in (stored.payment.payer_id, stored.payment.payee_id)
    ):
        raise NotFoundError("payment not found")
    return stored


def get_payment(caller: Caller, payment_id: str) -> PaymentResponse:
    """The payment; an admin also sees which screening rules fired (a payer never does)."""
    stored = _visible(caller, payment_id)
    if caller.role != "admin":
        return stored.payment
    risk = stored.payment.risk.model_copy(update={"rules": stored.fired_rules})
    return stored.payment.model_copy(update={"risk": risk})


def list_payments(
    caller: Caller,
    role: payments.Role,
    status: PaymentStatus | None,
    limit: int,
    cursor: str | None,
) -> PaymentList:
    page, next_cursor = payments.list_payments(caller.user_id, role, status, limit, cursor)
    return PaymentList(
        data=[s.payment for s in page], has_more=next_cursor is not None, next_cursor=next_cursor
    )


def list_refunds(caller: Caller, payment_id: str, limit: int, cursor: str | None) -> RefundList:
    _visible(caller, payment_id)
    page, next_cursor = payments.list_refunds(payment_id, limit, cursor)
    return RefundList(
        data=[s.refund for s in page], has_more=next_cursor is not None, next_cursor=next_cursor
    )


# ------------------------------------------------------------------- capture, cancel


def capture(
    caller: Caller, payment_id: str, request: CaptureRequest, key: str
) -> Outcome[PaymentResponse]:
    accounts.require_verified_email(caller.user_id)  # before any read or write of money
    stored = _visible(caller, payment_id)
    if caller.user_id != stored.payment.payee_id:
        raise ForbiddenError("only the payee can capture a payment")
    scope = idempotency.scope(
        caller.user_id,
        key,
        f"POST /v1/payments/{payment_id}/capture",
        request.model_dump(mode="json"),
    )
    return _counted("PaymentCaptured", idempotency.run(Capture(scope, stored, request.amount)))


def cancel(caller: Caller, payment_id: str, key: str) -> Outcome[PaymentResponse]:
    accounts.require_verified_email(caller.user_id)  # before any read or write of money
    stored = _visible(caller, payment_id)
    scope = idempotency.scope(caller.user_id, key, f"POST /v1/payments/{payment_id}/cancel", {})
    return _counted("PaymentCanceled", idempotency.run(Cancel(scope, stored)))


class _Resolution:
    """Capture and cancel: the authorisation's one resolution, moving the payment out of
    `requires_capture` only if nobody moved it meanwhile."""

    answer = PaymentResponse
    creates = False
    gateway_refused = None
    event: states.Event

    def __init__(self, scope: idempotency.Scope, stored: payments.StoredPayment) -> None:
        self.scope = scope
        self.stored = stored
        self.payment = stored.payment

    def admit(self) -> Admission:
        return Admission(self.payment.id)

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        try:
            self.status = states.after(self.payment.status, self.event)
        except ConflictError as error:
            raise Refused(error) from None

    def canceled(self, exc: dynamo.TransactionCanceled) -> None:
        if exc.failed("transition"):  # another request moved the payment first
            raise Refused(ConflictError("the payment changed meanwhile")) from exc


class Capture(_Resolution):
    event = "capture"

    def __init__(
        self, scope: idempotency.Scope, stored: payments.StoredPayment, amount: int | None
    ) -> None:
        super().__init__(scope, stored)
        self.amount = amount or self.payment.amount

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        super().prepare(work_id, resumed)
        if self.amount > self.payment.amount:
            raise Refused(
                InvalidRequestError(
                    "amount exceeds the authorised amount",
                    errors=[
                        {"field": "amount", "message": f"must be at most {self.payment.amount}"}
                    ],
                )
            )

    def gateway(self, key: str) -> Callable[[], Charge | None]:
        charge_id = self.stored.charge_id or ""
        return lambda: get_gateway().capture(charge_id, self.amount, idempotency_key=key)

    def commit(self, answer: Charge | None) -> Commit[PaymentResponse]:
        if answer is None or answer.status != "succeeded":
            raise Refused(ConflictError("the gateway did not capture the payment; retry later"))
        payment, amount, now = self.payment, self.amount, clock.utcnow_str()
        captured = payment.model_copy(
            update={"status": self.status, "amount_captured": amount, "updated_at": now}
        )
        transition = payments.transition_item(
            payment, self.status, amount_captured=amount, updated_at=now
        )
        items = (
            dynamo.Transaction()
            .add("transition", transition)
            .add(
                "credit",
                accounts.credit_item(
                    payment.payee_id, payment.currency, amount, spread_by=payment.id
                ),
            )
        )
        return Commit(captured, items)


class Cancel(_Resolution):
    event = "cancel"

    def gateway(self, key: str) -> Callable[[], Charge | None]:
        charge_id = self.stored.charge_id or ""
        return lambda: get_gateway().void(charge_id, idempotency_key=key)

    def commit(self, answer: Charge | None) -> Commit[PaymentResponse]:
        if answer is None or answer.status == "failed":
            raise Refused(
                ConflictError("the gateway did not release the authorisation; retry later")
            )
        now = clock.utcnow_str()
        canceled = self.payment.model_copy(update={"status": self.status, "updated_at": now})
        transition = payments.transition_item(self.payment, self.status, updated_at=now)
        return Commit(canceled, dynamo.Transaction().add("transition", transition))


# ----------------------------------------------------------------------------- refunds


def refund(
    caller: Caller, payment_id: str, request: RefundRequest, key: str
) -> Outcome[RefundResponse]:
    """Refund by the payee (or an admin): the payee's balance is debited and the payer
    credited, to the balance or, for card payments, to the card through the gateway."""
    accounts.require_verified_email(caller.user_id)  # before any read or write of money
    stored = _visible(caller, payment_id)
    if caller.user_id != stored.payment.payee_id and caller.role != "admin":
        raise ForbiddenError("only the payee can refund a payment")
    scope = _refund_scope(caller.user_id, key, payment_id, request)
    outcome = idempotency.run(Refund(scope, stored, request))
    return _counted(f"Refund_{outcome.model.status}", outcome)


def _counted[M: BaseModel](name: str, outcome: Outcome[M]) -> Outcome[M]:
    """Count what this request did; a replay was counted by the request it replays."""
    if not outcome.replayed:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
    return outcome


def refund_for_dispute(dispute_id: str, payment_id: str) -> RefundResponse:
    """Refund the payer what is left of the payment, for a won dispute: idempotent on the
    dispute (the `disputes` user's key is the dispute's id), so a retried resolution never
    refunds twice. Raises as `refund` does (409 in progress while it waits for the gateway,
    422 when nothing is left, 409 when the payee's balance is too low)."""
    stored = payments.get(payment_id)
    if stored is None:
        raise NotFoundError("payment not found")
    request = RefundRequest(reason="dispute_won")
    scope = _refund_scope(DISPUTES, dispute_id, payment_id, request)
    return idempotency.run(Refund(scope, stored, request)).model


def _refund_scope(
    user_id: str, key: str, payment_id: str, request: RefundRequest
) -> idempotency.Scope:
    path = f"POST /v1/payments/{payment_id}/refunds"
    return idempotency.scope(user_id, key, path, request.model_dump(mode="json"))


class Refund:
    """A refund. From the balance, it completes in one transaction; to a card, it first
    takes the money from the payee (so it cannot be refunded twice), then asks the gateway
    and completes once the gateway confirms. A retry of a card refund whose money moved
    resumes at the gateway."""

    answer = RefundResponse
    creates = True
    gateway_refused = None

    def __init__(
        self, scope: idempotency.Scope, stored: payments.StoredPayment, request: RefundRequest
    ) -> None:
        self.scope = scope
        self.stored = stored
        self.payment = stored.payment
        self.request = request
        self.by_card = self.payment.source.get("type") == "card"

    def admit(self) -> Admission:
        return Admission(ids.new_id("re"))

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        existing = payments.get_refund(work_id)
        if existing is not None:  # an earlier attempt moved the money; settle the card part
            self.refund, self.by_card = existing.refund, True
            return
        payment = self.payment
        if not states.refundable(payment.status):
            raise Refused(ConflictError(f"a payment that is {payment.status} cannot be refunded"))
        remaining = payment.amount_captured - payment.amount_refunded
        amount = self.request.amount or remaining
        if amount > remaining or amount < 1:
            raise Refused(
                InvalidRequestError(
                    "amount exceeds what is left to refund",
                    errors=[{"field": "amount", "message": f"must be at most {remaining}"}],
                )
            )
        now, payee, currency = clock.utcnow_str(), payment.payee_id, payment.currency
        self.refund = RefundResponse(
            id=work_id,
            payment_id=payment.id,
            amount=amount,
            currency=payment.currency,
            status="pending" if self.by_card else "succeeded",
            reason=self.request.reason,
            created_at=now,
        )
        self.money = (
            dynamo.Transaction()
            .add("refunded", payments.refund_item(payment, amount, now))
            .add("refund", payments.put_refund_item(self.refund, payment, None, self.scope.pk))
            .extend(accounts.debit(payee, currency, amount))
        )
        self.payee = payee
        if accounts.is_hot(payee):  # its money is in credit shards: gathered first, if needed
            self._gather(accounts.held(payee, currency))
        if not self.by_card:  # completes with the record, in commit
            credit = accounts.credit_item(payment.payer_id, currency, amount, spread_by=work_id)
            self.money.add("credit", credit)
            return
        while True:  # the card's refund: its money moved now, before the gateway is asked
            try:
                self.money.write_retrying()
                return
            except dynamo.TransactionCanceled as exc:
                if self.canceled(exc) is None:
                    raise

    def gateway(self, key: str) -> Callable[[], GatewayRefund | None] | None:
        if not self.by_card:
            return None
        charge_id, amount = self.stored.charge_id or "", self.refund.amount
        return lambda: get_gateway().refund(charge_id, amount, idempotency_key=key)

    def commit(self, answer: GatewayRefund | None) -> Commit[RefundResponse]:
        if not self.by_card:
            return Commit(self.refund, self.money)
        if answer is None or answer.status != "succeeded":
            raise IdempotencyInProgressError(
                "the refund is taken from the balance and waits for the gateway; retry with the "
                "same Idempotency-Key"
            )
        settled = self.refund.model_copy(update={"status": "succeeded"})
        settle = payments.settle_refund_item(self.refund.id, answer.id or "")
        return Commit(settled, dynamo.Transaction().add("settle", settle), replay_if=("settle",))

    gathered = 0  # times the payee's shards were gathered after its debit failed

    def canceled(self, exc: dynamo.TransactionCanceled) -> Commit[RefundResponse] | None:
        """The money's transaction failed: nothing was done. When only the debit failed and
        the payee's credit shards hold the money (a payee hot now or before, or another
        debit took what was gathered), it is gathered and the money's transaction is tried
        again (returned), at most `accounts.GATHERINGS` times. (A card refund's settling transaction
        holds no money items: its cancellation is raised as it is.)"""
        if "refunded" not in exc.names:
            return None
        if exc.failed("refunded"):
            raise Refused(ConflictError("the refunds would exceed the captured amount")) from exc
        if not accounts.debit_failed(exc):
            return None
        if self.gathered == accounts.GATHERINGS:
            busy = ConflictError("the payee's balance keeps changing; retry the request")
            raise Refused(busy) from exc
        seen = accounts.held(self.payee, self.refund.currency, at_least=self.refund.amount)
        if seen.total < self.refund.amount:
            low = ConflictError("the payee's balance is too low for this refund")
            raise Refused(low) from exc
        self._gather(seen)
        self.gathered += 1
        return Commit(self.refund, self.money)

    def _gather(self, seen: accounts.Held) -> None:
        """The payee's credit shards' money into its main item for this refund's debit; a
        busy or throttled shard refuses the refund (409 or 429; nothing of the refund is
        written, and the money gathered stays where it went)."""
        try:
            accounts.gather(self.payee, self.refund.currency, self.refund.amount, seen)
        except (ConflictError, RateLimitedError) as busy:
            raise Refused(busy) from busy
