"""The idempotency protocol every money operation runs through, and its records.

An operation (top-up, payment, capture, cancel, refund) is only its own steps, an
`Operation`; `run` drives every one of them through the same sequence:

    admit      write the request's in-progress record, together with what the operation
               writes on admission (the payer's screened attempt: if that changed meanwhile,
               the operation is admitted again). An earlier record for the key is then
    check        replayed if it is complete (422 if it belonged to another request), or
    take over    claimed once its lease has run out (409 while its request may still run);
    prepare    the operation's preconditions: a `Refused` step did nothing, so the record
               is dropped (abandon) and the key is free again;
    gateway    the gateway call, with bounded retries under the key the gateway sees; an
               unknown outcome (or a step answering 409 in progress) keeps the record in
               progress and ends the lease early (release), so that a retry asks again;
    complete   the record, with the response to replay, in one transaction with the money;
               when another request completed it first, its response is replayed.
An operation whose money moves in one transaction and with no gateway (a balance payment) is
admitted `at_once`: its record is written complete in that transaction.

Records (`IdempotencyRecord`): pk = <user id>#<key>   status = in_progress | completed
    request_hash, payment_id (the payment or refund the request works under), status_code,
    response_body, created_at, expires_at (TTL), and what the admission kept (`Kept`: the
    screening's risk_score and fired_rules, the card it charges, and, for a card charge,
    kept_request: the operation and its validated body, so that reconciliation can resume it
    as the client's retry would; the caller's user id is the pk's first part);
    open_status = "request#in_progress", open_since = created_at: ResumeIndex's keys, only on
    an in-progress record that keeps its request (sparse), removed by the completing write
    (with kept_request) and gone with the record when it is abandoned;
    lease_until: while it is in the future, the request that wrote the record may still be
    running (the lease outlives the function's timeout), so a duplicate gets 409. Once it has
    passed, a retry takes the record over and settles the outcome by asking the gateway.
Status codes and response JSON exist only in the record; an operation answers an `Outcome`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Self

from pydantic import BaseModel

from cashew import clock, dynamo
from cashew.config import get_settings
from cashew.errors import (
    CashewError,
    ConflictError,
    IdempotencyInProgressError,
    IdempotencyKeyReusedError,
    RateLimitedError,
)
from cashew.gateways.base import GatewayOutcomeUnknownError, with_retries

# Admit again at most this many times when other attempts of the payer keep being recorded
# between reading the payer's history and writing (each round, one of the racing attempts
# is recorded, so N concurrent attempts of one payer need at most N rounds).
ADMISSION_ATTEMPTS = 16
BUSY_MESSAGE = "other payments of this account are in progress; retry the request"
GATEWAY_UNKNOWN = (
    "the gateway has not confirmed the outcome yet; retry with the same Idempotency-Key"
)
_CREATED, _OK = 201, 200  # the status codes a record keeps; handlers map Outcome.created too


# ------------------------------------------------------------------------ the protocol


@dataclass(frozen=True, slots=True)
class Outcome[M: BaseModel]:
    """What a money operation answered: its model, whether it created it (a new payment or
    refund) rather than changed one, and whether this is the replay of an earlier answer."""

    model: M
    created: bool
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Admission:
    """How an operation is admitted: the id it works under (unless it resumes another
    request's), what its in-progress record keeps, the items written along with the record
    (their failure means: admit again), and whether it completes `at_once`."""

    work_id: str
    kept: Kept | None = None
    along: dynamo.Transaction | None = None
    at_once: bool = False


@dataclass(frozen=True, slots=True)
class Commit[M: BaseModel]:
    """The answer and the money items completing the record; the failure of an item named
    in `replay_if` means another request completed this one first."""

    model: M
    items: dynamo.Transaction
    replay_if: tuple[str, ...] = ()
    keeps_along: bool = False  # written instead of a cancelled one: with its `along` still


class Refused(Exception):
    """Raised by a step, with the client's error as its argument: nothing was done."""


class Operation[M: BaseModel, G](Protocol):
    """One money operation's own steps, in the order `run` calls them."""

    @property
    def scope(self) -> Scope: ...

    @property
    def answer(self) -> type[M]:
        """The model a recorded response is read back into."""

    @property
    def creates(self) -> bool:
        """Whether its answer is a new payment or refund (201) rather than a changed one."""

    @property
    def gateway_refused(self) -> G:
        """What the gateway call gives when every attempt was refused."""

    def admit(self) -> Admission: ...

    def prepare(self, work_id: str, resumed: IdempotencyRecord | None) -> None:
        """Check the preconditions (raise Refused); `resumed` is the record taken over."""

    def gateway(self, key: str) -> Callable[[], G] | None:
        """The gateway call under `key`, or None when there is none to make."""

    def commit(self, answer: G | None) -> Commit[M]:
        """The answer and the money, given what the gateway answered (None: not called)."""

    def canceled(self, exc: dynamo.TransactionCanceled) -> Commit[M] | None:
        """What a cancelled commit means (beyond the record and `replay_if`): raise the
        client's error or Refused, return another commit to write instead, or None."""


def run[M: BaseModel, G](op: Operation[M, G]) -> Outcome[M]:
    """Run `op` through the protocol (see the module's docstring)."""
    admitted = _admit(op)
    if isinstance(admitted, Outcome):
        return admitted
    work_id, resumed = admitted
    try:
        op.prepare(work_id, resumed)
        call = op.gateway(op.scope.gateway_key)
        answer = None
        if call is not None:
            attempts = get_settings().gateway_max_attempts
            answer = with_retries(call, attempts=attempts, failure=op.gateway_refused)
        commit = op.commit(answer)
    except Refused as refused:
        raise _abandoned(op.scope, refused) from None
    except GatewayOutcomeUnknownError as exc:
        release(op.scope)
        raise IdempotencyInProgressError(GATEWAY_UNKNOWN) from exc
    except IdempotencyInProgressError:
        release(op.scope)
        raise
    return _complete(op, commit, work_id)


class _AdmitAgain(Exception):
    """What the admission wrote along changed meanwhile: admit again."""


def _admit[M: BaseModel, G](
    op: Operation[M, G],
) -> Outcome[M] | tuple[str, IdempotencyRecord | None]:
    """admit → check → take over: the id to work under and the record taken over (None if
    this request wrote it), or the outcome (a replay, or the whole of an `at_once`)."""
    throttled = False
    for attempt in range(ADMISSION_ATTEMPTS):
        _back_off(attempt)
        admission = op.admit()
        if admission.at_once:
            commit = op.commit(None)
            try:
                return _complete(op, commit, admission.work_id, True, admission.along)
            except _AdmitAgain:
                continue
        try:
            existing = begin(
                op.scope, admission.work_id, kept=admission.kept, along=admission.along
            )
        except dynamo.TransactionCanceled as exc:
            along = admission.along
            if (along is not None and exc.failed(*along.names)) or exc.retryable:
                throttled = exc.throttled  # the payer's history changed meanwhile
                continue
            raise
        if existing is None:
            return admission.work_id, None
        recorded = check(op.scope, existing)
        if recorded is not None:
            return _replay(op, recorded)
        take_over(op.scope, existing)
        return existing.payment_id, existing
    if throttled:
        raise RateLimitedError(BUSY_MESSAGE, headers={"Retry-After": "1"})
    raise ConflictError(BUSY_MESSAGE)


def _back_off(attempt: int) -> None:
    """Before admitting again: a short random pause, so racing attempts spread out."""
    if attempt:
        time.sleep(random.uniform(0, 0.005 * min(attempt, 8)))  # noqa: S311 # nosec B311 # jitter


def _complete[M: BaseModel, G](
    op: Operation[M, G],
    commit: Commit[M],
    work_id: str,
    at_once: bool = False,
    along: dynamo.Transaction | None = None,
) -> Outcome[M]:
    """Write the record complete with `commit`'s money (and `along`); for an operation
    admitted `at_once`, the record is new. Whoever completes the record first wins; the
    others replay its response."""
    status_code = _CREATED if op.creates else _OK
    body = commit.model.model_dump_json()
    record = (
        completed_item(op.scope, work_id, status_code, body)
        if at_once
        else complete_item(op.scope, status_code, body)
    )
    tx = dynamo.Transaction().add("record", record).extend(commit.items)
    if along is not None:
        tx.extend(along)
    try:
        tx.write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("record", *commit.replay_if):
            return _replay(op, replay_existing(op.scope))
        if along is not None and exc.failed(*along.names):
            raise _AdmitAgain from exc
        try:
            instead = op.canceled(exc)
        except Refused as refused:
            raise _abandoned(op.scope, refused) from exc
        if instead is None:
            raise
        return _complete(op, instead, work_id, at_once, along if instead.keeps_along else None)
    return Outcome(commit.model, created=op.creates)


def _abandoned(s: Scope, refused: Refused) -> CashewError:
    abandon(s)
    error: CashewError = refused.args[0]
    return error


def _replay[M: BaseModel, G](op: Operation[M, G], recorded: Replay) -> Outcome[M]:
    """The recorded response, as the first request got it."""
    model = op.answer.model_validate_json(recorded.body)
    return Outcome(model, created=recorded.status_code == _CREATED, replayed=True)


# ----------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class Scope:
    """One caller's use of one key for one request."""

    user_id: str
    key: str
    request_hash: str

    @property
    def pk(self) -> str:
        return f"{self.user_id}#{self.key}"

    @property
    def gateway_key(self) -> str:
        """What the gateway sees: stable for this caller and key, opaque otherwise."""
        return hashlib.sha256(self.pk.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: str


@dataclass(frozen=True, slots=True)
class Kept:
    """What an admission keeps in its in-progress record (a card charge's screening, and the
    card it charges), for a request that takes the record over."""

    risk_score: int
    fired_rules: list[str]
    payment_method_id: str | None = None  # None: a record written before methods were kept
    request: str | None = None
    """A resumable request (a card charge): JSON {"operation", "body"}, the body validated."""


RESUMABLE = "request#in_progress"
"""ResumeIndex's `open_status` of an in-progress record that keeps its request."""
RESUME_INDEX = "ResumeIndex"


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """A request's record (see the module's docstring): `response` once it is completed,
    `lease_until` while its request may run, `kept` what its admission kept."""

    pk: str
    status: str
    request_hash: str
    payment_id: str
    created_at: str
    expires_at: int
    lease_until: int | None = None
    response: Replay | None = None
    kept: Kept | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": self.pk,
            "status": self.status,
            "request_hash": self.request_hash,
            "payment_id": self.payment_id,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }
        if self.lease_until is not None:
            item["lease_until"] = self.lease_until
        if self.response is not None:
            item["status_code"] = self.response.status_code
            item["response_body"] = self.response.body
        if self.kept is not None:
            item["risk_score"] = self.kept.risk_score
            item["fired_rules"] = list(self.kept.fired_rules)
            if self.kept.payment_method_id is not None:
                item["payment_method_id"] = self.kept.payment_method_id
            if self.kept.request is not None and self.status == "in_progress":
                item["kept_request"] = self.kept.request
                item["open_status"], item["open_since"] = RESUMABLE, self.created_at
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        response = None
        if "status_code" in item:
            response = Replay(int(item["status_code"]), str(item["response_body"]))
        kept = None
        if "risk_score" in item:
            kept = Kept(
                int(item["risk_score"]),
                list(item.get("fired_rules") or []),
                item.get("payment_method_id"),
                item.get("kept_request"),
            )
        return cls(
            pk=str(item["pk"]),
            status=str(item["status"]),
            request_hash=str(item["request_hash"]),
            payment_id=str(item["payment_id"]),
            created_at=str(item["created_at"]),
            expires_at=int(item["expires_at"]),
            lease_until=int(item["lease_until"]) if "lease_until" in item else None,
            response=response,
            kept=kept,
        )


def scope(user_id: str, key: str, operation: str, body: dict[str, Any]) -> Scope:
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
    return Scope(user_id, key, hashlib.sha256(canonical.encode()).hexdigest())


def _table() -> str:
    return get_settings().idempotency_table


def _expiry() -> int:
    return clock.epoch() + get_settings().idempotency_ttl


def completed_item(s: Scope, payment_id: str, status_code: int, body: str) -> dynamo.Write:
    """A first-and-final record (requests that complete in one transaction)."""
    item = IdempotencyRecord(
        pk=s.pk,
        status="completed",
        request_hash=s.request_hash,
        payment_id=payment_id,
        created_at=clock.utcnow_str(),
        expires_at=_expiry(),
        response=Replay(status_code, body),
    ).to_item()
    return dynamo.put(_table(), item, condition="attribute_not_exists(pk)")


def complete_item(s: Scope, status_code: int, body: str) -> dynamo.Write:
    """Completes an in-progress record; fails if someone else completed it first."""
    return dynamo.update(
        _table(),
        {"pk": s.pk},
        "SET #status = :completed, status_code = :code, response_body = :body"
        " REMOVE open_status, open_since, kept_request",  # out of ResumeIndex: nothing to resume
        condition="#status = :in_progress AND request_hash = :hash",
        names={"#status": "status"},
        values={
            ":completed": "completed",
            ":in_progress": "in_progress",
            ":code": status_code,
            ":body": body,
            ":hash": s.request_hash,
        },
    )


def _lease() -> int:
    return clock.epoch() + get_settings().request_lease_seconds


def begin(
    s: Scope,
    payment_id: str,
    *,
    kept: Kept | None = None,
    along: dynamo.Transaction | None = None,
) -> IdempotencyRecord | None:
    """Write an in-progress record (with what the admission `kept`, and in one transaction
    with `along` when it has items); None if written, else the record already there. A
    failure of one of `along`'s items raises dynamo.TransactionCanceled."""
    item = IdempotencyRecord(
        pk=s.pk,
        status="in_progress",
        request_hash=s.request_hash,
        payment_id=payment_id,
        created_at=clock.utcnow_str(),
        expires_at=_expiry(),
        lease_until=_lease(),
        kept=kept,
    ).to_item()
    condition = "attribute_not_exists(pk)"
    try:
        if along:
            record = dynamo.put(_table(), item, condition=condition)
            dynamo.Transaction().add("record", record).extend(along).write()
        else:
            dynamo.put_item(_table(), item, condition)
    except dynamo.ConditionFailed:
        return _existing(s, payment_id, kept, along)
    except dynamo.TransactionCanceled as exc:
        if not exc.failed("record"):
            raise
        return _existing(s, payment_id, kept, along)
    return None


def _existing(
    s: Scope,
    payment_id: str,
    kept: Kept | None,
    along: dynamo.Transaction | None,
) -> IdempotencyRecord | None:
    existing = get(s)
    if existing is None:  # expired between the two calls: the key is free again
        return begin(s, payment_id, kept=kept, along=along)
    return existing


def take_over(s: Scope, record: IdempotencyRecord) -> None:
    """Claim an in-progress record whose request can no longer be running; 409 while it may
    still be, or when another retry claimed it first."""
    busy = IdempotencyInProgressError("a request with this Idempotency-Key is in progress")
    lease = record.lease_until or 0
    if lease > clock.epoch():
        raise busy
    try:
        dynamo.update_item(
            _table(),
            {"pk": s.pk},
            "SET lease_until = :lease",
            {
                ":lease": _lease(),
                ":old": lease,
                ":in_progress": "in_progress",
            },
            condition="#status = :in_progress AND lease_until = :old",
            names={"#status": "status"},
        )
    except dynamo.ConditionFailed as exc:
        raise busy from exc


def release(s: Scope) -> None:
    """End this request's lease early (its outcome is unknown): the next retry may resume."""
    with contextlib.suppress(dynamo.ConditionFailed):  # completed meanwhile: nothing to do
        dynamo.update_item(
            _table(),
            {"pk": s.pk},
            "SET lease_until = :zero",
            {":zero": 0, ":in_progress": "in_progress"},
            condition="#status = :in_progress",
            names={"#status": "status"},
        )


def abandon(s: Scope) -> None:
    """Drop this request's in-progress record: it did nothing, so the key is free again."""
    with contextlib.suppress(dynamo.ConditionFailed):  # completed meanwhile: keep it
        dynamo.delete_item(
            _table(),
            {"pk": s.pk},
            "#status = :in_progress",
            values={":in_progress": "in_progress"},
            names={"#status": "status"},
        )


def due(open_status: str, before: str, limit: int) -> Iterator[str]:
    """The pks of the in-progress records keeping their request (ResumeIndex, `open_status`
    RESUMABLE) created before `before`, oldest first, page after page. Eventually consistent:
    cashew.payments.resume reads each record again before acting on it."""
    start: dict[str, Any] | None = None
    while True:
        items, start = dynamo.query(
            _table(),
            "open_status = :status AND open_since <= :before",
            {":status": open_status, ":before": before},
            index=RESUME_INDEX,
            limit=limit,
            start_key=start,
        )
        yield from (str(i["pk"]) for i in items)
        if start is None:
            return


def get(s: Scope) -> IdempotencyRecord | None:
    item = dynamo.get_item(_table(), {"pk": s.pk})
    return IdempotencyRecord.from_item(item) if item is not None else None


def check(s: Scope, record: IdempotencyRecord) -> Replay | None:
    """The replay of a completed record for the same request; raise for a different request
    with the same key. None means the record is still in progress."""
    if record.request_hash != s.request_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request"
        )
    if record.status == "completed":
        if record.response is None:
            raise KeyError("status_code")  # a completed record always keeps its response
        return record.response
    return None


def replay_existing(s: Scope) -> Replay:
    """After losing a race on the record: the winner's response, or 409 if still running."""
    record = get(s)
    replay = check(s, record) if record else None
    if replay is None:
        raise IdempotencyInProgressError("a request with this Idempotency-Key is in progress")
    return replay
