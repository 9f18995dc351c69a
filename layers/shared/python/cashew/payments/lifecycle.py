"""After a payment is created: reading and listing it, capture, cancel and refunds.

Every change is one conditional TransactWriteItems that also completes the request's
idempotency record: a capture or cancel moves the payment out of `requires_capture` only if
it is still there, and a refund raises `amount_refunded` only while the total stays within
what was captured, however many requests race.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cashew import clock, dynamo, ids
from cashew.accounts import store as accounts
from cashew.config import get_settings
from cashew.errors import (
    ConflictError,
    ForbiddenError,
    IdempotencyInProgressError,
    InvalidRequestError,
    NotFoundError,
)
from cashew.identity import Caller
from cashew.payments import idempotency, states
from cashew.payments import store as payments
from cashew.payments.gateways import get_gateway
from cashew.payments.gateways.base import GatewayOutcomeUnknownError, with_retries
from cashew.payments.models import (
    CaptureRequest,
    PaymentList,
    PaymentResponse,
    PaymentStatus,
    RefundList,
    RefundRequest,
    RefundResponse,
)
from cashew.payments.results import Result, replay, transact

OK, CREATED = 200, 201


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
    return RefundList(data=page, has_more=next_cursor is not None, next_cursor=next_cursor)


# -------------------------------------------------------------------- gateway calls


def _gateway_call[T](scope: idempotency.Scope, call: Callable[[], T], failure: T) -> T:
    """A gateway call with bounded retries. An unknown outcome leaves the request in
    progress (409; the retry asks again with the same key); a refusal after every attempt
    returns `failure`."""
    try:
        return with_retries(call, attempts=get_settings().gateway_max_attempts, failure=failure)
    except GatewayOutcomeUnknownError as exc:
        idempotency.release(scope)
        raise IdempotencyInProgressError(
            "the gateway has not confirmed the outcome yet; retry with the same Idempotency-Key"
        ) from exc


def _start(scope: idempotency.Scope, reserved_id: str) -> tuple[str, Result | None]:
    """Write the in-progress record (or resume an abandoned one): the id this request works
    under, or the replay of its recorded response."""
    existing = idempotency.begin(scope, reserved_id)
    if existing is None:
        return reserved_id, None
    recorded = idempotency.check(scope, existing)
    if recorded is not None:
        return reserved_id, replay(recorded)
    idempotency.take_over(scope, existing)
    return str(existing["payment_id"]), None


def _refuse(scope: idempotency.Scope, error: Exception) -> Exception:
    """Nothing was done: free the key, so the client can retry once the cause is fixed."""
    idempotency.abandon(scope)
    return error


# ------------------------------------------------------------------- capture, cancel


def capture(caller: Caller, payment_id: str, request: CaptureRequest, key: str) -> Result:
    stored = _visible(caller, payment_id)
    payment = stored.payment
    if caller.user_id != payment.payee_id:
        raise ForbiddenError("only the payee can capture a payment")
    scope = idempotency.scope(
        caller.user_id,
        key,
        f"POST /v1/payments/{payment_id}/capture",
        request.model_dump(mode="json"),
    )
    _, recorded = _start(scope, payment_id)
    if recorded is not None:
        return recorded
    try:
        status = states.after(payment.status, "capture")
    except ConflictError as error:
        raise _refuse(scope, error) from None
    amount = request.amount or payment.amount
    if amount > payment.amount:
        raise _refuse(
            scope,
            InvalidRequestError(
                "amount exceeds the authorised amount",
                errors=[{"field": "amount", "message": f"must be at most {payment.amount}"}],
            ),
        )
    charge = _gateway_call(
        scope,
        lambda: get_gateway().capture(
            stored.charge_id or "", amount, idempotency_key=scope.gateway_key
        ),
        failure=None,
    )
    if charge is None or charge.status != "succeeded":
        raise _refuse(scope, ConflictError("the gateway did not capture the payment; retry later"))
    now = clock.utcnow_str()
    captured = payment.model_copy(
        update={"status": status, "amount_captured": amount, "updated_at": now}
    )
    return _commit(
        scope,
        captured,
        OK,
        [
            payments.transition_item(payment, status, amount_captured=amount, updated_at=now),
            accounts.credit_item(payment.payee_id, payment.currency, amount),
        ],
    )


def cancel(caller: Caller, payment_id: str, key: str) -> Result:
    stored = _visible(caller, payment_id)
    payment = stored.payment
    scope = idempotency.scope(caller.user_id, key, f"POST /v1/payments/{payment_id}/cancel", {})
    _, recorded = _start(scope, payment_id)
    if recorded is not None:
        return recorded
    try:
        status = states.after(payment.status, "cancel")
    except ConflictError as error:
        raise _refuse(scope, error) from None
    voided = _gateway_call(
        scope,
        lambda: get_gateway().void(stored.charge_id or "", idempotency_key=scope.gateway_key),
        failure=None,
    )
    if voided is None or voided.status == "failed":
        raise _refuse(
            scope, ConflictError("the gateway did not release the authorisation; retry later")
        )
    now = clock.utcnow_str()
    canceled = payment.model_copy(update={"status": status, "updated_at": now})
    return _commit(scope, canceled, OK, [payments.transition_item(payment, status, updated_at=now)])


def _commit(
    scope: idempotency.Scope,
    payment: PaymentResponse,
    status_code: int,
    items: list[dict[str, Any]],
) -> Result:
    body = payment.model_dump_json()
    try:
        transact([idempotency.complete_item(scope, status_code, body), *items])
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0):
            return replay(idempotency.replay_existing(scope))
        if exc.failed(1):  # another request moved the payment first
            raise _refuse(scope, ConflictError("the payment changed meanwhile")) from exc
        raise
    return Result(status_code, body)


# ----------------------------------------------------------------------------- refunds


def refund(caller: Caller, payment_id: str, request: RefundRequest, key: str) -> Result:
    """Refund by the payee (or an admin): the payee's balance is debited and the payer
    credited, to the balance or, for card payments, to the card through the gateway."""
    stored = _visible(caller, payment_id)
    payment = stored.payment
    if caller.user_id != payment.payee_id and caller.role != "admin":
        raise ForbiddenError("only the payee can refund a payment")
    scope = idempotency.scope(
        caller.user_id,
        key,
        f"POST /v1/payments/{payment_id}/refunds",
        request.model_dump(mode="json"),
    )

    refund_id, recorded = _start(scope, ids.new_id("re"))
    if recorded is not None:
        return recorded
    existing = payments.get_refund(refund_id)
    if existing is not None:  # an earlier attempt moved the money; settle the card part
        return _settle_card_refund(scope, stored, existing)
    if not states.refundable(payment.status):
        raise _refuse(
            scope, ConflictError(f"a payment that is {payment.status} cannot be refunded")
        )
    remaining = payment.amount_captured - payment.amount_refunded
    amount = request.amount or remaining
    if amount > remaining or amount < 1:
        raise _refuse(
            scope,
            InvalidRequestError(
                "amount exceeds what is left to refund",
                errors=[{"field": "amount", "message": f"must be at most {remaining}"}],
            ),
        )
    by_card = payment.source.get("type") == "card"
    now = clock.utcnow_str()
    refund = RefundResponse(
        id=refund_id,
        payment_id=payment.id,
        amount=amount,
        currency=payment.currency,
        status="pending" if by_card else "succeeded",
        reason=request.reason,
        created_at=now,
    )
    items = [
        payments.refund_item(payment, amount, now),
        payments.put_refund_item(refund, payment, None),
        accounts.debit_item(payment.payee_id, payment.currency, amount),
    ]
    if not by_card:
        items.append(accounts.credit_item(payment.payer_id, payment.currency, amount))
    body = refund.model_dump_json()
    # A balance refund completes here; a card refund first takes the money from the payee
    # (so it cannot be refunded twice), then asks the gateway.
    head = [] if by_card else [idempotency.complete_item(scope, CREATED, body)]
    try:
        transact([*head, *items])
    except dynamo.TransactionCanceled as exc:
        offset = len(head)
        if head and exc.failed(0):
            return replay(idempotency.replay_existing(scope))
        if exc.failed(offset):
            raise _refuse(
                scope, ConflictError("the refunds would exceed the captured amount")
            ) from exc
        if exc.failed(offset + 2):
            raise _refuse(
                scope, ConflictError("the payee's balance is too low for this refund")
            ) from exc
        raise
    if by_card:
        return _settle_card_refund(scope, stored, refund)
    return Result(CREATED, body)


def _settle_card_refund(
    scope: idempotency.Scope,
    stored: payments.StoredPayment,
    refund: RefundResponse,
) -> Result:
    result = _gateway_call(
        scope,
        lambda: get_gateway().refund(
            stored.charge_id or "", refund.amount, idempotency_key=scope.gateway_key
        ),
        failure=None,
    )
    if result is None or result.status != "succeeded":
        idempotency.release(scope)
        raise IdempotencyInProgressError(
            "the refund is taken from the balance and waits for the gateway; retry with the "
            "same Idempotency-Key"
        )
    settled = refund.model_copy(update={"status": "succeeded"})
    body = settled.model_dump_json()
    try:
        transact(
            [
                idempotency.complete_item(scope, CREATED, body),
                payments.settle_refund_item(refund.id, result.id or ""),
            ]
        )
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0) or exc.failed(1):
            return replay(idempotency.replay_existing(scope))
        raise
    return Result(CREATED, body)
