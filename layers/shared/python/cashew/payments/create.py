"""Creating payments: top-ups and payments, from the balance or by card.

Each is an operation of the idempotency protocol (cashew.payments.idempotency): these are
only its own steps. A payment is screened against the payer's recent attempts when it is
admitted, and its money moves in the one conditional TransactWriteItems that completes the
request's idempotency record, so money moves at most once per key and its response is
replayable. A failed attempt is a payment too, recorded with its key.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from cashew import clock, dynamo, ids
from cashew.accounts import cards, velocity
from cashew.accounts import face as accounts
from cashew.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PaymentMethodUnusableError,
)
from cashew.gateways import get_gateway
from cashew.gateways.base import GATEWAY_ERROR_CHARGE, Charge
from cashew.identity import Caller
from cashew.observability import logger, metrics
from cashew.payments import fraud, idempotency
from cashew.payments import store as payments
from cashew.payments.idempotency import (
    Admission,
    Commit,
    IdempotencyRecord,
    Kept,
    Outcome,
    Refused,
)
from cashew.payments.models import (
    BalanceSource,
    CardSource,
    NextAction,
    PaymentRequest,
    PaymentResponse,
    PaymentType,
    TopUpRequest,
)

BLOCKED_MESSAGE = "the payment was blocked by risk screening"


def create_payment(caller: Caller, request: PaymentRequest, key: str) -> Outcome[PaymentResponse]:
    accounts.require_verified_email(caller.user_id)  # before any read or write of money
    if request.payee_id == caller.user_id:
        raise InvalidRequestError(
            "the payee must be another user",
            errors=[{"field": "payee_id", "message": "must not be the payer"}],
        )
    scope = idempotency.scope(caller.user_id, key, PAYMENTS, request.model_dump(mode="json"))
    if isinstance(request.source, BalanceSource):
        return _counted(idempotency.run(BalancePayment(caller, request, scope)))
    charge, field = card_request(caller.user_id, PAYMENTS, request)
    return _card_charge(caller, scope, charge, field)


def top_up(caller: Caller, request: TopUpRequest, key: str) -> Outcome[PaymentResponse]:
    accounts.require_verified_email(caller.user_id)  # before any read or write of money
    scope = idempotency.scope(caller.user_id, key, TOP_UPS, request.model_dump(mode="json"))
    charge, field = card_request(caller.user_id, TOP_UPS, request)
    return _card_charge(caller, scope, charge, field)


TOP_UPS, PAYMENTS = "POST /v1/top-ups", "POST /v1/payments"
"""The operations of card charges, as their requests' records keep them."""


@dataclass(frozen=True, slots=True)
class CardRequest:
    """What a card charge was asked for: a top-up or a card payment; `kept` is the request
    its in-progress record keeps (the operation and the validated body: amounts, ids, the
    description, never card data), for reconciliation to resume it (cashew.payments.resume)."""

    kind: PaymentType
    payee_id: str
    amount: int
    currency: str
    method_id: str | None  # None: the caller's default
    capture: bool
    description: str | None
    kept: str


type CardChargeRequest = TopUpRequest | PaymentRequest


def card_request(
    user_id: str, operation: str, request: CardChargeRequest
) -> tuple[CardRequest, str]:
    """The card charge a top-up or card payment asks for, and the field naming its method;
    ValueError for a request that is not one (a balance payment, another operation)."""
    body = request.model_dump(mode="json")  # what the request's hash is of
    kept = json.dumps({"operation": operation, "body": body}, separators=(",", ":"))
    if operation == TOP_UPS and isinstance(request, TopUpRequest):
        top_up = request
        charge = CardRequest(
            kind="top_up",
            payee_id=user_id,
            amount=top_up.amount,
            currency=top_up.currency,
            method_id=top_up.payment_method_id,
            capture=True,
            description=None,
            kept=kept,
        )
        return charge, "payment_method_id"
    payment = request
    if (
        operation != PAYMENTS
        or not isinstance(payment, PaymentRequest)
        or not isinstance(payment.source, CardSource)
    ):
        raise ValueError(f"not a card charge: {operation}")
    charge = CardRequest(
        kind="payment",
        payee_id=payment.payee_id,
        amount=payment.amount,
        currency=payment.currency,
        method_id=payment.source.payment_method_id,
        capture=payment.capture,
        description=payment.description,
        kept=kept,
    )
    return charge, "source.payment_method_id"


def kept_request(kept: str) -> tuple[str, CardChargeRequest]:
    """The operation and the request a card charge's record kept (`CardRequest.kept`), validated
    again (ValidationError, ValueError for a kept request that is not one)."""
    parsed = json.loads(kept)
    operation = str(parsed["operation"])
    if operation == TOP_UPS:
        return operation, TopUpRequest.model_validate(parsed["body"])
    if operation == PAYMENTS:
        return operation, PaymentRequest.model_validate(parsed["body"])
    raise ValueError(f"not a card charge: {operation}")


