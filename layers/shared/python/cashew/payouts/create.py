"""Creating a payout: an operation of the idempotency protocol (cashew.payments.idempotency).

    admit     the payer's history is read and the payout screened (cashew.payments.fraud);
              blocked → `failed`, `fraud_suspected`, nothing moved (admitted at once); a
              balance below the amount → `failed`, `insufficient_funds`, nothing moved
              (at once, the attempt recorded as a balance payment's is). Otherwise the
              in-progress record is written in one transaction with the attempt, the
              payout (`pending`) and the debit (`available >= amount`): a debit that fails
              because the balance changed meanwhile admits again, and then answers
              `insufficient_funds` if it is too low.
    prepare   a method that is not `active` is refused (422, nothing written but the record,
              which is dropped). A request taking over a record whose outcome was unknown
              resumes the payout its admission wrote.
    gateway   the payout under the protocol's key (`Scope.gateway_key`).
    commit    with the record: `paid`, or `failed` with the money credited back in the same
              write, or (still `pending` at the gateway) only its id. Each write is
              conditional on the payout being `pending`: when the webhook settled it first,
              the request answers the payout as that left it.
An unknown outcome (a timeout) keeps the payout `pending` and the record in progress: a
retry with the same key asks the gateway again; so may the webhook and reconciliation
(`settle.settle_pending`), each with the same conditional write.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, dynamo, ids
from cashew.accounts import face as accounts
from cashew.accounts import velocity
from cashew.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PaymentMethodUnusableError,
    RateLimitedError,
)
from cashew.gateways.base import GATEWAY_ERROR_PAYOUT, GatewayPayout
from cashew.identity import Caller
from cashew.observability import logger, metrics
from cashew.payments import fraud, idempotency
from cashew.payments.idempotency import Admission, Commit, IdempotencyRecord, Kept, Outcome, Refused
from cashew.payouts import settle, store
from cashew.payouts.models import PayoutList, PayoutRequest, PayoutResponse
from cashew.payouts.store import StoredPayout

FIELD = "payment_method_id"
BLOCKED_MESSAGE = "the payout was blocked by risk screening"
LOW_MESSAGE = "the balance is too low for this payout"


def create_payout(caller: Caller, request: PayoutRequest, key: str) -> Outcome[PayoutResponse]:
    accounts.require_verified_email(caller.user_id)  # before any read or write of money
    scope = idempotency.scope(
        caller.user_id, key, "POST /v1/payouts", request.model_dump(mode="json")
    )
    method_id = request.payment_method_id or accounts.default_payment_method_id(caller.user_id)
    method = accounts.get_payment_method(caller.user_id, method_id) if method_id else None
    if method is None:
        recorded = _recorded(scope)  # a retry answers as it did, the card deleted since or not
        if recorded is not None:
            return recorded
    if method_id is None:
        raise InvalidRequestError(
            "no payment method given, and the account has no default one",
            errors=[{"field": FIELD, "message": "required: the account has no default method"}],
        )
    if method is None:
        raise NotFoundError("payment method not found")
    outcome = idempotency.run(PayoutOperation(caller, scope, method, request))
    if not outcome.replayed:
        metrics.add_metric(name=f"Payout_{outcome.model.status}", unit=MetricUnit.Count, value=1)
    return outcome


def get_payout(caller: Caller, payout_id: str) -> PayoutResponse:
    stored = store.get(payout_id)
    if stored is None or stored.user_id != caller.user_id:
        raise NotFoundError("payout not found")
    return stored.payout


def list_payouts(caller: Caller, limit: int, cursor: str | None) -> PayoutList:
    return store.list_payouts(caller.user_id, limit, cursor)


def _recorded(scope: idempotency.Scope) -> Outcome[PayoutResponse] | None:
    record = idempotency.get(scope)
    replay = idempotency.check(scope, record) if record is not None else None
    if replay is None:
        return None
    model = PayoutResponse.model_validate_json(replay.body)
    return Outcome(model, created=replay.status_code == 201, replayed=True)


class PayoutOperation:
    """One payout's steps (see the module's docstring)."""

    answer = PayoutResponse
    creates = True
    gateway_refused = GATEWAY_ERROR_PAYOUT

    def __init__(
        self,
        caller: Caller,
        scope: idempotency.Scope,
        method: accounts.PaymentMethod,
        request: PayoutRequest,
    ) -> None:
        self.scope = scope
        self.caller = caller
        self.method = method
        self.request = request
        self.payout_id = ids.new_id("po")
        self.failure: tuple[str, str] | None = None
        self.resumed: StoredPayout | None = None

    def _stored(self, payout_id: str, screening: fraud.Screening) -> StoredPayout:
        now = clock.utcnow_str()
        payout = PayoutResponse(
            id=payout_id,
            amount=self.request.amount,
            currency=self.request.currency,
            payment_method_id=self.method.id,
            status="pending",
            failure_code=None,
            failure_message=None,
            risk=screening.risk(),
            created_at=now,
            updated_at=now,
        )
        return StoredPayout(
            payout, self.caller.user_id, self.scope.gateway_key, None, tuple(screening.fired)
        )

    def admit(self) -> Admission:
        user_id, amount, currency = self.caller.user_id, self.request.amount, self.request.currency
        history = velocity.read(user_id)
        self.screening = fraud.screen(
            amount,
            currency,
            history=history,
            card_added_at=self.method.created_at,
            card_risk_flag=self.method.gateway_risk_flag,
        )
        self.stored = self._stored(self.payout_id, self.screening)
        kept = Kept(self.screening.score, self.screening.fired, self.method.id)
        if self.screening.blocked:  # not an attempt: nothing is recorded but the payout
            return self._failed_at_once(kept, "fraud_suspected", BLOCKED_MESSAGE, None)
        if self.method.current_status() != "active":  # refused in `prepare`
            return Admission(self.payout_id, kept)
        attempt = dynamo.Transaction().add("history", history.record_item(amount, currency))
        seen = accounts.held(user_id, currency, at_least=amount)
        if seen.total < amount:
            return self._failed_at_once(kept, "insufficient_funds", LOW_MESSAGE, attempt)
        try:
            accounts.gather(user_id, currency, amount, seen)  # a hot payee's shards: their money
        except (ConflictError, RateLimitedError):
            if idempotency.get(self.scope) is None:
                raise
            return self._answered_by_record(kept)  # a retry: its record answers, not the shards
        self.failure, self.answer_only = None, False
        along = (
            attempt.add("payout", store.put_item(self.stored))
            .extend(accounts.debit(user_id, currency, amount))
        )  # fmt: skip
        return Admission(self.payout_id, kept, along)

    def _failed_at_once(
        self, kept: Kept, code: str, message: str, along: dynamo.Transaction | None
    ) -> Admission:
        """A payout that fails before anything moves, answered at once; unless this key has
        a record already: a retry of a payout that debited the balance (so it may look too
        low now, or its attempt now count against it) resumes or replays that record."""
        if idempotency.get(self.scope) is not None:
            return self._answered_by_record(kept)
        self.failure, self.answer_only = (code, message), False
        return Admission(self.payout_id, at_once=True, along=along)

    answer_only = False  # admitted for this key's record to answer: nothing of its own

    def _answered_by_record(self, kept: Kept) -> Admission:
        """An admission that stores and debits nothing, for the record this key has to
        replay or resume; should the record be gone by then, `prepare` refuses."""
        self.failure, self.answer_only = None, True
        return Admission(self.payout_id, kept)

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        if resumed is None and self.answer_only:  # the record went (expired, or abandoned)
            raise Refused(ConflictError("this payout's earlier request is gone; retry it"))
        if resumed is None:
            status = self.method.current_status()
            if status != "active":
                raise Refused(
                    PaymentMethodUnusableError(
                        f"the payment method is {status}: add or choose another",
                        errors=[{"field": FIELD, "message": f"the payment method is {status}"}],
                    )
                )
            return
        stored = store.get(work_id)
        if stored is None:  # an in-progress record of a payout always wrote it
            raise ConflictError("the payout of this request is not stored")
        logger.info("resuming a payout whose outcome is unknown", extra={"payout_id": work_id})
        self.stored = self.resumed = stored

    def gateway(self, key: str) -> Callable[[], GatewayPayout] | None:
        if self.stored.payout.status != "pending":
            return None  # settled meanwhile (webhook, reconciliation): nothing to ask
        method = self.method
        if self.resumed is not None and method.id != self.stored.payout.payment_method_id:
            found = accounts.get_payment_method(
                self.caller.user_id, self.stored.payout.payment_method_id
            )
            if found is None:
                raise NotFoundError("the payment method this payout paid was deleted")
            method = found
        return settle.gateway_call(self.stored, method, key)

    def commit(self, answer: GatewayPayout | None) -> Commit[PayoutResponse]:
        if self.failure is not None:  # admitted at once: nothing moved
            code, message = self.failure
            failed = self.stored.settled("failed", code, message)
            return Commit(failed.payout, dynamo.Transaction().add("payout", store.put_item(failed)))
        if answer is None:  # settled before this request asked
            return Commit(self.stored.payout, dynamo.Transaction())
        after, tx = settle.settlement(self.stored, answer)
        return Commit(after.payout, tx)

    def canceled(self, exc: dynamo.TransactionCanceled) -> Commit[PayoutResponse] | None:
        if self.failure is None and exc.failed("payout"):  # settled first by someone else
            now = store.get(self.stored.payout.id)
            if now is not None:
                return Commit(now.payout, dynamo.Transaction())
        return None
