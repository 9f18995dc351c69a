"""Top-ups and payments: screening, the gateway, and the money transaction.

Every money write is one conditional TransactWriteItems that also completes the request's
idempotency record, so money moves at most once per key and its response is replayable.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, dynamo, ids
from cashew.accounts import cards
from cashew.accounts import store as accounts
from cashew.config import get_settings
from cashew.errors import (
    ConflictError,
    IdempotencyInProgressError,
    InvalidRequestError,
    NotFoundError,
    RateLimitedError,
)
from cashew.identity import Caller
from cashew.observability import logger, metrics
from cashew.payments import fraud, idempotency, velocity
from cashew.payments import store as payments
from cashew.payments.gateways import get_gateway
from cashew.payments.gateways.base import Charge, GatewayOutcomeUnknownError, with_retries
from cashew.payments.models import (
    BalanceSource,
    PaymentRequest,
    PaymentResponse,
    PaymentType,
    TopUpRequest,
)
from cashew.payments.results import Result, replay, transact

CREATED = 201
# Screen again at most this many times when other attempts of the payer keep being recorded
# between reading the payer's history and writing (each round, one of the racing attempts
# is recorded, so N concurrent attempts of one payer need at most N rounds).
SCREENING_ATTEMPTS = 16
BLOCKED_MESSAGE = "the payment was blocked by risk screening"
BUSY_MESSAGE = "other payments of this account are in progress; retry the request"


def _payment(
    *,
    payment_id: str,
    kind: PaymentType,
    payer_id: str,
    payee_id: str,
    amount: int,
    currency: str,
    source: dict[str, str],
    screening: fraud.Screening,
    description: str | None = None,
) -> PaymentResponse:
    now = clock.utcnow_str()
    return PaymentResponse(
        id=payment_id,
        type=kind,
        status="processing",
        amount=amount,
        currency=currency,
        payer_id=payer_id,
        payee_id=payee_id,
        source=source,
        amount_captured=0,
        amount_refunded=0,
        failure_code=None,
        failure_message=None,
        risk=screening.risk(),
        description=description,
        created_at=now,
        updated_at=now,
    )


def _failed(payment: PaymentResponse, code: str, message: str) -> PaymentResponse:
    return payment.model_copy(
        update={"status": "failed", "failure_code": code, "failure_message": message}
    )


def _count(payment: PaymentResponse) -> None:
    """Its outcome is published from the payments table's stream (cashew.payments.outcomes)."""
    metrics.add_metric(name=f"Payment_{payment.status}", unit=MetricUnit.Count, value=1)


# ------------------------------------------------------------------ balance payments


def create_payment(caller: Caller, request: PaymentRequest, key: str) -> Result:
    if request.payee_id == caller.user_id:
        raise InvalidRequestError(
            "the payee must be another user",
            errors=[{"field": "payee_id", "message": "must not be the payer"}],
        )
    scope = idempotency.scope(
        caller.user_id, key, "POST /v1/payments", request.model_dump(mode="json")
    )
    if isinstance(request.source, BalanceSource):
        return _balance_payment(caller, request, scope)
    return _card_charge(
        caller,
        scope,
        kind="payment",
        payee_id=request.payee_id,
        amount=request.amount,
        currency=request.currency,
        method_id=request.source.payment_method_id,
        capture=request.capture,
        description=request.description,
    )