def _card_charge(
    caller: Caller, scope: idempotency.Scope, charge: CardRequest, field: str
) -> Outcome[PaymentResponse]:
    """Charge a card (the caller's default when the request names none) and credit the payee
    (see CardCharge); then keep the method current (see `_keep_current`)."""
    method_id = charge.method_id or accounts.default_payment_method_id(caller.user_id)
    method = accounts.get_payment_method(caller.user_id, method_id) if method_id else None
    if method is None:
        recorded = _recorded(scope)  # a retry answers as it did, the card deleted since or not
        if recorded is not None:
            return recorded
    if method_id is None:
        raise InvalidRequestError(
            "no payment method given, and the account has no default one",
            errors=[{"field": field, "message": "required: the account has no default method"}],
        )
    if method is None:
        raise NotFoundError("payment method not found")
    charge = replace(charge, method_id=method_id)
    if charge.payee_id != caller.user_id and not accounts.user_exists(charge.payee_id):
        raise NotFoundError("payee not found")
    outcome = _counted(idempotency.run(CardCharge(caller, scope, method, charge, field)))
    if not outcome.replayed:  # the request it replays did this
        charged = outcome.model.source.get("payment_method_id") or method_id
        _keep_current(caller.user_id, str(charged), outcome.model)
    return outcome


def after_charge(user_id: str, method_id: str, outcome: Outcome[PaymentResponse]) -> None:
    """What a charge that completed its record does after it (a resumed one too): counted, and
    its method kept current."""
    _counted(outcome)
    charged = outcome.model.source.get("payment_method_id") or method_id
    _keep_current(user_id, str(charged), outcome.model)


def _recorded(scope: idempotency.Scope) -> Outcome[PaymentResponse] | None:
    """The recorded answer of this very request (same key, same body), if it completed: what a
    retry gets even when the method it charged is gone (or no longer the default)."""
    record = idempotency.get(scope)
    replay = idempotency.check(scope, record) if record is not None else None
    if replay is None:
        return None
    model = PaymentResponse.model_validate_json(replay.body)
    return Outcome(model, created=replay.status_code == 201, replayed=True)


def _keep_current(user_id: str, method_id: str, payment: PaymentResponse) -> None:
    """After the money is committed: a successful charge sets the method's `last_used_at`, an
    `expired_card` decline makes it `expired`. Each is one conditional UpdateItem that gives
    way (no retry, no error) when it loses a race (the method deleted, used later, or changed
    meanwhile), and nothing here fails the payment's answer: it is already recorded."""
    try:
        if payment.status in ("succeeded", "requires_capture"):
            accounts.mark_method_used(user_id, method_id, clock.utcnow_str())
        elif (
            payment.status == "failed"
            and payment.failure_code == "expired_card"
            and accounts.mark_method_expired(user_id, method_id)
        ):
            logger.info("payment method expired", extra={"payment_method_id": method_id})
    except (BotoCoreError, ClientError):
        logger.warning(
            "payment method not updated after the charge",
            extra={"payment_method_id": method_id, "payment_id": payment.id},
        )


def _counted(outcome: Outcome[PaymentResponse]) -> Outcome[PaymentResponse]:
    """Count what this request recorded (its outcome is published from the payments table's
    stream, cashew.outcomes); a replay was counted by the request it replays."""
    if not outcome.replayed:
        metrics.add_metric(name=f"Payment_{outcome.model.status}", unit=MetricUnit.Count, value=1)
    return outcome


# ------------------------------------------------------------------ balance payments


