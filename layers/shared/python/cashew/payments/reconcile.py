"""Reconciliation: settling what no request will (API.md, *Reconciliation (v1.1)*).

A run pages through ReconcileIndex (cashew.payments.store: only open records are in it,
oldest first per status) and the idempotency table's ResumeIndex (only in-progress card
charges that keep their request), and hands each record due to its kind's step, a row of
`SWEEPS`:

    payment#processing        after CASHEW_RECONCILE_AFTER: the charge is asked of the gateway
                              (`retrieve_charge`) and its answer applied by
                              `webhooks.apply`, the webhook's own conditional write;
    payment#requires_capture  after CASHEW_AUTHORIZATION_TTL: `Expire`, the client's cancel
                              (`after_create.Cancel`, through `idempotency.run`) under a key
                              of the payment, ending `canceled`, `cancellation_reason: expired`;
    payment#requires_action   after CASHEW_ACTION_TTL: `actions.abandon` (the charge voided,
                              then failed, authentication_failed, as a failed challenge);
    refund#pending            after CASHEW_RECONCILE_AFTER: the refund's own request is
                              resumed as its retry would be (`after_create.Refund` through
                              `idempotency.run`, under the request's record, taken over only
                              once its lease has run out), asking the gateway again under the
                              request's key;
    request#in_progress       after CASHEW_RECONCILE_AFTER (ResumeIndex): a top-up or card
                              payment whose request died (timeout, crash) after its record
                              was written, the card perhaps charged, nothing credited:
                              `resume.resume` rebuilds the request its record kept and runs
                              it as the client's retry would (`CardCharge` through
                              `idempotency.run`, the record taken over only once its lease
                              has run out, the gateway asked again under the request's key,
                              so it answers the same charge; then the completing write with
                              the money). One that can no longer be resumed (its method or
                              payee deleted since) is taken out of ResumeIndex and reported
                              (an ERROR log, `ReconcileUnresumable`, alarmed) for an operator
                              to void or refund at the gateway (see cashew.payments.resume).

Every step ends in a write conditional on the status the record was read in, the same write a
webhook, a client's retry or cancel would make, so whichever comes first settles the record
and the others change nothing (property 48): overlapping runs are safe too. An answer that
settles nothing (still processing, gateway unreachable, a request still holding its lease)
leaves the record open for the next run.

A top-up's or card payment's payment is stored only when its request completes, so its
in-progress idempotency record is what is swept: it keeps the operation and the validated
body (`kept_request`; no card data is in these bodies) and the caller's id (its pk), enough
to resume the request without guessing, and is in ResumeIndex only until it completes. Card
refunds are swept through their pending refund, which is stored first and names its record.
Other in-progress records (captures, cancels of a stored payment) are not: the payment they
work on is in ReconcileIndex.

A run is bounded: at most CASHEW_RECONCILE_MAX_ITEMS records, and it stops starting new ones
once the function's remaining time is under `STOP_MARGIN_MS`. It reports what it did as
metrics and one log line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypedDict

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from cashew import clock, dynamo
from cashew.config import Settings, get_settings
from cashew.errors import CashewError
from cashew.gateways import get_gateway
from cashew.gateways.base import Charge, GatewayOutcomeUnknownError, WebhookEvent, with_retries
from cashew.observability import logger, metrics
from cashew.payments import actions, after_create, idempotency, resume, webhooks
from cashew.payments import store as payments
from cashew.payments.idempotency import Commit
from cashew.payments.models import PaymentResponse, RefundRequest

RECONCILE = "reconcile"
"""The user whose idempotency keys reconciliation's own operations use (no client's id is
this: clients are usr_...), as disputes use `disputes`."""
STOP_MARGIN_MS = 5_000
"""No record is started with less time left: a run cut short mid-record (a slow gateway) is
safe anyway, since every step is conditional and idempotent; the next run resumes it."""
PAGE = 100


# ---------------------------------------------------------------------------- the steps


def settle_charge(payment_id: str) -> bool:
    """A processing payment: ask the gateway, and apply its answer as its webhook would."""
    stored = payments.get(payment_id)
    if stored is None or stored.payment.status != "processing" or not stored.charge_id:
        return False
    charge_id = stored.charge_id
    charge: Charge | None = with_retries(
        lambda: get_gateway().retrieve_charge(charge_id),
        attempts=get_settings().gateway_max_attempts,
        failure=None,
    )
    if charge is None or charge.status not in ("succeeded", "requires_capture", "failed"):
        return False  # unreachable, or not settled at the gateway either: the next run asks
    event = WebhookEvent(
        id=f"rcn_{charge_id}_{charge.status}",
        type="reconcile",
        charge_id=charge_id,
        payment_id=payment_id,
        status=charge.status,
        failure_code=charge.failure_code,
        amount_captured=charge.amount_captured,
    )
    return webhooks.apply(event) is True


class Expire(after_create.Cancel):
    """An authorisation past CASHEW_AUTHORIZATION_TTL: the cancel a client would make (the
    gateway's void, then `canceled`), recording why."""

    def commit(self, answer: Charge | None) -> Commit[PaymentResponse]:
        done = super().commit(answer)
        expired = done.model.model_copy(update={"cancellation_reason": "expired"})
        transition = payments.transition_item(
            self.payment, self.status, updated_at=expired.updated_at, cancellation_reason="expired"
        )
        return Commit(expired, dynamo.Transaction().add("transition", transition))


def expire_authorisation(payment_id: str) -> bool:
    stored = payments.get(payment_id)
    if stored is None or stored.payment.status != "requires_capture":
        return False
    path = f"POST /v1/payments/{payment_id}/cancel"
    scope = idempotency.scope(RECONCILE, f"expire:{payment_id}", path, {})
    return not idempotency.run(Expire(scope, stored)).replayed


def settle_refund(refund_id: str) -> bool:
    """A pending card refund: its own request resumed, as that request's retry would."""
    stored = payments.get_refund(refund_id)
    if stored is None or stored.refund.status != "pending" or stored.request_pk is None:
        return False
    user_id, _, key = stored.request_pk.partition("#")
    record = idempotency.get(idempotency.Scope(user_id, key, ""))
    if record is None or record.payment_id != refund_id:
        # Its record expired (CASHEW_IDEMPOTENCY_TTL): resuming would start a new refund.
        logger.error("pending refund without its request's record", extra={"refund_id": refund_id})
        return False
    payment = payments.get(stored.refund.payment_id)
    if payment is None:
        return False
    scope = idempotency.Scope(user_id, key, record.request_hash)
    outcome = idempotency.run(after_create.Refund(scope, payment, RefundRequest()))
    return not outcome.replayed and outcome.model.status == "succeeded"


# ------------------------------------------------------------------------ the dispatch


@dataclass(frozen=True, slots=True)
class Sweep:
    """One kind of open record: how long it may stay open, and the step settling it (True
    when this call settled it)."""

    after: Callable[[Settings], int]
    settle: Callable[[str], bool]
    due: Callable[[str, str, int], Iterator[str]] | None = None
    """Where its records are found: None for ReconcileIndex (`payments.due`), or another
    index's query (requests: the idempotency table's ResumeIndex, `idempotency.due`)."""


SWEEPS: dict[str, Sweep] = {
    "payment#processing": Sweep(lambda s: s.reconcile_after, settle_charge),
    "refund#pending": Sweep(lambda s: s.reconcile_after, settle_refund),
    "payment#requires_capture": Sweep(lambda s: s.authorization_ttl, expire_authorisation),
    "payment#requires_action": Sweep(lambda s: s.action_ttl, actions.abandon),
    idempotency.RESUMABLE: Sweep(lambda s: s.reconcile_after, resume.resume, idempotency.due),
}
"""ReconcileIndex's open statuses (cashew.payments.store.open_key) and their steps. Payouts,
a layer above payments, bring their own row (`cashew.payouts.face.SWEEPS`): the function
runs `run(..., more=...)` with it."""


class Summary(TypedDict):
    """A run's `Report` as the function answers it and logs it."""

    settled: dict[str, int]
    left: dict[str, int]
    failed: dict[str, int]
    bounded: bool


@dataclass
class Report:
    """What a run did: per open status, the records `settled`, `left` open (nothing to settle
    yet, or another writer settled them first) and `failed` (an AWS error); `bounded` when it
    stopped before the end of what was due."""

    settled: Counter[str] = field(default_factory=Counter)
    left: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    bounded: bool = False

    @property
    def seen(self) -> int:
        return sum(self.settled.values()) + sum(self.left.values()) + sum(self.failed.values())

    def as_dict(self) -> Summary:
        return {
            "settled": dict(self.settled),
            "left": dict(self.left),
            "failed": dict(self.failed),
            "bounded": self.bounded,
        }


def run(
    remaining_ms: Callable[[], int] | None = None,
    now: datetime | None = None,
    more: Mapping[str, Sweep] | None = None,
) -> Report:
    """One reconciliation run (see the module's docstring) over `SWEEPS` and `more` (the rows
    of the layers above: payouts); `now` is when the run counts ages from (tests run it as if
    later)."""
    settings, report = get_settings(), Report()
    now = now or clock.now()
    budget = settings.reconcile_max_items
    for open_status, sweep in {**SWEEPS, **(more or {})}.items():
        before = clock.rfc3339(now - timedelta(seconds=sweep.after(settings)))
        due = sweep.due or payments.due
        for pk in due(open_status, before, min(PAGE, budget + 1)):
            if budget <= 0 or (remaining_ms is not None and remaining_ms() < STOP_MARGIN_MS):
                report.bounded = True
                break
            budget -= 1
            _step(report, open_status, sweep, pk)
        if report.bounded:
            break
    _report(report)
    return report


def _step(report: Report, open_status: str, sweep: Sweep, pk: str) -> None:
    try:
        settled = sweep.settle(pk)
    except (CashewError, GatewayOutcomeUnknownError):  # raced, in progress, or no answer
        settled = False
    except (BotoCoreError, ClientError, ValueError) as exc:  # ValidationError: a bad record
        logger.warning(
            "reconciliation step failed",
            extra={"pk": pk, "open_status": open_status, "error": type(exc).__name__},
        )
        report.failed[open_status] += 1
        return
    (report.settled if settled else report.left)[open_status] += 1


def _report(report: Report) -> None:
    for name, counts in (
        ("ReconcileSettled", report.settled),
        ("ReconcileLeft", report.left),
        ("ReconcileFailed", report.failed),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=sum(counts.values()))
    metrics.add_metric(name="ReconcileBounded", unit=MetricUnit.Count, value=int(report.bounded))
    logger.info("reconciliation run", extra=report.as_dict())