def _balance_payment(caller: Caller, request: PaymentRequest, scope: idempotency.Scope) -> Result:
    """Success path: one GetItem (the payer's recent attempts, for screening) and one
    TransactWriteItems, which also records this attempt in them."""
    payment_id = ids.new_id("pay")
    for attempt in range(SCREENING_ATTEMPTS):
        _back_off(attempt)
        history = velocity.read(caller.user_id)
        screening = fraud.screen(request.amount, request.currency, history=history)
        payment = _payment(
            payment_id=payment_id,
            kind="payment",
            payer_id=caller.user_id,
            payee_id=request.payee_id,
            amount=request.amount,
            currency=request.currency,
            source={"type": "balance"},
            screening=screening,
            description=request.description,
        )
        if screening.blocked:
            payment = _failed(payment, "fraud_suspected", BLOCKED_MESSAGE)
            return _record_failure(scope, payment, screening)
        payment = payment.model_copy(
            update={"status": "succeeded", "amount_captured": payment.amount}
        )
        body = payment.model_dump_json()
        try:
            transact(
                [
                    idempotency.completed_item(scope, payment.id, CREATED, body),
                    payments.put_item(payment, screening.fired),
                    accounts.debit_item(payment.payer_id, payment.currency, payment.amount),
                    accounts.user_exists_check(payment.payee_id),
                    accounts.credit_item(payment.payee_id, payment.currency, payment.amount),
                    history.record_item(payment.amount, payment.currency),
                ]
            )
        except dynamo.TransactionCanceled as exc:
            if exc.failed(0):
                return replay(idempotency.replay_existing(scope))
            if exc.failed(5):  # another attempt of the payer was recorded: screen again
                continue
            if exc.failed(3):
                raise NotFoundError("payee not found") from exc
            if exc.failed(2):
                failed = _failed(
                    payment, "insufficient_funds", "the balance is too low for this payment"
                )
                return _record_failure(
                    scope, failed.model_copy(update={"amount_captured": 0}), screening
                )
            raise
        _count(payment)
        return Result(CREATED, body)
    raise ConflictError(BUSY_MESSAGE)


def _record_failure(
    scope: idempotency.Scope, payment: PaymentResponse, screening: fraud.Screening
) -> Result:
    """A failed attempt is a payment too: recorded with its key, so a retry replays it."""
    body = payment.model_dump_json()
    try:
        transact(
            [
                idempotency.completed_item(scope, payment.id, CREATED, body),
                payments.put_item(payment, screening.fired),
            ]
        )
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0):
            return replay(idempotency.replay_existing(scope))
        raise
    _count(payment)
    return Result(CREATED, body)


# ------------------------------------------------------------------------ card charges


def top_up(caller: Caller, request: TopUpRequest, key: str) -> Result:
    scope = idempotency.scope(
        caller.user_id, key, "POST /v1/top-ups", request.model_dump(mode="json")
    )
    return _card_charge(
        caller,
        scope,
        kind="top_up",
        payee_id=caller.user_id,
        amount=request.amount,
        currency=request.currency,
        method_id=request.payment_method_id,
        capture=True,
        description=None,
    )


def _card_charge(
    caller: Caller,
    scope: idempotency.Scope,
    *,
    kind: PaymentType,
    payee_id: str,
    amount: int,
    currency: str,
    method_id: str,
    capture: bool,
    description: str | None,
) -> Result:
    """Charge a card and credit the payee.

    The in-progress record is written before the gateway is called, with the key the gateway
    will see. A retry of a request whose outcome is unknown asks the gateway again with the
    same key (the gateway returns the same charge), then completes the record and moves the
    money in one transaction: whoever completes first wins, the other replays.
    """
    method = accounts.get_payment_method(caller.user_id, method_id)
    if method is None:
        raise NotFoundError("payment method not found")
    if payee_id != caller.user_id and not accounts.user_exists(payee_id):
        raise NotFoundError("payee not found")
    payment_id, screening, existing = _admit(
        scope,
        ids.new_id("pay"),
        lambda history: fraud.screen(
            amount,
            currency,
            history=history,
            card_added_at=method["created_at"],
            card_risk_flag=bool(method.get("gateway_risk_flag")),
        ),
        amount,
        currency,
    )
    if existing is not None:
        recorded = idempotency.check(scope, existing)
        if recorded is not None:
            return replay(recorded)
        idempotency.take_over(scope, existing)
        payment_id = str(existing["payment_id"])
        screening = _screening_of(existing, screening)
        logger.info("resuming a request whose outcome is unknown", extra={"payment_id": payment_id})
    payment = _payment(
        payment_id=payment_id,
        kind=kind,
        payer_id=caller.user_id,
        payee_id=payee_id,
        amount=amount,
        currency=currency,
        source={"type": "card", "payment_method_id": method_id},
        screening=screening,
        description=description,
    )
    if screening.blocked:
        payment = _failed(payment, "fraud_suspected", BLOCKED_MESSAGE)
        return _complete(scope, payment, screening, credit=False)
    sealed = cards.SealedToken(
        ciphertext=method["token_ciphertext"],
        nonce=method["token_nonce"],
        data_key=method["token_data_key"],
    )
    token = cards.unseal(sealed, caller.user_id, method_id)
    try:
        charge = with_retries(
            lambda: get_gateway().authorise(
                token,
                amount,
                currency,
                idempotency_key=scope.gateway_key,
                capture=capture,
                metadata={"payment_id": payment.id},
            ),
            attempts=get_settings().gateway_max_attempts,
        )
    except GatewayOutcomeUnknownError as exc:
        idempotency.release(scope)
        raise IdempotencyInProgressError(
            "the gateway has not confirmed the outcome yet; retry with the same Idempotency-Key"
        ) from exc
    payment = _apply_charge(payment, charge)
    credit = payment.status == "succeeded"
    return _complete(scope, payment, screening, credit=credit, charge_id=charge.id)