class BalancePayment:
    """A payment from the balance, admitted at once: one GetItem (the payer's recent
    attempts, for screening) and one TransactWriteItems on its success path, which records
    the attempt, the payment, the payer's debit (never below zero), a check that the payee
    exists and the payee's credit, with the completed idempotency record. A hot payee's
    credit goes to one of its credit shards and has no existence check (a hot payee is
    named by the operator and read once per process); a payer whose main balance item
    holds too little has its balance read and its shards' money gathered into that item
    (`accounts.gather`), and the payment is tried again, at most `accounts.GATHERINGS`
    times; a debit that keeps losing races to others is a 409 the client may retry, and only
    a read that finds too little (confirmed shards first, when shards hold money) fails the
    payment for insufficient funds."""

    answer = PaymentResponse
    creates = True
    gateway_refused = None

    def __init__(self, caller: Caller, request: PaymentRequest, scope: idempotency.Scope) -> None:
        self.scope = scope
        self.caller = caller
        self.request = request
        self.payment_id = ids.new_id("pay")

    def admit(self) -> Admission:
        history = velocity.read(self.caller.user_id)
        self.screening = fraud.screen(self.request.amount, self.request.currency, history=history)
        self.payment = _payment(
            payment_id=self.payment_id,
            kind="payment",
            payer_id=self.caller.user_id,
            payee_id=self.request.payee_id,
            amount=self.request.amount,
            currency=self.request.currency,
            source={"type": "balance"},
            screening=self.screening,
            description=self.request.description,
        )
        if self.screening.blocked:  # recorded as failed; a blocked attempt is not counted
            return Admission(self.payment_id, at_once=True)
        attempt = history.record_item(self.request.amount, self.request.currency)
        return Admission(
            self.payment_id, at_once=True, along=dynamo.Transaction().add("history", attempt)
        )

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        """Nothing to check: admitted at once."""

    def gateway(self, key: str) -> None:
        return None

    def commit(self, answer: None) -> Commit[PaymentResponse]:
        payment = self.payment
        if self.screening.blocked:
            return self._failure(_with_failure(payment, "fraud_suspected", BLOCKED_MESSAGE))
        payment = payment.model_copy(
            update={"status": "succeeded", "amount_captured": payment.amount}
        )
        payer, payee, currency = payment.payer_id, payment.payee_id, payment.currency
        items = (
            dynamo.Transaction()
            .add("payment", payments.put_item(payment, self.screening.fired))
            .extend(accounts.debit(payer, currency, payment.amount))
        )
        payee_check = accounts.payee_check(payee)
        if payee_check is not None:
            items.add("payee", payee_check)
        credit = accounts.credit_item(payee, currency, payment.amount, spread_by=payment.id)
        return Commit(payment, items.add("credit", credit), keeps_along=self.reads > 0)

    reads = 0  # of the payer's balance, after failed debits

    def canceled(self, exc: dynamo.TransactionCanceled) -> Commit[PaymentResponse] | None:
        if "debit" not in exc.names:  # the failed attempt's own record: raised as it is
            return None
        if "payee" in exc.names and exc.failed("payee"):
            raise NotFoundError("payee not found") from exc
        if not accounts.debit_failed(exc):
            return None
        # The main balance item held too little: its credit shards (a hot payee's) may hold
        # the rest, or another payment took the money gathered for this one.
        payment = self.payment
        seen = accounts.held(payment.payer_id, payment.currency, at_least=payment.amount)
        if seen.total >= payment.amount:
            if (
                self.reads == accounts.GATHERINGS
            ):  # the money is there; other debits keep taking it first
                raise ConflictError("the account is busy; retry the request") from exc
            self.reads += 1
            accounts.gather(payment.payer_id, payment.currency, payment.amount, seen)
            return self.commit(None)
        low = _with_failure(
            payment, "insufficient_funds", "the balance is too low for this payment"
        )
        return self._failure(low)

    def _failure(self, payment: PaymentResponse) -> Commit[PaymentResponse]:
        """A failed attempt is a payment too: recorded with its key, so a retry replays it."""
        put = payments.put_item(payment, self.screening.fired)
        return Commit(payment, dynamo.Transaction().add("payment", put))


# ------------------------------------------------------------------------ card charges