def _admit(
    scope: idempotency.Scope,
    payment_id: str,
    screen: Callable[[velocity.History], fraud.Screening],
    amount: int,
    currency: str,
) -> tuple[str, fraud.Screening, dict[str, Any] | None]:
    """Screen the charge against the payer's history, then write its in-progress record,
    which keeps the screening (a resumed request uses it) and, unless it is blocked, records
    the attempt in the history in the same transaction. Returns the payment id, the
    screening, and the record of an earlier request with this key, if there is one."""
    throttled = False
    for attempt in range(SCREENING_ATTEMPTS):
        _back_off(attempt)
        history = velocity.read(scope.user_id)
        screening = screen(history)
        extra = {"risk_score": screening.score, "fired_rules": screening.fired}
        recorded = [] if screening.blocked else [history.record_item(amount, currency)]
        try:
            existing = idempotency.begin(scope, payment_id, extra=extra, with_items=recorded)
        except dynamo.TransactionCanceled as exc:
            if exc.failed(1) or exc.retryable:  # the history changed meanwhile: screen again
                throttled = exc.throttled
                continue
            raise
        return payment_id, screening, existing
    if throttled:
        raise RateLimitedError(BUSY_MESSAGE, headers={"Retry-After": "1"})
    raise ConflictError(BUSY_MESSAGE)


def _back_off(attempt: int) -> None:
    """Before screening again: a short random pause, so racing attempts spread out."""
    if attempt:
        time.sleep(random.uniform(0, 0.005 * min(attempt, 8)))  # noqa: S311 # nosec B311 # jitter


def _screening_of(record: dict[str, Any], fresh: fraud.Screening) -> fraud.Screening:
    """The screening an in-progress record kept (`fresh` for a record that kept none)."""
    if "risk_score" not in record:
        return fresh
    return fraud.Screening(
        score=int(record["risk_score"]), fired=list(record.get("fired_rules") or [])
    )


def _apply_charge(payment: PaymentResponse, charge: Charge) -> PaymentResponse:
    if charge.status == "failed":
        return _failed(
            payment, charge.failure_code or "card_declined", charge.failure_message or "declined"
        )
    captured = payment.amount if charge.status == "succeeded" else 0
    return payment.model_copy(update={"status": charge.status, "amount_captured": captured})


def _complete(
    scope: idempotency.Scope,
    payment: PaymentResponse,
    screening: fraud.Screening,
    *,
    credit: bool,
    charge_id: str | None = None,
) -> Result:
    body = payment.model_dump_json()
    items = [
        idempotency.complete_item(scope, CREATED, body),
        payments.put_item(payment, screening.fired, charge_id),
    ]
    if credit:
        items.append(accounts.credit_item(payment.payee_id, payment.currency, payment.amount))
    try:
        transact(items)
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0) or exc.failed(1):
            return replay(idempotency.replay_existing(scope))
        raise
    _count(payment)
    return Result(CREATED, body)