class CardCharge:
    """A card charge crediting the payee. Its in-progress record is written before the
    gateway is called, with the screening (a resumed request uses it), the request
    (`CardRequest.kept`: reconciliation resumes a request that died, cashew.payments.resume)
    and, unless it is blocked, the attempt recorded in the payer's history. The gateway
    sees the request's key, so a retry of a request whose outcome is unknown asks again (the
    gateway returns the same charge), then completes the record and moves the money in one
    transaction: whoever completes first wins, the other replays."""

    answer = PaymentResponse
    creates = True
    gateway_refused = GATEWAY_ERROR_CHARGE

    def __init__(
        self,
        caller: Caller,
        scope: idempotency.Scope,
        method: accounts.PaymentMethod,
        charge: CardRequest,
        field: str = "payment_method_id",
    ) -> None:
        self.scope = scope
        self.caller = caller
        self.method = method
        self.charge = charge
        self.field = field
        self.payment_id = ids.new_id("pay")

    def admit(self) -> Admission:
        history = velocity.read(self.scope.user_id)
        self.screening = fraud.screen(
            self.charge.amount,
            self.charge.currency,
            history=history,
            card_added_at=self.method.created_at,
            card_risk_flag=self.method.gateway_risk_flag,
        )
        kept = Kept(self.screening.score, self.screening.fired, self.method.id, self.charge.kept)
        if self.screening.blocked or self.method.current_status() != "active":
            # not an attempt: blocked, or refused as unusable before the gateway (`prepare`)
            return Admission(self.payment_id, kept)
        attempt = history.record_item(self.charge.amount, self.charge.currency)
        return Admission(self.payment_id, kept, dynamo.Transaction().add("history", attempt))

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        if resumed is not None:
            self.screening = _screening_of(resumed, self.screening)
            self._charge_the_kept_method(resumed)
            logger.info(
                "resuming a request whose outcome is unknown", extra={"payment_id": work_id}
            )
        else:  # (a resumed request may have charged the card: it asks the gateway again)
            self._refuse_unusable()
        charge = self.charge
        self.payment = _payment(
            payment_id=work_id,
            kind=charge.kind,
            payer_id=self.caller.user_id,
            payee_id=charge.payee_id,
            amount=charge.amount,
            currency=charge.currency,
            source={"type": "card", "payment_method_id": self.method.id},
            screening=self.screening,
            description=charge.description,
        )

    def _charge_the_kept_method(self, resumed: IdempotencyRecord) -> None:
        """A request that named no method charged the default of its time: the gateway is asked
        again about that card (with the same key), even if another is the default now."""
        kept = resumed.kept.payment_method_id if resumed.kept else None
        if kept is None or kept == self.method.id:
            return
        method = accounts.get_payment_method(self.caller.user_id, kept)
        if method is None:
            raise NotFoundError("the payment method this request charged was deleted")
        self.method = method

    def _refuse_unusable(self) -> None:
        """A method that is not active is refused before the gateway: nothing is charged, and
        the key is free again. An active one past its expiry month is written `expired`."""
        status = self.method.current_status()
        if status == "active":
            return
        if self.method.status == "active":  # expired by the calendar: say so from now on
            with contextlib.suppress(BotoCoreError, ClientError):
                accounts.mark_method_expired(self.caller.user_id, self.method.id)
        raise Refused(
            PaymentMethodUnusableError(
                f"the payment method is {status}: add or choose another",
                errors=[{"field": self.field, "message": f"the payment method is {status}"}],
            )
        )

    def gateway(self, key: str) -> Callable[[], Charge] | None:
        if self.screening.blocked:
            return None
        sealed = cards.SealedToken(
            ciphertext=self.method.token_ciphertext,
            nonce=self.method.token_nonce,
            data_key=self.method.token_data_key,
        )
        token = cards.unseal(sealed, self.caller.user_id, self.method.id)
        return lambda: get_gateway().authorise(
            token,
            self.charge.amount,
            self.charge.currency,
            idempotency_key=key,
            capture=self.charge.capture,
            metadata={"payment_id": self.payment.id},
        )

    def commit(self, answer: Charge | None) -> Commit[PaymentResponse]:
        if answer is None:  # blocked: the gateway is never asked
            payment = _with_failure(self.payment, "fraud_suspected", BLOCKED_MESSAGE)
            charge_id = None
        else:
            payment, charge_id = _apply_charge(self.payment, answer), answer.id
        items = dynamo.Transaction().add(
            "payment", payments.put_item(payment, self.screening.fired, charge_id)
        )
        if payment.status == "succeeded":
            credit = accounts.credit_item(
                payment.payee_id, payment.currency, payment.amount, spread_by=payment.id
            )
            items.add("credit", credit)
        return Commit(payment, items, replay_if=("payment",))

    def canceled(self, exc: dynamo.TransactionCanceled) -> None:
        return None


# ------------------------------------------------------------------------- the payment


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


def _with_failure(payment: PaymentResponse, code: str, message: str) -> PaymentResponse:
    return payment.model_copy(
        update={"status": "failed", "failure_code": code, "failure_message": message}
    )


def _screening_of(record: IdempotencyRecord, fresh: fraud.Screening) -> fraud.Screening:
    """The screening an in-progress record kept (`fresh` for a record that kept none)."""
    if record.kept is None:
        return fresh
    return fraud.Screening(score=record.kept.risk_score, fired=list(record.kept.fired_rules))


def _apply_charge(payment: PaymentResponse, charge: Charge) -> PaymentResponse:
    if charge.status == "failed":
        return _with_failure(
            payment, charge.failure_code or "card_declined", charge.failure_message or "declined"
        )
    if charge.status == "requires_action":  # 3-D Secure: nothing moves until it passes
        if not charge.action_url:
            raise ValueError("a requires_action charge carries the URL to authenticate at")
        action = NextAction(type="redirect_to_url", url=charge.action_url)
        return payment.model_copy(
            update={"status": "requires_action", "amount_captured": 0, "next_action": action}
        )
    captured = payment.amount if charge.status == "succeeded" else 0
    return payment.model_copy(update={"status": charge.status, "amount_captured": captured})
